package main

// The child side of the scale cells (-child NAME -scale-spec JSON): one client, one cell, the result
// on stdout as "RESULT <ns> <mallocs>" and "STAT <name> <value>" lines.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/bench/internal/aiopass"
)

// scaleOut is what one child run reports.
type scaleOut struct {
	d       time.Duration // the measured pass: first produce to last delivery
	mallocs uint64        // Go heap allocations during the measured pass
	stats   map[string]float64
}

var clockBase = time.Now()

// nowNs reads the monotonic clock.
func nowNs() int64 { return int64(time.Since(clockBase)) }

func scaleChild(name, bootstrap, spec string) int {
	var s scaleSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintf(os.Stderr, "bad -scale-spec %q: %v\n", spec, err)
		return 2
	}
	s.Goroutines = max(1, s.Goroutines)
	if s.Kind == "stuck" {
		return stuckChild(name, bootstrap, s)
	}
	topic = s.topicName(0) // franz-go's default produce topic; every record names its own
	var fn func(string, scaleSpec) (scaleOut, error)
	switch {
	case s.Kind == "churn" && name == scAio:
		fn = aioChurn
	case s.Kind == "churn" && name == scRaw:
		fn = rawChurn
	case s.Kind == "churn":
	case name == scRaw:
		fn = rawScale
	case name == scAio:
		fn = aioScale
	case name == scFranz:
		fn = franzScale
	case name == scC:
		fn = cScale
	}
	if fn == nil {
		fmt.Fprintf(os.Stderr, "no scale client %q for %s\n", name, s.Kind)
		return 2
	}
	out, err := fn(bootstrap, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if hwm := peakRSSBytes(); hwm > 0 {
		out.stats["hwm"] = float64(hwm)
	}
	fmt.Printf("RESULT %d %d\n", out.d.Nanoseconds(), out.mallocs)
	keys := make([]string, 0, len(out.stats))
	for k := range out.stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("STAT %s %g\n", k, out.stats[k])
	}
	return 0
}

// scalePasses are the message counts of the warm-up pass (if any) and the measured pass, which is last.
func scalePasses(s scaleSpec) []int {
	if s.Warm <= 0 {
		return []int{s.Count}
	}
	return []int{s.Warm, s.Count}
}

// keyOf is message i's key: one of nkeys keys of scaleKeyLen bytes in keys, or nil.
func keyOf(keys []byte, i, nkeys int) []byte {
	if nkeys <= 0 {
		return nil
	}
	j := (i % nkeys) * scaleKeyLen
	return keys[j : j+scaleKeyLen : j+scaleKeyLen]
}

// spread calls produce(i) for every i below n from g goroutines, each over a contiguous range (the
// calling goroutine itself when g is 1), and returns the first error.
func spread(g, n int, produce func(i int) error) error {
	if g <= 1 {
		for i := range n {
			if err := produce(i); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	per := (n + g - 1) / g
	for k := range g {
		lo, hi := k*per, min((k+1)*per, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				if err := produce(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// latStats adds the p50 and p99 of lat (nanoseconds) to stats.
func latStats(lat []int64, stats map[string]float64) {
	s := slices.Clone(lat)
	slices.Sort(s)
	if len(s) == 0 {
		return
	}
	stats["p50"] = float64(s[min(len(s)-1, len(s)/2)])
	stats["p99"] = float64(s[min(len(s)-1, int(0.99*float64(len(s))))])
}

func rawScale(bootstrap string, s scaleSpec) (scaleOut, error) {
	cm := configMap(bootstrap, "none")
	cm["go.delivery.report.fields"] = "none"
	kp, err := kafka.NewProducer(&cm)
	if err != nil {
		return scaleOut{}, err
	}
	defer kp.Close()
	topics := s.topicNames()
	keys := scaleKeys(s.Keys)
	val := payload(s.Size)
	out := scaleOut{stats: map[string]float64{}}
	var lat []int64
	if s.Latency {
		lat = make([]int64, s.Count)
	}
	var failed atomic.Int64
	passes := scalePasses(s)
	for pi, n := range passes {
		var plat []int64
		if pi == len(passes)-1 {
			plat = lat
		}
		m0 := mallocs()
		start := time.Now()
		done := make(chan struct{})
		go func() {
			for k := 0; k < n; {
				if m, ok := (<-kp.Events()).(*kafka.Message); ok {
					if m.TopicPartition.Error != nil {
						failed.Add(1)
					}
					if p, ok := m.Opaque.(*int64); ok {
						*p = nowNs() - *p
					}
					k++
				}
			}
			close(done)
		}()
		err := spread(s.Goroutines, n, func(i int) error {
			msg := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topics[i%len(topics)], Partition: kafka.PartitionAny},
				Value: val, Key: keyOf(keys, i, s.Keys)}
			if plat != nil {
				plat[i] = nowNs()
				msg.Opaque = &plat[i]
			}
			for {
				err := kp.Produce(msg, nil)
				if err == nil {
					return nil
				}
				if ke, ok := err.(kafka.Error); !ok || ke.Code() != kafka.ErrQueueFull {
					return err
				}
				time.Sleep(100 * time.Microsecond)
			}
		})
		if err != nil {
			return out, err
		}
		<-done
		out.d, out.mallocs = time.Since(start), mallocs()-m0
	}
	if failed.Load() > 0 {
		return out, fmt.Errorf("%d failed", failed.Load())
	}
	if lat != nil {
		latStats(lat, out.stats)
	}
	return out, nil
}

func aioScale(bootstrap string, s scaleSpec) (scaleOut, error) {
	ctx := context.Background()
	p, err := aioproducer.New(configMap(bootstrap, "none")) // aio defaults: no option at all
	if err != nil {
		return scaleOut{}, err
	}
	defer p.Close(ctx)
	topics := s.topicNames()
	keys := scaleKeys(s.Keys)
	val := payload(s.Size)
	mk := func(i int) *aioproducer.Message {
		return &aioproducer.Message{Topic: topics[i%len(topics)], Key: keyOf(keys, i, s.Keys), Value: val}
	}
	out := scaleOut{stats: map[string]float64{}}
	var lat []int64
	var futs []*aioproducer.Future // the latency pass's
	if s.Latency {
		lat = make([]int64, s.Count)
		futs = make([]*aioproducer.Future, s.Count)
	}
	passes := scalePasses(s)
	for pi, n := range passes {
		measured := pi == len(passes)-1
		st0 := p.Stats()
		m0 := mallocs()
		start := time.Now()
		if measured && lat != nil {
			err = aioLatencyPass(ctx, p, s.Goroutines, n, mk, futs[:n], lat)
		} else {
			err = aioWindowPass(ctx, p, s.Goroutines, n, mk)
		}
		if err != nil {
			return out, err
		}
		out.d, out.mallocs = time.Since(start), mallocs()-m0
		if measured {
			batchStats(st0, p.Stats(), out.stats)
		}
	}
	if lat != nil {
		latStats(lat, out.stats)
	}
	return out, nil
}

// batchStats adds the engine calls (Stats.Batches) between two snapshots and their mean size.
func batchStats(st0, st1 aioproducer.Stats, stats map[string]float64) {
	b := float64(st1.Batches - st0.Batches)
	stats["batches"] = b
	if b > 0 {
		stats["meanbatch"] = (st1.MeanBatchSize*float64(st1.Batches) - st0.MeanBatchSize*float64(st0.Batches)) / b
	}
}

// aioWindowPass is aio's producing loop of the throughput rows (bench's aioPass for g goroutines):
// Produce + Future, each goroutine holding at most aioWindow/g Futures in an aiopass.Window, which
// drops them as they finish, in any order; then every Future still held. The message is made by mk,
// one allocation per message as a caller producing fresh messages would.
func aioWindowPass(ctx context.Context, p *aioproducer.Producer, g, n int, mk func(int) *aioproducer.Message) error {
	g = max(1, g)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	per := (n + g - 1) / g
	for k := range g {
		lo, hi := k*per, min((k+1)*per, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			win := aiopass.NewWindow(aioWindow / g)
			for i := lo; i < hi; i++ {
				f, err := p.Produce(ctx, mk(i))
				if err == nil {
					err = win.Add(ctx, f)
				}
				if err != nil {
					once.Do(func() { first = err })
					return
				}
			}
			if err := win.Wait(ctx); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// aioLatencyPass is aioWindowPass with each message's produce→delivered time in lat: every producing
// goroutine has a waiter goroutine that takes its Futures in produce order through a channel of
// aioWindow/g places (the window: a producer waits when it is full) and stamps each when its Wait returns.
func aioLatencyPass(ctx context.Context, p *aioproducer.Producer, g, n int, mk func(int) *aioproducer.Message, futs []*aioproducer.Future, lat []int64) error {
	clear(futs)
	g = max(1, g)
	win := max(1, aioWindow/g)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	fail := func(err error) { once.Do(func() { first = err }) }
	per := (n + g - 1) / g
	for k := range g {
		lo, hi := k*per, min((k+1)*per, n)
		ch := make(chan int, win)
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(ch)
			for i := lo; i < hi; i++ {
				lat[i] = nowNs()
				f, err := p.Produce(ctx, mk(i))
				if err != nil {
					fail(err)
					return
				}
				futs[i] = f
				ch <- i
			}
		}()
		go func() {
			defer wg.Done()
			for i := range ch {
				_, err := futs[i].Wait(ctx)
				lat[i] = nowNs() - lat[i]
				futs[i] = nil
				if err != nil {
					fail(err)
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// timedRecord is a kgo.Record with the index of its latency slot: the promise gets the *kgo.Record,
// which is the first field.
type timedRecord struct {
	kgo.Record
	i int
}

func franzScale(bootstrap string, s scaleSpec) (scaleOut, error) {
	cl, err := kgo.NewClient(franzOpts(bootstrap, "none")...)
	if err != nil {
		return scaleOut{}, err
	}
	defer cl.Close()
	ctx := context.Background()
	topics := s.topicNames()
	keys := scaleKeys(s.Keys)
	val := payload(s.Size)
	out := scaleOut{stats: map[string]float64{}}
	var lat []int64
	if s.Latency {
		lat = make([]int64, s.Count)
	}
	var failed atomic.Int64
	passes := scalePasses(s)
	for pi, n := range passes {
		var plat []int64
		if pi == len(passes)-1 {
			plat = lat
		}
		var wg sync.WaitGroup
		promise := func(r *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
			if plat != nil {
				tr := (*timedRecord)(unsafe.Pointer(r))
				plat[tr.i] = nowNs() - plat[tr.i]
			}
			wg.Done()
		}
		m0 := mallocs()
		start := time.Now()
		wg.Add(n)
		_ = spread(s.Goroutines, n, func(i int) error {
			if plat != nil {
				tr := &timedRecord{Record: kgo.Record{Topic: topics[i%len(topics)], Key: keyOf(keys, i, s.Keys), Value: val}, i: i}
				plat[i] = nowNs()
				cl.Produce(ctx, &tr.Record, promise)
				return nil
			}
			cl.Produce(ctx, &kgo.Record{Topic: topics[i%len(topics)], Key: keyOf(keys, i, s.Keys), Value: val}, promise)
			return nil
		})
		wg.Wait()
		out.d, out.mallocs = time.Since(start), mallocs()-m0
	}
	if failed.Load() > 0 {
		return out, fmt.Errorf("%d failed", failed.Load())
	}
	if lat != nil {
		latStats(lat, out.stats)
	}
	return out, nil
}

func cScale(bootstrap string, s scaleSpec) (scaleOut, error) {
	if s.Goroutines > 1 {
		return scaleOut{}, errors.New("the C loop is one thread")
	}
	out := scaleOut{stats: map[string]float64{}}
	var lat []int64
	if s.Latency {
		lat = make([]int64, s.Count)
	}
	cfg, topics, keys, val := settings(bootstrap, "none"), s.topicNames(), scaleKeys(s.Keys), payload(s.Size)
	m0 := mallocs()
	d, err := cLoopMulti(cfg, topics, keys, scaleKeyLen, s.Keys, s.Warm, s.Count, val, lat)
	if err != nil {
		return out, err
	}
	out.d, out.mallocs = d, mallocs()-m0
	if lat != nil {
		latStats(lat, out.stats)
	}
	return out, nil
}

// ---- churn ----

// memStats records a memory reading under phase.
func memStats(stats map[string]float64, phase string, m memSnapshot) {
	stats[phase+"_go"] = float64(m.goHeap)
	stats[phase+"_c"] = float64(m.cHeap)
	stats[phase+"_rss"] = float64(m.rss)
}

// churnGate is the churn child's side of the topic window (runChurnClient): the harness creates the
// topics ahead of the client and deletes those fully delivered behind it. It writes "CREATED n" on the
// child's stdin once topics 0..n-1 exist; the client produces to topic k only once k < n (waited counts
// the time it could not produce for that). The client reports "DELIVERED d" on stdout once every
// message to topics 0..d-1 has its delivery report, at least every churnStep topics and at the end. If
// the harness goes away (EOF on stdin), the child exits.
type churnGate struct {
	created atomic.Int64
	waited  time.Duration // by the producing goroutine
	topics  int
	mu      sync.Mutex
	told    int // the last d reported
}

// churnStep is how many more topics must be fully delivered before the child says so again.
const churnStep = 100

func newChurnGate(topics int) *churnGate {
	g := &churnGate{topics: topics}
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			var n int64
			if _, err := fmt.Sscanf(sc.Text(), "CREATED %d", &n); err == nil {
				g.created.Store(n)
			}
		}
		fmt.Fprintln(os.Stderr, "churn: the harness went away")
		os.Exit(3)
	}()
	return g
}

// wait returns once topic k exists; meanwhile it calls idle, if not nil, until idle says it has
// nothing to do.
func (g *churnGate) wait(k int, idle func() (bool, error)) error {
	if int64(k) < g.created.Load() {
		return nil
	}
	t := time.Now()
	defer func() { g.waited += time.Since(t) }()
	for int64(k) >= g.created.Load() {
		if idle != nil {
			did, err := idle()
			if err != nil {
				return err
			}
			if did {
				continue
			}
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// delivered says that topics 0..d-1 are fully delivered.
func (g *churnGate) delivered(d int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if d >= g.told+churnStep || (d == g.topics && d > g.told) {
		g.told = d
		fmt.Printf("DELIVERED %d\n", d)
	}
}

// aioChurn: aio defaults writes s.PerTopic messages to each of s.Topics topics in turn, holding at most
// aioWindow Futures, and waits for every delivery; memory before, right after and after s.Idle. It
// waits for its Futures in produce order, so once message j's Future is done all the messages before
// it are too: that gives the fully delivered topics. While its next topic does not exist yet, it
// waits for the Futures it holds.
func aioChurn(bootstrap string, s scaleSpec) (scaleOut, error) {
	ctx := context.Background()
	g := newChurnGate(s.Topics)
	p, err := aioproducer.New(configMap(bootstrap, "none"))
	if err != nil {
		return scaleOut{}, err
	}
	defer p.Close(ctx)
	names := s.topicNames()
	val := payload(s.Size)
	out := scaleOut{stats: map[string]float64{}}
	if err := g.wait(0, nil); err != nil {
		return out, err
	}
	f, err := p.Produce(ctx, &aioproducer.Message{Topic: names[0], Value: val})
	if err != nil {
		return out, err
	}
	if _, err := f.Wait(ctx); err != nil {
		return out, err
	}
	ring := make([]*aioproducer.Future, aioWindow)
	i, next := 0, 0 // messages produced; messages whose Future was waited for
	// waitOne waits for the oldest Future held, if any.
	waitOne := func() (bool, error) {
		if next == i {
			return false, nil
		}
		slot := &ring[next%len(ring)]
		_, err := (*slot).Wait(ctx)
		*slot = nil
		next++
		g.delivered(next / s.PerTopic)
		return true, err
	}
	memStats(out.stats, "before", takeMem())
	st0 := p.Stats()
	m0 := mallocs()
	start := time.Now()
	for k, t := range names {
		if err := g.wait(k, waitOne); err != nil { // no topic to produce to: wait for what was
			return out, err
		}
		for range s.PerTopic {
			if i-next == len(ring) {
				if _, err := waitOne(); err != nil {
					return out, err
				}
			}
			if ring[i%len(ring)], err = p.Produce(ctx, &aioproducer.Message{Topic: t, Value: val}); err != nil {
				return out, err
			}
			i++
		}
	}
	for next < i {
		if _, err := waitOne(); err != nil {
			return out, err
		}
	}
	g.delivered(s.Topics)
	out.d, out.mallocs = time.Since(start), mallocs()-m0
	batchStats(st0, p.Stats(), out.stats)
	out.stats["waited"] = float64(g.waited)
	memStats(out.stats, "after", takeMem())
	time.Sleep(s.Idle)
	memStats(out.stats, "idle", takeMem())
	return out, nil
}

// rawChurn is aioChurn for raw confluent-kafka-go (its Events channel, as the raw rows use it). Its
// reports come in any order across partitions: it counts them per topic (the index after the last '-'
// of the topic's name).
func rawChurn(bootstrap string, s scaleSpec) (scaleOut, error) {
	g := newChurnGate(s.Topics)
	cm := configMap(bootstrap, "none")
	cm["go.delivery.report.fields"] = "none"
	kp, err := kafka.NewProducer(&cm)
	if err != nil {
		return scaleOut{}, err
	}
	defer kp.Close()
	names := s.topicNames()
	val := payload(s.Size)
	out := scaleOut{stats: map[string]float64{}}
	var failed atomic.Int64
	counts := make([]int32, s.Topics)
	done := 0 // topics 0..done-1 fully delivered
	drain := func(n int, count bool) {
		for n > 0 {
			if m, ok := (<-kp.Events()).(*kafka.Message); ok {
				if m.TopicPartition.Error != nil {
					failed.Add(1)
				}
				n--
				if !count || m.TopicPartition.Topic == nil {
					continue
				}
				t := *m.TopicPartition.Topic
				if k, err := strconv.Atoi(t[strings.LastIndexByte(t, '-')+1:]); err == nil && k >= 0 && k < len(counts) {
					counts[k]++
				}
				if done < len(counts) && int(counts[done]) >= s.PerTopic {
					for done < len(counts) && int(counts[done]) >= s.PerTopic {
						done++
					}
					g.delivered(done)
				}
			}
		}
	}
	produce := func(t *string) error {
		for {
			err := kp.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: t, Partition: kafka.PartitionAny}, Value: val}, nil)
			if err == nil {
				return nil
			}
			if ke, ok := err.(kafka.Error); !ok || ke.Code() != kafka.ErrQueueFull {
				return err
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	if err := g.wait(0, nil); err != nil {
		return out, err
	}
	if err := produce(&names[0]); err != nil {
		return out, err
	}
	drain(1, false)
	if failed.Load() > 0 {
		return out, errors.New("the first message failed")
	}
	memStats(out.stats, "before", takeMem())
	m0 := mallocs()
	start := time.Now()
	finished := make(chan struct{})
	go func() { drain(s.Topics*s.PerTopic, true); close(finished) }()
	for k := range names {
		if err := g.wait(k, nil); err != nil {
			return out, err
		}
		for range s.PerTopic {
			if err := produce(&names[k]); err != nil {
				return out, err
			}
		}
	}
	<-finished
	g.delivered(s.Topics)
	out.d, out.mallocs = time.Since(start), mallocs()-m0
	if failed.Load() > 0 {
		return out, fmt.Errorf("%d failed", failed.Load())
	}
	out.stats["waited"] = float64(g.waited)
	memStats(out.stats, "after", takeMem())
	time.Sleep(s.Idle)
	memStats(out.stats, "idle", takeMem())
	return out, nil
}

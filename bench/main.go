// Command bench runs side-by-side producer benchmarks: raw confluent-kafka-go, aioproducer,
// franz-go, and a C loop over the same librdkafka as the ceiling. The clients of one
// configuration run interleaved, rep after rep, and the tables report medians.
//
// Without -broker, everything runs in one process and every run gets a fresh librdkafka mock cluster:
//
//	cd bench && go run . -reps 5
//
// With -broker (a real Kafka cluster; `make bench-kafka` starts one), every run gets a fresh topic with
// -partitions partitions, each client runs in a process of its own (peak RSS and CPU per client), and
// the Java producer (kafka-tools' ProducerPerformance, -java-libs) and the Python clients (bench/pyprod.py
// with confluent-kafka's AIOProducer and Producer, -python) join when their runtimes are there:
//
//	cd bench && go run . -broker 127.0.0.1:9092 -reps 3 -works 100/none,1000/lz4 -partitions 1,6
//
// -scale (or -scale-only) adds the SCALE cells against the real broker (scale.go): many topics, many
// partitions with keys, many producing goroutines, topic churn, and a broker that stops answering on a
// 3-node cluster the cell starts itself (stuck.go):
//
//	cd bench && go run . -broker 127.0.0.1:9092 -reps 3 -scale-only -scale topics,partitions,goroutines,churn,stuck
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/bench/internal/aiopass"
)

// topic is the topic every client produces to: "bench" on the mock cluster, a fresh topic per run
// against a real broker (set before each run, and in a child process from its flags).
var topic = "bench"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// workload is one configuration: message size, compression, message count.
type workload struct {
	size  int
	comp  string
	count int
	// warm is the message count of the warm-up pass on the same client before the measured one:
	// count on the mock cluster, fewer against a real broker (-warm).
	warm int
	// partitions of the topic: 1 on the mock cluster; against a real broker from -partitions.
	partitions int
}

func (w workload) String() string {
	if w.partitions > 1 {
		return fmt.Sprintf("%s/%s/p%d", sizeName(w.size), w.comp, w.partitions)
	}
	return fmt.Sprintf("%s/%s", sizeName(w.size), w.comp)
}

// passes returns the message counts of the warm-up pass and the measured pass.
func (w workload) passes() []int {
	if w.warm <= 0 {
		return []int{w.count}
	}
	return []int{w.warm, w.count}
}

func sizeName(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dKB", n/1000)
	}
	return fmt.Sprintf("%dB", n)
}

// lingerMs is linger.ms for every client: 5, except in the lone-message latency run at linger 0.
var lingerMs = 5

// settings is the librdkafka configuration every librdkafka-based client gets.
func settings(bootstrap, comp string) [][2]string {
	return [][2]string{
		{"bootstrap.servers", bootstrap},
		{"acks", "all"},
		{"enable.idempotence", "true"},
		{"linger.ms", fmt.Sprint(lingerMs)},
		{"compression.type", comp},
	}
}

func configMap(bootstrap, comp string) kafka.ConfigMap {
	cm := kafka.ConfigMap{}
	for _, kv := range settings(bootstrap, comp) {
		cm[kv[0]] = kv[1]
	}
	return cm
}

// ---- throughput ----

// throughputFn produces w.count messages and waits for every delivery; it returns the time from the
// first produce (after one warm-up message) to the last delivery and the heap allocations in between.
type throughputFn func(bootstrap string, w workload) (time.Duration, uint64, error)

type client struct {
	name string
	run  throughputFn
}

// payload returns size bytes of pseudo-random letters from a 16-letter alphabet (4 bits of entropy a
// byte: lz4 and zstd shrink it about 2×), the same bytes for every client.
func payload(size int) []byte {
	rng := rand.New(rand.NewPCG(1, uint64(size)))
	b := make([]byte, size)
	for i := range b {
		b[i] = 'a' + byte(rng.IntN(16))
	}
	return b
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

func rawThroughput(bootstrap string, w workload) (time.Duration, uint64, error) {
	cm := configMap(bootstrap, w.comp)
	cm["go.delivery.report.fields"] = "none"
	kp, err := kafka.NewProducer(&cm)
	if err != nil {
		return 0, 0, err
	}
	defer kp.Close()
	t := topic
	val := payload(w.size)
	var failed atomic.Int64
	drain := func(n int) {
		for n > 0 {
			if m, ok := (<-kp.Events()).(*kafka.Message); ok {
				if m.TopicPartition.Error != nil {
					failed.Add(1)
				}
				n--
			}
		}
	}
	produce := func() error {
		for {
			err := kp.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &t, Partition: kafka.PartitionAny}, Value: val}, nil)
			if err == nil {
				return nil
			}
			if err.(kafka.Error).Code() != kafka.ErrQueueFull {
				return err
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	if err := produce(); err != nil {
		return 0, 0, err
	}
	drain(1)
	var d time.Duration
	var m uint64
	for _, n := range w.passes() {
		m0 := mallocs()
		start := time.Now()
		done := make(chan struct{})
		go func() { drain(n); close(done) }()
		for range n {
			if err := produce(); err != nil {
				return 0, 0, err
			}
		}
		<-done
		d, m = time.Since(start), mallocs()-m0
	}
	if failed.Load() > 0 {
		return 0, 0, fmt.Errorf("%d failed", failed.Load())
	}
	return d, m, nil
}

func aioProducer(bootstrap, comp string) (*aioproducer.Producer, error) {
	return aioproducer.New(configMap(bootstrap, comp), aioproducer.WithLogger(quiet))
}

func aioThroughputWith(open func() (*aioproducer.Producer, error), g int, w workload) (time.Duration, uint64, error) {
	p, err := open()
	if err != nil {
		return 0, 0, err
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	val := payload(w.size)
	f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: val})
	if err != nil {
		return 0, 0, err
	}
	if _, err := f.Wait(ctx); err != nil {
		return 0, 0, err
	}
	msgs := make([]aioproducer.Message, w.count)
	ptrs := make([]*aioproducer.Message, w.count)
	for i := range msgs {
		msgs[i] = aioproducer.Message{Topic: topic, Value: val}
		ptrs[i] = &msgs[i]
	}
	var d time.Duration
	var m uint64
	for _, n := range w.passes() {
		var err error
		if d, m, err = aioPass(p, g, ptrs[:n]); err != nil {
			return 0, 0, err
		}
	}
	return d, m, nil
}

// aioDefaults is aioproducer as a user gets it, with no option, producing as g says (aioPass):
// aioDefaults(1) is Produce + futures from one goroutine, aioDefaults(0) ProduceBatch,
// aioDefaults(produceFunc) ProduceFunc.
func aioDefaults(g int) func(bootstrap string, w workload) (time.Duration, uint64, error) {
	return func(bootstrap string, w workload) (time.Duration, uint64, error) {
		return aioThroughputWith(func() (*aioproducer.Producer, error) {
			return aioProducer(bootstrap, w.comp)
		}, g, w)
	}
}

// aioKeepMalloc is aio defaults in a process that called aioproducer.TuneMalloc(KeepMallocMemory) first
// (real broker only: each client runs in its own process there, so the tuning reaches no other row).
const aioKeepMalloc = "aio defaults + TuneMalloc Produce 1g"

func aioKeepMallocThroughput(bootstrap string, w workload) (time.Duration, uint64, error) {
	if err := aioproducer.TuneMalloc(aioproducer.KeepMallocMemory); err != nil {
		return 0, 0, err
	}
	return aioDefaults(1)(bootstrap, w)
}

// aioWindow is how many Futures an aioproducer row holds at most (all goroutines together): each
// producing goroutine holds aioWindow/g in an aiopass.Window, which drops them as they finish, in any
// order, as a service that awaits its deliveries would. It is DefaultMaxBufferedMsgs: the producer's
// own buffer bounds the row as librdkafka's queue bounds the raw client's. Holding all 1M Futures to
// the end instead costs about 7% more client CPU per 100 B message on the real broker (bench/realab
// -window).
const aioWindow = aioproducer.DefaultMaxBufferedMsgs

// produceFunc, as aioPass's g, is ProduceFunc from one goroutine with one shared callback: no
// Future, nothing allocated per message.
const produceFunc = -1

func aioPass(p *aioproducer.Producer, g int, ptrs []*aioproducer.Message) (time.Duration, uint64, error) {
	ctx := context.Background()
	w := workload{count: len(ptrs)}
	m0 := mallocs()
	start := time.Now()
	var errOnce sync.Once
	var firstErr error
	switch {
	case g == produceFunc:
		if err := aiopass.ProduceFunc(ctx, p, ptrs); err != nil {
			return 0, 0, err
		}
		return time.Since(start), mallocs() - m0, nil
	case g == 0:
		win := aiopass.NewWindow(aioWindow)
		for i := 0; i < w.count; i += 1000 {
			fs, err := p.ProduceBatch(ctx, ptrs[i:min(i+1000, w.count)])
			if err != nil {
				return 0, 0, err
			}
			for _, f := range fs {
				if err := win.Add(ctx, f); err != nil {
					return 0, 0, err
				}
			}
		}
		if err := win.Wait(ctx); err != nil {
			return 0, 0, err
		}
	default:
		var wg sync.WaitGroup
		per := (w.count + g - 1) / g
		for k := range g {
			lo, hi := k*per, min((k+1)*per, w.count)
			wg.Add(1)
			go func() {
				defer wg.Done()
				win := aiopass.NewWindow(aioWindow / g)
				for i := lo; i < hi; i++ {
					f, err := p.Produce(ctx, ptrs[i])
					if err == nil {
						err = win.Add(ctx, f)
					}
					if err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
				}
				if err := win.Wait(ctx); err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}()
		}
		wg.Wait()
	}
	if firstErr != nil {
		return 0, 0, firstErr
	}
	return time.Since(start), mallocs() - m0, nil
}

func franzOpts(bootstrap, comp string) []kgo.Opt {
	codec := kgo.NoCompression()
	switch comp {
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(bootstrap, ",")...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Duration(lingerMs) * time.Millisecond),
		kgo.ProducerBatchCompression(codec),
	}
	if mockCluster { // the mock broker answers ApiVersions with versions it cannot serve
		opts = append(opts, kgo.MaxVersions(kversion.V2_3_0()))
	}
	return opts
}

func franzThroughput(bootstrap string, w workload) (time.Duration, uint64, error) {
	cl, err := kgo.NewClient(franzOpts(bootstrap, w.comp)...)
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	ctx := context.Background()
	val := payload(w.size)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: val}).FirstErr(); err != nil {
		return 0, 0, err
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
		}
		wg.Done()
	}
	var d time.Duration
	var m uint64
	for _, n := range w.passes() {
		m0 := mallocs()
		start := time.Now()
		wg.Add(n)
		for range n {
			cl.Produce(ctx, &kgo.Record{Value: val}, promise)
		}
		wg.Wait()
		d, m = time.Since(start), mallocs()-m0
	}
	if failed.Load() > 0 {
		return 0, 0, fmt.Errorf("%d failed", failed.Load())
	}
	return d, m, nil
}

func cThroughput(bootstrap string, w workload) (time.Duration, uint64, error) {
	m0 := mallocs()
	d, err := cLoop(settings(bootstrap, w.comp), topic, w.count, payload(w.size))
	return d, mallocs() - m0, err
}

// ---- latency ----

// sender sends one message and calls done once it is delivered or failed.
type sender interface {
	send(val []byte, done func(error)) error
	close()
}

type rawSender struct{ kp *kafka.Producer }

func newRawSender(bootstrap string) (sender, error) {
	cm := configMap(bootstrap, "none")
	cm["go.delivery.report.fields"] = "none"
	kp, err := kafka.NewProducer(&cm)
	if err != nil {
		return nil, err
	}
	go func() {
		for ev := range kp.Events() {
			if m, ok := ev.(*kafka.Message); ok {
				m.Opaque.(func(error))(m.TopicPartition.Error)
			}
		}
	}()
	return rawSender{kp}, nil
}

func (s rawSender) send(val []byte, done func(error)) error {
	t := topic
	return s.kp.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &t, Partition: kafka.PartitionAny}, Value: val, Opaque: done}, nil)
}

func (s rawSender) close() { s.kp.Close() }

// aioSender waits for each Future on a goroutine: Produce + futures, as a caller would.
type aioSender struct{ p *aioproducer.Producer }

func (s aioSender) send(val []byte, done func(error)) error {
	f, err := s.p.Produce(context.Background(), &aioproducer.Message{Topic: topic, Value: val})
	if err != nil {
		return err
	}
	go func() {
		_, err := f.Wait(context.Background())
		done(err)
	}()
	return nil
}

func (s aioSender) close() { _ = s.p.Close(context.Background()) }

type franzSender struct{ cl *kgo.Client }

func (s franzSender) send(val []byte, done func(error)) error {
	s.cl.Produce(context.Background(), &kgo.Record{Value: val}, func(_ *kgo.Record, err error) { done(err) })
	return nil
}

func (s franzSender) close() { s.cl.Close() }

type latClient struct {
	name string
	open func(bootstrap string) (sender, error)
}

// loneLatency sends n messages one at a time, each after the previous one's delivery.
func loneLatency(s sender, n int, val []byte) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	ch := make(chan error, 1)
	for range n {
		t0 := time.Now()
		if err := s.send(val, func(err error) { ch <- err }); err != nil {
			return nil, err
		}
		if err := <-ch; err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// rateLatency sends rate messages per second for d and returns each one's produce→delivered time.
func rateLatency(s sender, rate int, d time.Duration, val []byte) ([]time.Duration, error) {
	n := int(float64(rate) * d.Seconds())
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	wg.Add(n)
	start := time.Now()
	for i := range n {
		if due := start.Add(time.Duration(i) * time.Second / time.Duration(rate)); time.Until(due) > 0 {
			time.Sleep(time.Until(due))
		}
		t0 := time.Now()
		if err := s.send(val, func(err error) {
			if err != nil {
				failed.Add(1)
			}
			lat[i] = time.Since(t0)
			wg.Done()
		}); err != nil {
			return nil, err
		}
	}
	wg.Wait()
	if failed.Load() > 0 {
		return nil, fmt.Errorf("%d failed", failed.Load())
	}
	return lat, nil
}

// latencies holds each rep's p50 and p99 of a latency mode ("lone", "rate") and client.
type latencies map[latKey][][2]time.Duration

type latKey struct{ kind, client string }

// add records one rep's latency run, or reports its error, and prints it.
func (l latencies) add(rep int, kind, client string, lat []time.Duration, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "rep %d latency %s %s: %v\n", rep, kind, client, err)
		return
	}
	p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
	k := latKey{kind, client}
	l[k] = append(l[k], [2]time.Duration{p50, p99})
	fmt.Fprintf(os.Stderr, "rep %d latency %-5s %-24s p50 %v p99 %v\n", rep, kind, client, p50, p99)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// withCluster runs fn against a fresh one-broker mock cluster holding the one-partition bench topic.
func withCluster[T any](fn func(bootstrap string) (T, error)) (T, error) {
	var zero T
	mc, err := kafka.NewMockCluster(1)
	if err != nil {
		return zero, err
	}
	defer mc.Close()
	if err := mc.CreateTopic(topic, 1, 1); err != nil {
		return zero, err
	}
	return fn(mc.BootstrapServers())
}

// mockCluster is true unless -broker is given.
var mockCluster = true

// goClients are the in-process throughput clients, by name. Against a real broker each runs in a child
// process of its own (-child NAME), so that RSS is per client and no client inherits another's heap.
var goClients = []client{
	{"raw confluent-kafka-go", rawThroughput},
	{"aio defaults Produce 1g", aioDefaults(1)},
	{"aio defaults Produce 8g", aioDefaults(8)},
	{"aio defaults ProduceBatch", aioDefaults(0)},
	{aioKeepMalloc, aioKeepMallocThroughput},
	{"aio defaults ProduceFunc 1g", aioDefaults(produceFunc)},
	{"franz-go kgo", franzThroughput},
	{"C loop (librdkafka)", cThroughput},
}

// mockClients are the clients of a mock-cluster run.
var mockClients = []string{
	"raw confluent-kafka-go",
	"aio defaults Produce 1g", "aio defaults Produce 8g", "aio defaults ProduceBatch",
	"franz-go kgo", "C loop (librdkafka)",
}

var lats = []latClient{
	{"raw confluent-kafka-go", newRawSender},
	{"aio defaults", func(bs string) (sender, error) {
		p, err := aioProducer(bs, "none")
		return aioSender{p}, err
	}},
	{"franz-go kgo", func(bs string) (sender, error) {
		cl, err := kgo.NewClient(franzOpts(bs, "none")...)
		return franzSender{cl}, err
	}},
}

func goClient(name string) (client, bool) {
	for _, c := range goClients {
		if c.name == name {
			return c, true
		}
	}
	return client{}, false
}

// selected reports whether a client runs: -only (a substring) and -clients (comma-separated
// substrings, any of which matches) both filter.
func selected(name, only, list string) bool {
	if only != "" && !strings.Contains(name, only) {
		return false
	}
	if list == "" {
		return true
	}
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" && strings.Contains(strings.ToLower(name), strings.ToLower(s)) {
			return true
		}
	}
	return false
}

func main() {
	reps := flag.Int("reps", 5, "repetitions, interleaved")
	sizes := flag.String("sizes", "100,1000,10000", "message sizes in bytes")
	comps := flag.String("compression", "none,lz4,zstd", "compression codecs")
	worksFlag := flag.String("works", "", "size/codec pairs instead of -sizes × -compression, e.g. 100/none,1000/lz4")
	msgBytes := flag.Int("bytes", 40<<20, "payload bytes per throughput run (count = bytes/size, at most -max; -broker: 1 GiB)")
	maxCount := flag.Int("max", 200_000, "most messages per throughput run (-broker: 1000000)")
	warm := flag.Int("warm", -1, "messages of the warm-up pass before the measured one (default: the same count on the mock cluster, min(count, 100000) with -broker)")
	loneN := flag.Int("lone", 200, "messages in the lone-message latency run")
	rate := flag.Int("rate", 5000, "messages per second in the fixed-rate latency run")
	rateDur := flag.Duration("rate-for", 2*time.Second, "duration of the fixed-rate latency run")
	only := flag.String("only", "", "run only clients whose name contains this")
	clientList := flag.String("clients", "", "run only clients whose name contains one of these comma-separated substrings (case-insensitive)")
	broker := flag.String("broker", "", "bootstrap servers of a real Kafka cluster (default: librdkafka's mock cluster in-process)")
	parts := flag.String("partitions", "1", "-broker: partitions of the topics, a comma-separated list (a fresh topic per run)")
	javaLibs := flag.String("java-libs", "", "-broker: directory of the kafka-tools jars for the Java producer rows (skipped when empty or java is missing)")
	python := flag.String("python", "", "-broker: a python with confluent-kafka installed, for the Python rows (skipped when empty or missing)")
	pyMax := flag.Int("py-max", 200_000, "-broker: most messages per Python run (the Python clients are slow)")
	noLat := flag.Bool("no-latency", false, "skip the latency runs")
	scale := flag.String("scale", "", "-broker: SCALE cells to run too, comma-separated: topics,partitions,goroutines,churn,stuck (or all)")
	scaleOnly := flag.Bool("scale-only", false, "-broker: run only the SCALE cells (topics, partitions, goroutines and churn unless -scale names some), not the throughput and latency tables")
	scaleTopics := flag.String("scale-topics", "1,100,1000,10000", "-scale topics: topic counts, each topic 1 partition, messages round-robin over them")
	scaleParts := flag.Int("scale-partitions", 1000, "-scale partitions: partitions of the one topic the keyed messages go to")
	scaleKeysN := flag.Int("scale-keys", 100_000, "-scale partitions: distinct keys (message i gets key i mod this)")
	scaleG := flag.String("scale-goroutines", "1,64,256", "-scale goroutines: producing goroutine counts")
	scaleGParts := flag.Int("scale-goroutine-partitions", 6, "-scale goroutines: partitions of the one topic")
	scaleSize := flag.Int("scale-size", 200, "-scale: message size in bytes (count per run: -bytes/size, at most -max; warm-up as -warm)")
	scaleChunk := flag.Int("scale-chunk", 500, "-scale: topics per CreateTopics/DeleteTopics request")
	scalePrime := flag.Int("scale-prime", 32<<10, "-scale: bytes written to each partition of a cell's new topics before its runs, then one more message (at least 8 KiB; churn: 8 KiB)")
	churnTopics := flag.Int("churn-topics", 20_000, "-scale churn: topics written in turn")
	churnMsgs := flag.Int("churn-msgs", 100, "-scale churn: messages per topic")
	churnIdle := flag.Duration("churn-idle", time.Minute, "-scale churn: idle time before the last memory reading")
	churnWindow := flag.Int("churn-window", 3000, "-scale churn: topics alive on the broker at once at most (created ahead of the client in -scale-chunk chunks, deleted behind it once delivered)")
	stuckRate := flag.Int("stuck-rate", 20_000, "-scale stuck: offered messages a second (unkeyed, -scale-size bytes)")
	stuckParts := flag.Int("stuck-partitions", 12, "-scale stuck: partitions of each client's topic (replication 3, min.insync.replicas 2)")
	stuckSteady := flag.Duration("stuck-steady", 20*time.Second, "-scale stuck: load before the pause")
	stuckPause := flag.Duration("stuck-pause", 30*time.Second, "-scale stuck: how long the broker stays SIGSTOPped")
	stuckAfter := flag.Duration("stuck-after", 20*time.Second, "-scale stuck: load after the resume")
	stuckNode := flag.Int("stuck-node", 0, "-scale stuck: the node (1..3) to pause; 0: the lowest that is not the active KRaft controller")
	kafkaSh := flag.String("kafka-sh", defaultKafkaSh(), "-scale stuck: scripts/kafka.sh, which starts, pauses and stops the 3-node cluster")
	stuckState := flag.String("stuck-state-dir", defaultStuckStateDir(), "-scale stuck: the 3-node cluster's state dir (KAFKA_STATE_DIR)")
	child := flag.String("child", "", "internal: run this one Go client against -broker and print its result")
	scaleSpecFlag := flag.String("scale-spec", "", "internal: the JSON scale spec of a -child run")
	childSpec := flag.String("child-spec", "", "internal: topic,size,compression,count,warm[,partitions] of the -child run (partitions: create the topic first)")
	flag.Parse()

	if *child != "" {
		mockCluster = false
		if *scaleSpecFlag != "" {
			os.Exit(scaleChild(*child, *broker, *scaleSpecFlag))
		}
		os.Exit(runChild(*child, *broker, *childSpec))
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *broker != "" {
		mockCluster = false
		if !set["bytes"] {
			*msgBytes = 1 << 30
		}
		if !set["max"] {
			*maxCount = 1_000_000
		}
	}
	var works []workload
	partList := []int{1}
	if !mockCluster {
		partList = nil
		for _, s := range strings.Split(*parts, ",") {
			var n int
			fmt.Sscan(s, &n)
			partList = append(partList, max(1, n))
		}
	}
	var pairs [][2]string
	if *worksFlag != "" {
		for _, p := range strings.Split(*worksFlag, ",") {
			sz, c, _ := strings.Cut(p, "/")
			pairs = append(pairs, [2]string{sz, c})
		}
	} else {
		for _, sz := range strings.Split(*sizes, ",") {
			for _, c := range strings.Split(*comps, ",") {
				pairs = append(pairs, [2]string{sz, c})
			}
		}
	}
	for _, pair := range pairs {
		var size int
		fmt.Sscan(pair[0], &size)
		c := pair[1]
		for _, np := range partList {
			w := workload{size: size, comp: c, count: min(*maxCount, *msgBytes/size), partitions: np}
			w.warm = w.count
			if !mockCluster {
				w.warm = min(w.count, 100_000)
			}
			if *warm >= 0 {
				w.warm = min(w.count, *warm)
			}
			works = append(works, w)
		}
	}
	kinds := map[string]bool{}
	for _, k := range strings.Split(*scale, ",") {
		switch k = strings.TrimSpace(k); k {
		case "":
		case "all":
			for _, k := range scaleKinds {
				kinds[k] = true
			}
		case "topics", "partitions", "goroutines", "churn", "stuck":
			kinds[k] = true
		default:
			fmt.Fprintf(os.Stderr, "-scale: unknown cell %q (topics, partitions, goroutines, churn, stuck, all)\n", k)
			os.Exit(2)
		}
	}
	if *scaleOnly && len(kinds) == 0 { // the one-broker cells: stuck brings up a cluster of its own, so only when named
		for _, k := range scaleKinds {
			kinds[k] = k != "stuck"
		}
	}
	if mockCluster && len(kinds) > 0 {
		fmt.Fprintln(os.Stderr, "-scale and -scale-only need -broker (a real Kafka cluster)")
		os.Exit(2)
	}
	if !mockCluster {
		if !*scaleOnly {
			if rc := runBroker(brokerRun{
				bootstrap: *broker, reps: *reps, works: works, only: *only, clients: *clientList,
				javaLibs: *javaLibs, python: *python, pyMax: *pyMax, latency: !*noLat, loneN: *loneN,
				rate: *rate, rateDur: *rateDur,
			}); rc != 0 || len(kinds) == 0 {
				os.Exit(rc)
			}
		}
		count := min(*maxCount, *msgBytes/max(1, *scaleSize))
		sw := min(count, 100_000)
		if *warm >= 0 {
			sw = min(count, *warm)
		}
		os.Exit(runScale(scaleConfig{
			bootstrap: *broker, reps: *reps, only: *only, clients: *clientList, kinds: kinds,
			size: *scaleSize, count: count, warm: sw, topics: parseInts(*scaleTopics),
			partitions: *scaleParts, keys: *scaleKeysN, goroutines: parseInts(*scaleG), gParts: *scaleGParts,
			churnTopics: *churnTopics, churnMsgs: *churnMsgs, churnIdle: *churnIdle, churnWindow: *churnWindow, chunk: *scaleChunk, primeBytes: *scalePrime,
			stuck: stuckConfig{kafkaSh: *kafkaSh, stateDir: *stuckState, rate: *stuckRate, parts: *stuckParts, node: *stuckNode,
				steady: *stuckSteady, pause: *stuckPause, after: *stuckAfter},
		}))
	}
	var clients []client
	for _, name := range mockClients {
		if c, _ := goClient(name); selected(name, *only, *clientList) {
			clients = append(clients, c)
		}
	}

	type key struct{ work, client string }
	rates, allocs := map[key][]float64{}, map[key][]float64{}
	latRes := latencies{}
	for rep := 1; rep <= *reps; rep++ {
		for _, w := range works {
			for _, c := range clients {
				type res struct {
					d time.Duration
					m uint64
				}
				r, err := withCluster(func(bs string) (res, error) {
					d, m, err := c.run(bs, w)
					return res{d, m}, err
				})
				if err != nil {
					fmt.Fprintf(os.Stderr, "rep %d %s %s: %v\n", rep, w, c.name, err)
					continue
				}
				k := key{w.String(), c.name}
				rates[k] = append(rates[k], float64(w.count)/r.d.Seconds())
				allocs[k] = append(allocs[k], float64(r.m)/float64(w.count))
				fmt.Fprintf(os.Stderr, "rep %d %-12s %-32s %10.0f msgs/s %6.2f allocs/msg\n", rep, w, c.name,
					float64(w.count)/r.d.Seconds(), float64(r.m)/float64(w.count))
			}
		}
		if *noLat {
			continue
		}
		val := payload(100)
		for _, lc := range lats {
			if !selected(lc.name, *only, *clientList) {
				continue
			}
			for _, kind := range []string{"lone", "rate"} {
				lat, err := withCluster(func(bs string) ([]time.Duration, error) {
					return latencyRun(lc, bs, kind, val, *loneN, *rate, *rateDur)
				})
				latRes.add(rep, kind, lc.name, lat, err)
			}
		}
	}

	fmt.Printf("## Throughput (median of %d reps; msgs/s, MB/s, allocs/msg)\n\n", *reps)
	for _, w := range works {
		fmt.Printf("### %s, %d messages per run\n\n", w, w.count)
		fmt.Println("| client | msgs/s | MB/s | allocs/msg | × raw | × C loop | × franz-go |")
		fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
		raw := median(rates[key{w.String(), "raw confluent-kafka-go"}])
		cl := median(rates[key{w.String(), "C loop (librdkafka)"}])
		fr := median(rates[key{w.String(), "franz-go kgo"}])
		for _, c := range clients {
			k := key{w.String(), c.name}
			if len(rates[k]) == 0 {
				continue
			}
			m := median(rates[k])
			fmt.Printf("| %s | %.0f | %.1f | %.3f | %s | %s | %s |\n", c.name, m, m*float64(w.size)/1e6, median(allocs[k]),
				ratio(m, raw), ratio(m, cl), ratio(m, fr))
		}
		fmt.Println()
	}
	if *noLat {
		return
	}
	fmt.Printf("## Latency, produce→delivered, 100 B, uncompressed (median over reps of each rep's percentile)\n\n")
	fmt.Printf("| client | lone p50 | lone p99 | %d msg/s p50 | %d msg/s p99 |\n| --- | ---: | ---: | ---: | ---: |\n", *rate, *rate)
	for _, lc := range lats {
		row := []string{lc.name}
		for _, kind := range []string{"lone", "rate"} {
			rs := latRes[latKey{kind, lc.name}]
			var p50, p99 []float64
			for _, r := range rs {
				p50 = append(p50, float64(r[0]))
				p99 = append(p99, float64(r[1]))
			}
			row = append(row, fmtDur(median(p50)), fmtDur(median(p99)))
		}
		fmt.Printf("| %s |\n", strings.Join(row, " | "))
	}
}

// latencyRun opens lc's sender, warms it up with 5 lone messages (connection, metadata, producer id)
// and runs one latency measurement: "lone" (linger.ms 5), "lone0" (linger.ms 0) or "rate".
func latencyRun(lc latClient, bs, kind string, val []byte, loneN, rate int, rateDur time.Duration) ([]time.Duration, error) {
	if kind == "lone0" {
		lingerMs = 0
		defer func() { lingerMs = 5 }()
	}
	s, err := lc.open(bs)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if _, err := loneLatency(s, 5, val); err != nil {
		return nil, err
	}
	if kind == "rate" {
		return rateLatency(s, rate, rateDur, val)
	}
	return loneLatency(s, loneN, val)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func fmtDur(ns float64) string {
	if ns == 0 {
		return "-"
	}
	return time.Duration(ns).Round(10 * time.Microsecond).String()
}

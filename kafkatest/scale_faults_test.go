//go:build kafka

package kafkatest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// Faults at scale: the sizes and pace of TestScaleFaults.
const (
	scaleTopics       = 100
	scalePartitions   = 12
	scaleKeysPerTopic = 64  // 6,400 keys in all
	scaleRate         = 500 // messages a second, offered in ticks of scaleTick
	scaleTick         = 10 * time.Millisecond
	scaleSteady       = 10 * time.Second // load before the first fault
	scalePause        = 30 * time.Second // how long one broker stays SIGSTOPped
	scaleStartTimeout = 360              // seconds: KAFKA_START_TIMEOUT of a restart
	// scaleMessageTimeout is librdkafka's message.timeout.ms. librdkafka sends one partition per
	// produce request, at most 5 requests in flight per broker with idempotence, so with 400
	// partitions led by a broker a message waits about 80 acks=all round trips: a minute or two
	// when the 3 brokers share 2 busy cores, several while a broker restarts. A message that times
	// out shows as a failure, not a loss; but librdkafka then bumps the idempotent producer's epoch,
	// which duplicates the messages of other partitions whose request had just failed after they
	// were written (librdkafka#4953). So: far above that.
	scaleMessageTimeout = 15 * time.Minute
)

// TestScaleFaults runs a steady keyed load (scaleRate messages a second, 6,400 keys) into 100 topics
// of 12 partitions, replicated 3 times with min.insync.replicas=2, on the 3-node cluster, while each
// broker in turn is killed with SIGKILL, left dead until the controller has moved the leadership of
// its partitions away, and restarted; before the next fault every partition's ISR is full again and
// the leadership back on the preferred replicas (what auto.leader.rebalance.enable does every 5
// minutes). Then one broker is SIGSTOPped for 30 s and SIGCONTed. Then the load stops and the
// producer flushes and closes. The ledger must show every accepted message with exactly one outcome,
// none failed, every delivered one in the log exactly once at its reported offset, and each key's
// messages in produce order.
func TestScaleFaults(t *testing.T) {
	c := cluster3(t)
	start := time.Now()
	topics := make([]string, scaleTopics)
	for i := range topics {
		topics[i] = topicName(t, strconv.Itoa(i))
	}
	createTopics(t, c.bootstrap, topics, scalePartitions, 3, map[string]string{"min.insync.replicas": "2"})
	created := time.Since(start)
	t.Logf("created %d topics of %d partitions (RF 3, min.insync.replicas=2) in %v", scaleTopics, scalePartitions,
		created.Round(time.Millisecond))
	// 1,200 more partitions on every broker would slow the tests after this one (a restarting broker
	// loads every log).
	t.Cleanup(func() { deleteTopics(t, c.bootstrap, topics) })

	// A broker restarting after SIGKILL recovers each of its 1,200 logs before it serves: 1 to 4
	// minutes on a loaded 2-core machine, where kafka.sh gives up after 90 s (KAFKA_START_TIMEOUT).
	if n, _ := strconv.Atoi(os.Getenv("KAFKA_START_TIMEOUT")); n < scaleStartTimeout {
		t.Setenv("KAFKA_START_TIMEOUT", strconv.Itoa(scaleStartTimeout))
	}
	restartTimeout := (scaleStartTimeout + 60) * time.Second
	// Whatever happens, leave the cluster whole for the tests after this one.
	paused, killed := map[string]bool{}, map[string]bool{} // node ids
	t.Cleanup(func() {
		for node := range paused {
			if _, err := c.run(t, 30*time.Second, "resume", node); err != nil {
				t.Errorf("resume broker %s: %v", node, err)
			}
		}
		for node := range killed {
			if _, err := c.run(t, restartTimeout, "restart", node); err != nil {
				t.Errorf("restart broker %s: %v", node, err)
			}
		}
	})

	diag := newScaleDiag(t, start)
	p := newProducer(t, c.bootstrap, kafka.ConfigMap{
		"message.timeout.ms": int(scaleMessageTimeout / time.Millisecond),
		// For the diagnosis of a failure: the idempotent producer's state changes, and statistics.
		"debug":                  "eos",
		"statistics.interval.ms": 10_000,
	}, aioproducer.WithLogger(slog.New(diag)), aioproducer.WithHooks(diag))
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	l := aioproducertest.NewLedger()

	// Warm up: a delivery from every partition. The metadata shows a new partition led, with a full
	// ISR, as soon as the controller has recorded it; a broker may take a minute more to create its
	// 1,200 logs and lead them.
	warmStart := time.Now()
	for _, topic := range topics {
		for part := range int32(scalePartitions) {
			_, err := l.Produce(ctx, p, &aioproducer.Message{Topic: topic, Partition: aioproducer.ExplicitPartition(part), Value: []byte("warm-up")})
			require.NoError(t, err, "warm-up Produce")
		}
	}
	warmCtx, warmCancel := context.WithTimeout(ctx, 5*time.Minute)
	require.NoError(t, p.Flush(warmCtx), "warm-up: Flush")
	warmCancel()
	require.NoError(t, l.Settle(ctx), "warm-up: Settle")
	if s := l.Summary(); s.Delivered != s.Tracked {
		t.Fatalf("warm-up: a message to each partition: %v", s)
	}
	warmed := time.Since(warmStart)
	t.Logf("warm-up: a delivery from each of the %d partitions in %v", scaleTopics*scalePartitions, warmed.Round(time.Millisecond))

	load := startKeyedLoad(ctx, p, l, diag, topics)
	defer load.stop()
	a := newAdmin(t, c.bootstrap)
	var phases []string
	mark := newPhaseClock(p, load, start)
	phase := func(name string) {
		s := mark(name)
		t.Log("phase " + s)
		phases = append(phases, s)
	}
	every := make([]kafka.TopicPartition, 0, scaleTopics*scalePartitions)
	for i := range topics {
		for part := range int32(scalePartitions) {
			every = append(every, kafka.TopicPartition{Topic: &topics[i], Partition: part})
		}
	}
	// settled waits until every partition's ISR is full again, then moves the leadership back to the
	// preferred replicas and waits until the metadata shows it.
	settled := func(name string) {
		waitPartitions(t, a, topics, scalePartitions, 3*time.Minute, "back to a full ISR", fullISR(3))
		electPreferred(t, ctx, a, every)
		waitPartitions(t, a, topics, scalePartitions, 2*time.Minute, "led by their preferred replica",
			func(p kafka.PartitionMetadata) bool { return len(p.Replicas) > 0 && p.Leader == p.Replicas[0] })
		phase(name)
	}

	time.Sleep(scaleSteady)
	phase("steady")
	for b := int32(1); b <= 3; b++ {
		node := strconv.Itoa(int(b))
		_, err := c.run(t, 30*time.Second, "kill", node)
		require.NoError(t, err, "kill broker %s", node)
		killed[node] = true
		// Restart only once the controller has fenced the broker (broker.session.timeout.ms, 9 s) and
		// moved the leadership of every partition it led, so that the producer follows real leader
		// changes, not merely a reconnection.
		waitPartitions(t, a, topics, scalePartitions, 2*time.Minute, "led by a broker other than "+node,
			func(p kafka.PartitionMetadata) bool { return p.Leader >= 0 && p.Leader != b })
		phase("kill " + node + ": leaders moved")
		_, err = c.run(t, restartTimeout, "restart", node)
		require.NoError(t, err, "restart broker %s", node)
		delete(killed, node)
		phase("kill " + node + ": restarted")
		settled("kill " + node + ": in sync, leaders back")
	}
	const stopped = "2"
	_, err := c.run(t, 30*time.Second, "pause", stopped)
	require.NoError(t, err, "pause broker %s", stopped)
	paused[stopped] = true
	time.Sleep(scalePause)
	_, err = c.run(t, 30*time.Second, "resume", stopped)
	require.NoError(t, err, "resume broker %s", stopped)
	delete(paused, stopped)
	phase("pause " + stopped)
	settled("pause " + stopped + ": in sync, leaders back")

	load.stop()
	require.NoError(t, p.Flush(ctx), "Flush")
	phase("flush")
	require.NoError(t, l.Settle(ctx), "Settle")
	require.NoError(t, p.Close(ctx), "Close")
	require.NoError(t, l.Check(), "every accepted message has exactly one outcome")
	require.NoError(t, l.CheckStats(ctx, p, 0, 0), "the producer's counters agree with the ledger")
	produced := time.Since(start)

	readStart := time.Now()
	recs, err := readTopics(ctx, c.bootstrap, topics)
	require.NoError(t, err, "read back")
	read := time.Since(readStart)
	ls, logErr := l.CheckLog(recs, aioproducertest.LogCheck{})
	s := l.Summary()
	t.Logf("figures: %d topics x %d partitions (RF 3, min.insync.replicas=2) created in %v, a delivery from each in %v; "+
		"%d keys, offered %d msg/s; %d messages (%d warm-up): %v; %v; "+
		"phases (start, time, +accepted, +delivered, most held): %s; broker RTT (avg, most of the averages): %s; "+
		"read back in %v; produced in %v, %v in all",
		scaleTopics, scalePartitions, created.Round(time.Millisecond), warmed.Round(time.Millisecond),
		scaleTopics*scaleKeysPerTopic, scaleRate, s.Tracked, scaleTopics*scalePartitions, s, ls,
		strings.Join(phases, "; "), diag.rtts(), read.Round(time.Millisecond),
		produced.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if s.Failed > 0 || logErr != nil {
		diag.report(recs)
	}
	if s.Failed > 0 {
		t.Errorf("%d messages failed, by class %v: none lost (CheckLog tells), but the cluster did not deliver them within message.timeout.ms (%v)",
			s.Failed, s.Failures, scaleMessageTimeout)
	}
	require.NoError(t, logErr, "read-back: lost, duplicated or reordered messages")
	require.Zero(t, s.Refused, "Produce refused messages")
}

// electPreferred asks the controller to move the leadership of the partitions to their preferred
// replicas, again for those whose preferred replica is not available yet (a broker just back may still
// be fenced, or out of the ISR in the controller's view), for two minutes at most.
func electPreferred(t *testing.T, ctx context.Context, a *kafka.AdminClient, partitions []kafka.TopicPartition) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ectx, cancel := context.WithTimeout(ctx, 2*adminTimeout)
		res, err := a.ElectLeaders(ectx, kafka.NewElectLeadersRequest(kafka.ElectionTypePreferred, partitions),
			kafka.SetAdminOperationTimeout(adminTimeout))
		cancel()
		require.NoError(t, err, "elect the preferred leaders")
		var again []kafka.TopicPartition
		for _, tp := range res.TopicPartitions {
			// Each partition's result is an error, ErrNoError for success.
			switch code, isKafka := kafkaCode(tp.Error); {
			case tp.Error == nil || isKafka && (code == kafka.ErrNoError || code == kafka.ErrElectionNotNeeded):
			case isKafka && code == kafka.ErrPreferredLeaderNotAvailable && time.Now().Before(deadline):
				again = append(again, kafka.TopicPartition{Topic: tp.Topic, Partition: tp.Partition})
			default:
				t.Fatalf("elect the preferred leader of %s[%d]: %v", *tp.Topic, tp.Partition, tp.Error)
			}
		}
		if len(again) == 0 {
			return
		}
		partitions = again
		time.Sleep(time.Second)
	}
}

// keyedLoad produces scaleRate messages a second from one goroutine, over scaleKeysPerTopic keys in
// each topic, each message tracked by a ledger. It falls behind rather than catching up when Produce
// waits (a full buffer).
type keyedLoad struct {
	produced atomic.Uint64 // accepted by Produce
	maxHeld  atomic.Int64  // the most messages held (Stats.HeldMessages) since the phase began
	halt     chan struct{}
	done     chan struct{}
	once     sync.Once
}

func startKeyedLoad(ctx context.Context, p *aioproducer.Producer, l *aioproducertest.Ledger, d *scaleDiag, topics []string) *keyedLoad {
	g := &keyedLoad{halt: make(chan struct{}), done: make(chan struct{})}
	keys := make([][]byte, scaleKeysPerTopic)
	for k := range keys {
		keys[k] = []byte(fmt.Sprintf("key-%03d", k))
	}
	pad := strings.Repeat(".", 64)
	go func() {
		defer close(g.done)
		tick := time.NewTicker(scaleTick)
		defer tick.Stop()
		perTick := int(scaleRate * scaleTick / time.Second)
		for i := 0; ; {
			select {
			case <-g.halt:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for end := i + perTick; i < end; i++ {
				m := &aioproducer.Message{
					Topic: topics[i%len(topics)],
					Key:   keys[i/len(topics)%len(keys)],
					Value: []byte("scale-faults " + strconv.Itoa(i) + " " + pad),
				}
				id := l.Track(m)
				report := l.Callback(id)
				err := p.ProduceFunc(ctx, m, func(dl aioproducer.Delivery, err error) {
					if err != nil {
						d.failed(id, m.Topic, err)
					}
					report(dl, err)
				})
				if err != nil {
					l.Refused(id, err)
					continue
				}
				l.Accepted(id)
				g.produced.Add(1)
			}
			if h := p.Stats().HeldMessages; h > g.maxHeld.Load() {
				g.maxHeld.Store(h) // only this goroutine raises it
			}
		}
	}()
	return g
}

// stop ends the load and waits until its goroutine is gone.
func (g *keyedLoad) stop() {
	g.once.Do(func() { close(g.halt) })
	<-g.done
}

// newPhaseClock returns a function that ends a phase of the run: it describes the phase (name, when
// it began since start, how long it took, the messages accepted and delivered during it, the most
// messages the producer held) and starts the next.
func newPhaseClock(p *aioproducer.Producer, g *keyedLoad, start time.Time) func(name string) string {
	began, produced, delivered := time.Now(), g.produced.Load(), p.Stats().Delivered
	return func(name string) string {
		now, pr, de := time.Now(), g.produced.Load(), p.Stats().Delivered
		s := fmt.Sprintf("%s @%v %v +%d +%d %d", name, began.Sub(start).Round(time.Second), now.Sub(began).Round(100*time.Millisecond),
			pr-produced, de-delivered, g.maxHeld.Swap(0))
		began, produced, delivered = now, pr, de
		return s
	}
}

// readTopics reads every topic back (ReadTopic, a few at once) and returns all their records.
func readTopics(ctx context.Context, bootstrap string, topics []string) ([]aioproducertest.Record, error) {
	const readers = 4
	var (
		mu    sync.Mutex
		all   []aioproducertest.Record
		first error
		wg    sync.WaitGroup
	)
	next := make(chan string)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for topic := range next {
				recs, err := aioproducertest.ReadTopic(ctx, kafka.ConfigMap{"bootstrap.servers": bootstrap}, topic)
				mu.Lock()
				all = append(all, recs...)
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, topic := range topics {
		next <- topic
	}
	close(next)
	wg.Wait()
	return all, first
}

// scaleDiag gathers what explains a failed TestScaleFaults. It is the producer's slog handler:
// warnings go to the test log (40 lines at most); of librdkafka's debug lines (debug=eos, the
// idempotent producer's state) it keeps the epoch bumps and their reasons. It is a HookStats that
// keeps each broker's request round-trip time. And it counts the failed messages per topic.
type scaleDiag struct {
	t     *testing.T
	start time.Time
	warn  slog.Handler

	mu    sync.Mutex
	bumps []string // librdkafka's lines about epoch bumps (the first 30)
	rtt   map[int32]*rttFigure
	fails map[string]*failedRun // per topic
}

type rttFigure struct {
	sum, most time.Duration
	n         int
}

type failedRun struct {
	n               int
	firstID, lastID int
	firstAt, lastAt time.Duration
	firstErr        string
}

func newScaleDiag(t *testing.T, start time.Time) *scaleDiag {
	lw := &logWriter{t: t, max: 40}
	t.Cleanup(func() {
		lw.mu.Lock()
		defer lw.mu.Unlock()
		if lw.dropped > 0 {
			t.Logf("producer log: %d more lines not shown", lw.dropped)
		}
	})
	return &scaleDiag{
		t: t, start: start,
		warn:  slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelWarn}),
		rtt:   map[int32]*rttFigure{},
		fails: map[string]*failedRun{},
	}
}

func (d *scaleDiag) Enabled(context.Context, slog.Level) bool { return true }
func (d *scaleDiag) WithAttrs([]slog.Attr) slog.Handler       { return d }
func (d *scaleDiag) WithGroup(string) slog.Handler            { return d }
func (d *scaleDiag) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		return d.warn.Handle(ctx, r)
	}
	if !strings.Contains(r.Message, "epoch bump") && !strings.Contains(r.Message, "bumped epoch") {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.bumps) < 30 {
		d.bumps = append(d.bumps, fmt.Sprintf("@%v %s", r.Time.Sub(d.start).Round(100*time.Millisecond), r.Message))
	}
	return nil
}

func (d *scaleDiag) OnStats(s *aioproducer.LibrdkafkaStats) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range s.Brokers {
		if b.NodeID <= 0 || b.RTT.Count == 0 {
			continue
		}
		f := d.rtt[b.NodeID]
		if f == nil {
			f = &rttFigure{}
			d.rtt[b.NodeID] = f
		}
		f.sum += b.RTT.Avg
		f.n++
		f.most = max(f.most, b.RTT.Avg)
	}
}

// rtts describes each broker's request round-trip time: the mean and the most of the statistics'
// averages.
func (d *scaleDiag) rtts() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for id, f := range d.rtt {
		out = append(out, fmt.Sprintf("%d: %v, %v", id, (f.sum/time.Duration(f.n)).Round(time.Millisecond), f.most.Round(time.Millisecond)))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// failed records a message that failed: a delivery report of a failure names no partition.
func (d *scaleDiag) failed(id int, topic string, err error) {
	at := time.Since(d.start).Round(time.Second)
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.fails[topic]
	if r == nil {
		r = &failedRun{firstID: id, firstAt: at, firstErr: err.Error()}
		d.fails[topic] = r
	}
	r.n++
	r.lastID, r.lastAt = id, at
}

// report logs what the diagnosis gathered, and the messages of recs found more than once.
func (d *scaleDiag) report(recs []aioproducertest.Record) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var fails []string
	for topic, r := range d.fails {
		fails = append(fails, fmt.Sprintf("%s: %d, ids %d..%d, @%v..%v, %s", topic, r.n, r.firstID, r.lastID, r.firstAt, r.lastAt, r.firstErr))
	}
	sort.Strings(fails)
	d.t.Logf("failed messages per topic: %s", strings.Join(fails, "; "))
	d.t.Logf("duplicated messages per partition: %s", duplicates(recs, d.start))
	d.t.Logf("librdkafka's epoch bumps: %s", strings.Join(d.bumps, " | "))
}

// duplicates describes the ledger messages found more than once in recs, per topic and partition:
// how many, the offsets of the copies, and when the messages were produced (since start).
func duplicates(recs []aioproducertest.Record, start time.Time) string {
	byID := map[string][]aioproducertest.Record{}
	for _, r := range recs {
		if v, ok := r.Header(aioproducertest.LedgerHeader); ok {
			byID[string(v)] = append(byID[string(v)], r)
		}
	}
	type run struct {
		n              int
		minOff, maxOff int64
		minTS, maxTS   time.Duration
	}
	where := map[string]*run{}
	for _, rs := range byID {
		if len(rs) < 2 {
			continue
		}
		k := fmt.Sprintf("%s[%d]", rs[0].Topic, rs[0].Partition)
		ts := rs[0].Timestamp.Sub(start).Round(time.Second)
		r := where[k]
		if r == nil {
			r = &run{minOff: rs[0].Offset, maxOff: rs[0].Offset, minTS: ts, maxTS: ts}
			where[k] = r
		}
		r.n++
		for _, c := range rs {
			r.minOff, r.maxOff = min(r.minOff, c.Offset), max(r.maxOff, c.Offset)
		}
		r.minTS, r.maxTS = min(r.minTS, ts), max(r.maxTS, ts)
	}
	var out []string
	for k, r := range where {
		out = append(out, fmt.Sprintf("%s: %d messages, copies at offsets %d..%d, produced @%v..%v", k, r.n, r.minOff, r.maxOff, r.minTS, r.maxTS))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

package kfake

// Helpers shared by the fault-injection tests: a kfake cluster, a producer that talks to it through
// librdkafka, an outcome ledger that records every outcome of every accepted message, and a read-back of
// the whole log with franz-go's kgo client.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/seed-f937cf20/aioproducer"
)

// testLogger discards the producer's and librdkafka's log lines unless KFAKE_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("KFAKE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newCluster starts a kfake cluster of brokers brokers (node ids 0..brokers-1) with topic of
// partitions partitions, closed at cleanup.
func newCluster(t *testing.T, brokers int, topic string, partitions int32, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(brokers), kfake.SeedTopics(partitions, topic)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func bootstrap(c *kfake.Cluster) string { return strings.Join(c.ListenAddrs(), ",") }

// newProducer creates a producer for c with the producer's defaults (acks=all, idempotence on), short
// retry backoffs, and the extra librdkafka settings. The test closes it; at cleanup it is closed again
// (Close is idempotent) so that no test leaks one.
func newProducer(t *testing.T, c *kfake.Cluster, extra kafka.ConfigMap, opts ...aioproducer.Option) *aioproducer.Producer {
	t.Helper()
	cm := kafka.ConfigMap{
		"bootstrap.servers":   bootstrap(c),
		"api.version.request": true,
		"retry.backoff.ms":    20,
		"linger.ms":           2,
	}
	if os.Getenv("KFAKE_TEST_LOG") != "" {
		cm["debug"] = "msg,eos,broker"
	}
	for k, v := range extra {
		cm[k] = v
	}
	p, err := aioproducer.New(cm, append([]aioproducer.Option{aioproducer.WithLogger(testLogger()), testEngine(t)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// ledger records the outcome of every message a test produced: message i has the value
// "<topic>/<i>" and the key "k<i mod keys>". Outcomes arrive through ProduceFunc callbacks, so a
// second outcome for one message is seen and counted, not swallowed.
type ledger struct {
	topic string
	keys  int
	// dupsOK lets checkLog count delivered messages that are in the log more than once instead of
	// failing: for a producer without idempotence, which may duplicate on retries.
	dupsOK bool

	mu    sync.Mutex
	msgs  []*aioproducer.Message
	calls []int
	dels  []aioproducer.Delivery
	errs  []error
	last  time.Time // when the latest outcome arrived
}

func newLedger(topic string, keys int) *ledger { return &ledger{topic: topic, keys: keys} }

// next returns the next message and its id.
func (l *ledger) next() (int, *aioproducer.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := len(l.msgs)
	m := &aioproducer.Message{
		Topic: l.topic,
		Key:   []byte("k" + strconv.Itoa(i%l.keys)),
		Value: []byte(l.topic + "/" + strconv.Itoa(i)),
	}
	l.msgs = append(l.msgs, m)
	l.calls = append(l.calls, 0)
	l.dels = append(l.dels, aioproducer.Delivery{})
	l.errs = append(l.errs, nil)
	return i, m
}

// forget drops the last message: Produce refused it, so it gets no outcome.
func (l *ledger) forget(i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i != len(l.msgs)-1 {
		panic("ledger: forget of a message that is not the last")
	}
	l.msgs, l.calls, l.dels, l.errs = l.msgs[:i], l.calls[:i], l.dels[:i], l.errs[:i]
}

func (l *ledger) record(i int, d aioproducer.Delivery, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[i]++
	l.dels[i], l.errs[i] = d, err
	l.last = time.Now()
}

// lastOutcome returns when the latest outcome arrived.
func (l *ledger) lastOutcome() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// produce produces one message with ProduceFunc. It returns Produce's error; a refused message leaves
// the ledger.
func (l *ledger) produce(ctx context.Context, p *aioproducer.Producer) error {
	i, m := l.next()
	err := p.ProduceFunc(ctx, m, func(d aioproducer.Delivery, err error) { l.record(i, d, err) })
	if err != nil {
		l.forget(i)
	}
	return err
}

// produceN produces n messages and requires each to be accepted.
func (l *ledger) produceN(t *testing.T, ctx context.Context, p *aioproducer.Producer, n int) {
	t.Helper()
	for range n {
		require.NoError(t, l.produce(ctx, p))
	}
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

// outcome returns message i's delivery, how many outcomes it got, and its error.
func (l *ledger) outcome(i int) (aioproducer.Delivery, int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dels[i], l.calls[i], l.errs[i]
}

// requireOneOutcomeEach requires that every accepted message got exactly one outcome and that the
// producer's counters agree.
func (l *ledger) requireOneOutcomeEach(t *testing.T, p *aioproducer.Producer) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var none, many []int
	var delivered, failed uint64
	for i, n := range l.calls {
		switch {
		case n == 0:
			none = append(none, i)
		case n > 1:
			many = append(many, i)
		}
		if l.errs[i] == nil {
			delivered++
		} else {
			failed++
		}
	}
	require.Empty(t, none, "messages with no outcome")
	require.Empty(t, many, "messages with more than one outcome")
	s := p.Stats()
	require.Equal(t, delivered, s.Delivered, "Stats.Delivered")
	require.Equal(t, failed, s.Failed, "Stats.Failed")
}

// tally counts the outcomes: delivered, failed with the outcome known (not written), failed with the
// outcome unknown.
func (l *ledger) tally() (delivered, failed, unknown int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.errs {
		switch {
		case err == nil:
			delivered++
		case aioproducer.IsOutcomeUnknown(err):
			unknown++
		default:
			failed++
		}
	}
	return
}

// errCodes counts the failures by librdkafka error code.
func (l *ledger) errCodes() map[kafka.ErrorCode]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[kafka.ErrorCode]int{}
	for _, err := range l.errs {
		if err == nil {
			continue
		}
		var ke kafka.Error
		if errors.As(err, &ke) {
			out[ke.Code()]++
		} else {
			out[kafka.ErrUnknown]++
		}
	}
	return out
}

// logRecord is a record read back from the cluster.
type logRecord struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
}

// readLog reads every record of topic (partitions 0..partitions-1) from the start to the high
// watermark, with a kgo client, sorted by partition and offset.
func readLog(t *testing.T, c *kfake.Cluster, topic string, partitions int32) []logRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()

	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // latest: the high watermark
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	require.NoError(t, err)
	ends := map[int32]int64{}
	var total int64
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			require.Zero(t, rp.ErrorCode, "ListOffsets %s[%d]", topic, rp.Partition)
			ends[rp.Partition] = rp.Offset
			total += rp.Offset
		}
	}
	require.Len(t, ends, int(partitions), "partitions listed")

	offs := map[int32]kgo.Offset{}
	for p := range partitions {
		offs[p] = kgo.NewOffset().AtStart()
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs})
	out := make([]logRecord, 0, total)
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read back %d of %d records of %s", len(out), total, topic)
		fs.EachError(func(topic string, p int32, err error) { require.NoError(t, err, "fetch %s[%d]", topic, p) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] {
				out = append(out, logRecord{r.Partition, r.Offset, string(r.Key), string(r.Value)})
			}
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}

// logCheck is what the log holds compared with the ledger.
type logCheck struct {
	Records        int // records in the log
	Delivered      int // delivered messages found once, where their delivery said
	UnknownWritten int // outcome-unknown messages found in the log (once each)
	UnknownAbsent  int // outcome-unknown messages not in the log
	Duplicated     int // delivered messages in the log more than once (only with dupsOK)
	Copies         int // their extra copies
}

func (lc logCheck) String() string {
	s := fmt.Sprintf("log: %d records; delivered found once at their offsets: %d; outcome-unknown in log: %d, absent: %d",
		lc.Records, lc.Delivered, lc.UnknownWritten, lc.UnknownAbsent)
	if lc.Duplicated > 0 {
		s += fmt.Sprintf("; delivered but in the log more than once: %d (%d extra copies)", lc.Duplicated, lc.Copies)
	}
	return s
}

// checkLog requires that recs, the whole log of the ledger's topic, hold every delivered message
// exactly once, at the partition and offset of its delivery, no message that failed with a known
// outcome, every outcome-unknown message at most once, and nothing else. With ordered set, each key's
// delivered messages must be in the log in the order they were produced.
func (l *ledger) checkLog(t *testing.T, recs []logRecord, ordered bool) logCheck {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	at := map[string][]logRecord{}
	for _, r := range recs {
		at[r.Value] = append(at[r.Value], r)
	}
	lc := logCheck{Records: len(recs)}
	var dups, missing, misplaced, failedWritten []string
	lastOff := map[string]logRecord{} // key → last delivered record, in produce order
	var disorder []string
	for i, m := range l.msgs {
		v := string(m.Value)
		found := at[v]
		delete(at, v)
		switch err := l.errs[i]; {
		case err == nil:
			d := l.dels[i]
			switch {
			case len(found) == 0:
				missing = append(missing, v)
			case len(found) > 1 && l.dupsOK:
				lc.Duplicated++
				lc.Copies += len(found) - 1
			case len(found) > 1:
				dups = append(dups, fmt.Sprintf("%s x%d", v, len(found)))
			case found[0].Partition != d.Partition || found[0].Offset != d.Offset:
				misplaced = append(misplaced, fmt.Sprintf("%s at [%d]@%d, delivery says [%d]@%d", v,
					found[0].Partition, found[0].Offset, d.Partition, d.Offset))
			default:
				lc.Delivered++
				r := found[0]
				if prev, ok := lastOff[r.Key]; ok && ordered &&
					(prev.Partition != r.Partition || prev.Offset > r.Offset) {
					disorder = append(disorder, fmt.Sprintf("%s: %s at [%d]@%d after %s at [%d]@%d",
						r.Key, prev.Value, prev.Partition, prev.Offset, v, r.Partition, r.Offset))
				}
				lastOff[r.Key] = r
			}
		case aioproducer.IsOutcomeUnknown(err):
			switch len(found) {
			case 0:
				lc.UnknownAbsent++
			case 1:
				lc.UnknownWritten++
			default:
				dups = append(dups, fmt.Sprintf("%s x%d (outcome unknown)", v, len(found)))
			}
		default:
			if len(found) > 0 {
				failedWritten = append(failedWritten, fmt.Sprintf("%s (%v)", v, err))
			}
		}
	}
	var strays []string
	for v := range at {
		strays = append(strays, v)
	}
	require.Empty(t, missing, "delivered messages missing from the log")
	require.Empty(t, dups, "messages in the log more than once")
	require.Empty(t, misplaced, "delivered messages not where their delivery says")
	require.Empty(t, failedWritten, "failed messages (outcome known) found in the log")
	require.Empty(t, strays, "records in the log that no accepted message explains")
	require.Empty(t, disorder, "messages of a key out of produce order")
	return lc
}

// produceFault is a fault on Produce requests for topic.
func produceFault(topic string, err *kerr.Error, count int) kfake.Fault {
	return kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: err, Count: count}
}

// testEngine is the engine AIOPRODUCER_TEST_ENGINE names ("kafka" or "batch"; unset: the default), as
// an option, so that the suite runs on either engine.
func testEngine(t *testing.T) aioproducer.Option {
	e := aioproducer.DefaultEngine
	if v := os.Getenv("AIOPRODUCER_TEST_ENGINE"); v != "" {
		var err error
		e, err = aioproducer.ParseEngine(v)
		require.NoError(t, err, "AIOPRODUCER_TEST_ENGINE")
	}
	return aioproducer.WithEngine(e)
}

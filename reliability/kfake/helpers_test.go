package kfake

// Helpers shared by the fault-injection tests: a kfake cluster, a producer that talks to it through
// librdkafka, an outcome ledger that records every outcome of every accepted message, and a read-back of
// the whole log with franz-go's kgo client.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
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
	p, err := aioproducer.New(cm, append([]aioproducer.Option{aioproducer.WithLogger(testLogger())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// ledger is aioproducertest.Ledger with the messages of this suite: message i has the value
// "<topic>/<i>" and the key "k<i mod keys>". Outcomes arrive through ProduceFunc callbacks, so a second
// outcome for one message is seen and counted, not swallowed.
type ledger struct {
	*aioproducertest.Ledger
	topic string
	keys  int
	// dupsOK lets checkLog count delivered messages that are in the log more than once instead of
	// failing: for a producer without idempotence, which may duplicate on retries.
	dupsOK bool
}

func newLedger(topic string, keys int) *ledger {
	return &ledger{Ledger: aioproducertest.NewLedger(), topic: topic, keys: keys}
}

// message returns message i, untracked.
func (l *ledger) message(i int) *aioproducer.Message {
	return &aioproducer.Message{
		Topic: l.topic,
		Key:   []byte("k" + strconv.Itoa(i%l.keys)),
		Value: []byte(l.topic + "/" + strconv.Itoa(i)),
	}
}

// next returns the next message, tracked, and its id.
func (l *ledger) next() (int, *aioproducer.Message) {
	m := l.message(l.Len())
	return l.Track(m), m
}

// produce produces the next message with ProduceFunc and returns Produce's error (a refused message
// stays in the ledger as refused: it must get no outcome).
func (l *ledger) produce(ctx context.Context, p *aioproducer.Producer) error {
	_, err := l.Produce(ctx, p, l.message(l.Len()))
	return err
}

// produceN produces n messages and requires each to be accepted.
func (l *ledger) produceN(t *testing.T, ctx context.Context, p *aioproducer.Producer, n int) {
	t.Helper()
	for range n {
		require.NoError(t, l.produce(ctx, p))
	}
}

// len returns the number of messages accepted.
func (l *ledger) len() int { return l.Summary().Accepted }

// outcome returns message i's delivery, how many outcomes it got, and its error.
func (l *ledger) outcome(i int) (aioproducer.Delivery, int, error) { return l.Outcome(i) }

// lastOutcome returns when the latest outcome arrived.
func (l *ledger) lastOutcome() time.Time { return l.LastOutcome() }

// tally counts the outcomes: delivered, failed with the outcome known (not written), failed with the
// outcome unknown.
func (l *ledger) tally() (delivered, failed, unknown int) {
	s := l.Summary()
	return s.Delivered, s.Failed - s.Unknown, s.Unknown
}

// errCodes counts the failures by librdkafka error code.
func (l *ledger) errCodes() map[kafka.ErrorCode]int {
	out := map[kafka.ErrorCode]int{}
	for i := range l.Len() {
		_, n, err := l.Outcome(i)
		if n == 0 || err == nil {
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

// readLog reads every record of topic (partitions 0..partitions-1) from the start to the high
// watermark, with a kgo client (kfake's own), sorted by partition and offset.
func readLog(t *testing.T, c *kfake.Cluster, topic string, partitions int32) []aioproducertest.Record {
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
	out := make([]aioproducertest.Record, 0, total)
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read back %d of %d records of %s", len(out), total, topic)
		fs.EachError(func(topic string, p int32, err error) { require.NoError(t, err, "fetch %s[%d]", topic, p) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] {
				hs := make([]aioproducer.Header, len(r.Headers))
				for i, h := range r.Headers {
					hs[i] = aioproducer.Header{Key: h.Key, Value: h.Value}
				}
				out = append(out, aioproducertest.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
					Key: r.Key, Value: r.Value, Headers: hs, Timestamp: r.Timestamp})
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

// checkLog requires that recs, the whole log of the ledger's topic, hold every delivered message
// exactly once, at the partition and offset of its delivery, no message that failed with a known
// outcome, every outcome-unknown message at most once, and nothing else. With ordered set, each key's
// delivered messages must be in the log in the order they were produced.
func (l *ledger) checkLog(t *testing.T, recs []aioproducertest.Record, ordered bool) aioproducertest.LogSummary {
	t.Helper()
	ls, err := l.CheckLog(recs, aioproducertest.LogCheck{AllowDuplicates: l.dupsOK, IgnoreOrder: !ordered})
	require.NoError(t, err)
	return ls
}

// produceFault is a fault on Produce requests for topic.
func produceFault(topic string, err *kerr.Error, count int) kfake.Fault {
	return kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: err, Count: count}
}

package aioproducer

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer/internal/readback"
)

// quietLogger discards everything; tests that check logging build their own.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// newMockCluster starts librdkafka's in-process mock cluster with brokers brokers, closed at cleanup.
func newMockCluster(t testing.TB, brokers int) *kafka.MockCluster {
	t.Helper()
	mc, err := kafka.NewMockCluster(brokers)
	require.NoError(t, err)
	t.Cleanup(mc.Close)
	return mc
}

// newTestProducer returns a producer for bootstrap with extra settings, closed at cleanup.
func newTestProducer(t testing.TB, bootstrap string, extra kafka.ConfigMap, opts ...Option) *Producer {
	t.Helper()
	cm := kafka.ConfigMap{"bootstrap.servers": bootstrap}
	for k, v := range extra {
		cm[k] = v
	}
	p, err := New(cm, append([]Option{WithLogger(quietLogger)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, p.Close(ctx))
	})
	return p
}

// consumed is a message read back from the cluster.
type consumed struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []kafka.Header
	Timestamp time.Time
}

// consumeAll reads n messages of topic back from every partition, from the beginning, and returns them
// sorted by partition and offset. It fails the test if fewer arrive within the timeout, or more.
func consumeAll(t testing.TB, bootstrap, topic string, n int) []consumed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ms, err := readback.WaitTopic(ctx, kafka.ConfigMap{"bootstrap.servers": bootstrap}, topic, n)
	require.NoError(t, err)
	require.Len(t, ms, n, "messages read back from %s", topic)
	out := make([]consumed, len(ms))
	for i, e := range ms {
		out[i] = consumed{
			Partition: e.TopicPartition.Partition, Offset: int64(e.TopicPartition.Offset),
			Key: e.Key, Value: e.Value, Headers: e.Headers, Timestamp: e.Timestamp,
		}
	}
	return out
}

// ctxTimeout is a context for one test step.
func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newFakeProducer returns a producer over the in-memory engine me with opts, closed at cleanup.
func newFakeProducer(t testing.TB, me *memEngine, opts ...Option) *Producer {
	t.Helper()
	cfg := defaultConfig()
	cfg.logger = quietLogger
	for _, o := range opts {
		o(&cfg)
	}
	require.NoError(t, cfg.validate())
	p := newProducer(cfg, me)
	t.Cleanup(func() { _ = p.Close(ctxTimeout(t, 10*time.Second)) })
	return p
}

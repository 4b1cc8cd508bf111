package aioproducer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"
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
// sorted by partition and offset. It fails the test if fewer arrive within the timeout.
func consumeAll(t testing.TB, bootstrap, topic string, n int) []consumed {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"group.id":           fmt.Sprintf("readback-%s-%d", topic, time.Now().UnixNano()),
		"auto.offset.reset":  "earliest",
		"enable.auto.commit": false,
	})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Subscribe(topic, nil))
	var out []consumed
	deadline := time.Now().Add(60 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		ev := c.Poll(100)
		switch e := ev.(type) {
		case *kafka.Message:
			out = append(out, consumed{
				Partition: e.TopicPartition.Partition, Offset: int64(e.TopicPartition.Offset),
				Key: e.Key, Value: e.Value, Headers: e.Headers, Timestamp: e.Timestamp,
			})
		case kafka.Error:
			if e.IsFatal() {
				t.Fatalf("consumer: %v", e)
			}
		}
	}
	require.Len(t, out, n, "messages read back from %s", topic)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}

// ctxTimeout is a context for one test step.
func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

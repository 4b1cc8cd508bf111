package aiootel

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/seed-f937cf20/aioproducer"
)

// readBack reads n messages of topic's partition 0 from the beginning.
func readBack(t *testing.T, bootstrap, topic string, n int) []*kafka.Message {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "readback", "enable.auto.commit": false})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}))
	var out []*kafka.Message
	deadline := time.Now().Add(30 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		if m, ok := c.Poll(100).(*kafka.Message); ok {
			out = append(out, m)
		}
	}
	require.Len(t, out, n, "messages read back from %s", topic)
	return out
}

// A real Producer on librdkafka's mock cluster with both hooks: one span per message, the child of the
// span in Produce's ctx, ended with its offset or its error; the traceparent read back from the broker
// is the message's span; the metrics count the same run. On both engines.
func TestProducerOnMockClusterTracesAndMeasures(t *testing.T) {
	for _, e := range []struct {
		name   string
		engine aioproducer.Engine
	}{{"batch", aioproducer.EngineBatch}, {"kafka", aioproducer.EngineKafkaProducer}} {
		t.Run(e.name, func(t *testing.T) { testTracesAndMeasures(t, e.engine) })
	}
}

func testTracesAndMeasures(t *testing.T, engine aioproducer.Engine) {
	const topic, delivered, failed, refused = "orders", 10, 2, 1
	mc, err := kafka.NewMockCluster(1)
	require.NoError(t, err)
	defer mc.Close()
	require.NoError(t, mc.CreateTopic(topic, 1, 1))

	tp, sr := newTracing(t)
	mp, reader := newMetrics(t)
	tr := NewTracer(WithTracerProvider(tp), WithPropagator(propagation.TraceContext{}))
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers()},
		aioproducer.WithHooks(tr, NewMeter(WithMeterProvider(mp))), aioproducer.WithEngine(engine),
		aioproducer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, p.Close(ctx))
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx, parent := tp.Tracer("test").Start(ctx, "handle request")
	var futs []*aioproducer.Future
	for i := range delivered {
		f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: fmt.Appendf(nil, "m-%d", i)})
		require.NoError(t, err)
		futs = append(futs, f)
	}
	for range failed {
		f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("nowhere"), Partition: aioproducer.ExplicitPartition(99)})
		require.NoError(t, err)
		futs = append(futs, f)
	}
	for range refused {
		_, err := p.Produce(ctx, &aioproducer.Message{Topic: "not a topic!"})
		require.ErrorIs(t, err, aioproducer.ErrInvalidMessage)
	}
	require.NoError(t, p.Flush(ctx))
	parent.End()
	for i, f := range futs {
		_, err := f.Wait(ctx)
		require.Equal(t, i >= delivered, err != nil, "message %d: %v", i, err)
	}
	assert.Zero(t, tr.pending(), "every span started was ended and forgotten")

	// One span per message, plus the parent.
	spans := map[int64]sdktrace.ReadOnlySpan{} // delivered, by offset
	var failedSpans, refusedSpans int
	ended := sr.Ended()
	require.Len(t, ended, delivered+failed+refused+1)
	for _, s := range ended {
		if s.Name() == "handle request" {
			continue
		}
		assert.Equal(t, trace.SpanKindProducer, s.SpanKind())
		assert.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID(), "%s: parent", s.Name())
		a := attrMap(s)
		switch {
		case s.Name() == "send not a topic!":
			refusedSpans++
			assert.Equal(t, codes.Error, s.Status().Code)
			assert.Equal(t, "invalid_message", a["error.type"].AsString())
		case s.Status().Code == codes.Error:
			failedSpans++
			assert.Equal(t, "local_unknown_partition", a["error.type"].AsString())
			assert.Equal(t, "99", a["messaging.destination.partition.id"].AsString())
		default:
			assert.Equal(t, "send "+topic, s.Name())
			assert.Equal(t, "0", a["messaging.destination.partition.id"].AsString())
			spans[a["messaging.kafka.offset"].AsInt64()] = s
		}
	}
	assert.Equal(t, failed, failedSpans)
	assert.Equal(t, refused, refusedSpans)
	require.Len(t, spans, delivered)

	// What the broker holds: each message's traceparent is its own span's context.
	for _, m := range readBack(t, mc.BootstrapServers(), topic, delivered) {
		s, ok := spans[int64(m.TopicPartition.Offset)]
		require.True(t, ok, "no span for offset %d", m.TopicPartition.Offset)
		sc := trace.SpanContextFromContext(Extract(context.Background(), propagation.TraceContext{}, m.Headers))
		require.True(t, sc.IsValid(), "offset %d: headers %v", m.TopicPartition.Offset, m.Headers)
		assert.Equal(t, s.SpanContext().TraceID(), sc.TraceID())
		assert.Equal(t, s.SpanContext().SpanID(), sc.SpanID())
		assert.True(t, sc.IsRemote())
	}

	got := collect(t, reader)
	dst := attribute.Key("messaging.destination.name")
	n, _ := sum(t, got["aioproducer.messages.produced"], dst.String(topic))
	assert.EqualValues(t, delivered+failed, n)
	n, _ = sum(t, got["messaging.client.sent.messages"], dst.String(topic))
	assert.EqualValues(t, delivered+failed, n)
	n, _ = sum(t, got["messaging.client.sent.messages"], errType.String("local_unknown_partition"))
	assert.EqualValues(t, failed, n)
	n, _ = sum(t, got["aioproducer.messages.refused"], errType.String("invalid_message"))
	assert.EqualValues(t, refused, n)
	assert.EqualValues(t, delivered+failed, histCount(t, got["messaging.client.operation.duration"], dst.String(topic)))
	assert.Positive(t, histCount(t, got["aioproducer.batch.messages"], dst.String(topic)))
}

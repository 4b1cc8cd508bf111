package aiootel

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// A real Producer on librdkafka's mock cluster with both hooks: one span per message, the child of the
// span in Produce's ctx, ended with its offset or its error; the traceparent read back from the broker
// is the message's span; the metrics count the same run.
func TestProducerOnMockClusterTracesAndMeasures(t *testing.T) {
	const topic, delivered, failed, refused = "orders", 10, 2, 1
	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic(topic, 1))

	tp, sr := newTracing(t)
	mp, reader := newMetrics(t)
	tr := NewTracer(WithTracerProvider(tp), WithPropagator(propagation.TraceContext{}))
	p := c.NewProducer(t, nil, aioproducer.WithHooks(tr, NewMeter(WithMeterProvider(mp))))

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
	for _, r := range c.Records(t, topic, delivered) {
		s, ok := spans[r.Offset]
		require.True(t, ok, "no span for %s", r)
		sc := trace.SpanContextFromContext(Extract(context.Background(), propagation.TraceContext{}, r.Headers))
		require.True(t, sc.IsValid(), "%s: headers %v", r, r.Headers)
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
	require.NoError(t, p.Close(ctx))
}

package aiootel

import (
	"context"
	"fmt"
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

func attrMap(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// The hook methods called directly, as the producer calls them.
func TestTracerSpanPerMessageChildOfProduceContext(t *testing.T) {
	tp, sr := newTracing(t)
	tr := NewTracer(WithTracerProvider(tp), WithPropagator(propagation.TraceContext{}), WithMessageKey())
	ctx, parent := tp.Tracer("test").Start(context.Background(), "handle")

	ok := &aioproducer.Message{Topic: "orders", Key: []byte("k1"), Value: []byte("v"),
		Headers: []aioproducer.Header{{Key: "app", Value: []byte("x")}}}
	bad := &aioproducer.Message{Topic: "orders", Value: []byte("v"), Partition: aioproducer.ExplicitPartition(9)}
	refused := &aioproducer.Message{Topic: "bad topic"}
	for _, m := range []*aioproducer.Message{ok, bad, refused} {
		tr.OnProduce(ctx, m)
	}
	assert.Equal(t, 3, tr.pending())
	require.Len(t, ok.Headers, 2, "the hook adds traceparent after the message's own headers")
	assert.Equal(t, "app", ok.Headers[0].Key)
	assert.Equal(t, "traceparent", ok.Headers[1].Key)
	assert.Empty(t, sr.Ended())

	tr.OnDelivery(aioproducer.DeliveryEvent{Message: ok, Delivery: aioproducer.Delivery{Topic: "orders", Partition: 2, Offset: 41}, Latency: time.Millisecond})
	derr := &aioproducer.DeliveryError{Topic: "orders", Err: kafka.NewError(kafka.ErrUnknownPartition, "Local: Unknown partition", false)}
	tr.OnDelivery(aioproducer.DeliveryEvent{Message: bad, Err: derr})
	tr.OnDelivery(aioproducer.DeliveryEvent{Message: refused, Err: fmt.Errorf("%w: topic", aioproducer.ErrInvalidMessage), Refused: true})
	parent.End()
	assert.Zero(t, tr.pending(), "every span is ended and forgotten")

	spans := sr.Ended()
	require.Len(t, spans, 4)
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	require.Len(t, byName["send orders"], 2)
	okSpan, badSpan := byName["send orders"][0], byName["send orders"][1]
	for _, s := range append(byName["send orders"], byName["send bad topic"]...) {
		assert.Equal(t, trace.SpanKindProducer, s.SpanKind())
		assert.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID(), "the parent is the span in Produce's ctx")
		assert.Equal(t, parent.SpanContext().TraceID(), s.SpanContext().TraceID())
		a := attrMap(s)
		assert.Equal(t, "kafka", a["messaging.system"].AsString())
		assert.Equal(t, "send", a["messaging.operation.type"].AsString())
	}

	a := attrMap(okSpan)
	assert.Equal(t, "orders", a["messaging.destination.name"].AsString())
	assert.Equal(t, "k1", a["messaging.kafka.message.key"].AsString())
	assert.Equal(t, "2", a["messaging.destination.partition.id"].AsString())
	assert.EqualValues(t, 41, a["messaging.kafka.offset"].AsInt64())
	assert.Equal(t, codes.Unset, okSpan.Status().Code)

	// The header holds the message's span context.
	got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), headerCarrier{ok}))
	assert.Equal(t, okSpan.SpanContext().TraceID(), got.TraceID())
	assert.Equal(t, okSpan.SpanContext().SpanID(), got.SpanID())
	assert.Equal(t, got.SpanID(), trace.SpanContextFromContext(Extract(context.Background(), propagation.TraceContext{}, ok.Headers)).SpanID())

	assert.Equal(t, codes.Error, badSpan.Status().Code)
	assert.Contains(t, badSpan.Status().Description, "Unknown partition")
	assert.Equal(t, "local_unknown_partition", attrMap(badSpan)["error.type"].AsString())
	assert.Equal(t, "9", attrMap(badSpan)["messaging.destination.partition.id"].AsString())
	require.Len(t, badSpan.Events(), 1)
	assert.Equal(t, "exception", badSpan.Events()[0].Name)

	rs := byName["send bad topic"][0]
	assert.Equal(t, codes.Error, rs.Status().Code)
	assert.Equal(t, "invalid_message", attrMap(rs)["error.type"].AsString())
	assert.True(t, attrMap(rs)["messaging.kafka.message.tombstone"].AsBool())
}

// A *Message produced again before its first outcome gets a span per Produce, each ended once; the
// traceparent header is replaced, not repeated.
func TestTracerSameMessageProducedTwice(t *testing.T) {
	tp, sr := newTracing(t)
	tr := NewTracer(WithTracerProvider(tp), WithPropagator(propagation.TraceContext{}))
	m := &aioproducer.Message{Topic: "t", Value: []byte("v")}
	tr.OnProduce(context.Background(), m)
	tr.OnProduce(context.Background(), m)
	require.Len(t, m.Headers, 1)
	assert.Equal(t, 2, tr.pending())
	tr.OnDelivery(aioproducer.DeliveryEvent{Message: m, Delivery: aioproducer.Delivery{Topic: "t", Offset: 0}})
	tr.OnDelivery(aioproducer.DeliveryEvent{Message: m, Delivery: aioproducer.Delivery{Topic: "t", Offset: 1}})
	tr.OnDelivery(aioproducer.DeliveryEvent{Message: m}) // no third span: ignored
	assert.Zero(t, tr.pending())
	require.Len(t, sr.Ended(), 2)
	assert.NotEqual(t, sr.Ended()[0].SpanContext().SpanID(), sr.Ended()[1].SpanContext().SpanID())
	for _, s := range sr.Ended() {
		assert.False(t, s.Parent().IsValid(), "no span in ctx: a root span")
	}
}

func TestTracerCarrier(t *testing.T) {
	m := &aioproducer.Message{Headers: []aioproducer.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("3")}}}
	c := headerCarrier{m}
	assert.Equal(t, "3", c.Get("a"))
	assert.Empty(t, c.Get("x"))
	assert.Equal(t, []string{"a", "b", "a"}, c.Keys())
	c.Set("b", "4")
	c.Set("c", "5")
	assert.Equal(t, []aioproducer.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("4")}, {Key: "a", Value: []byte("3")}, {Key: "c", Value: []byte("5")}}, m.Headers)
}

// Messages that share one Headers slice, with room to spare in its backing array, each get their own
// trace context, and the shared slice is left alone.
func TestTracerMessagesSharingHeaders(t *testing.T) {
	tp, _ := newTracing(t)
	tr := NewTracer(WithTracerProvider(tp), WithPropagator(propagation.TraceContext{}))
	shared := make([]aioproducer.Header, 1, 8)
	shared[0] = aioproducer.Header{Key: "app", Value: []byte("x")}
	a := &aioproducer.Message{Topic: "t", Headers: shared}
	b := &aioproducer.Message{Topic: "t", Headers: shared}
	tr.OnProduce(context.Background(), a)
	tr.OnProduce(context.Background(), b)
	require.Len(t, a.Headers, 2)
	require.Len(t, b.Headers, 2)
	assert.NotEqual(t, string(a.Headers[1].Value), string(b.Headers[1].Value))
	assert.Len(t, shared, 1)
	assert.Empty(t, shared[:2][1].Key, "the shared backing array was not written")
	for _, m := range []*aioproducer.Message{a, b} {
		tr.OnDelivery(aioproducer.DeliveryEvent{Message: m})
	}
	assert.Zero(t, tr.pending())
}

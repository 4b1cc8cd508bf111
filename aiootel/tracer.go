package aiootel

import (
	"context"
	"strconv"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/seed-f937cf20/aioproducer"
)

// instrumentationName names the tracer and the meter.
const instrumentationName = "github.com/seed-f937cf20/aioproducer/aiootel"

var (
	_ aioproducer.HookProduce  = (*Tracer)(nil)
	_ aioproducer.HookDelivery = (*Tracer)(nil)
)

// Tracer is an aioproducer hook that traces every message: a producer span from Produce to the
// message's outcome, whose parent is the span in Produce's ctx, and the span's context injected into
// the message's headers (W3C "traceparent" with the default propagator), so a consumer continues the
// trace. Create it with NewTracer and pass it to aioproducer.WithHooks.
//
// The span is named "send <topic>" and has the messaging semantic conventions' attributes (v1.43.0):
// messaging.system "kafka", messaging.operation.name and .type "send", messaging.destination.name,
// messaging.message.body.size, messaging.kafka.message.tombstone for a nil value, with
// WithMessageKey messaging.kafka.message.key; at the outcome messaging.destination.partition.id and
// messaging.kafka.offset, or, for a message that failed or that Produce refused, status Error, the
// recorded error and error.type (a bounded class: "local_message_timed_out", "invalid_message", ...).
type Tracer struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	key        bool

	// spans maps each message the hook was told of to its span, until its outcome: the producer
	// tells HookDelivery of every message HookProduce saw, exactly once, so no entry stays behind.
	spans sync.Map // *aioproducer.Message → trace.Span
	// again holds the spans of a *Message produced again before its first outcome (rare): spans
	// holds one span per message only.
	mu    sync.Mutex
	again map[*aioproducer.Message][]trace.Span
}

// TracerOption configures NewTracer.
type TracerOption func(*tracerConfig)

type tracerConfig struct {
	provider   trace.TracerProvider
	propagator propagation.TextMapPropagator
	key        bool
}

// WithTracerProvider sets the TracerProvider the spans come from (default otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) TracerOption {
	return func(c *tracerConfig) { c.provider = tp }
}

// WithPropagator sets the propagator that writes the trace context into the message headers (default
// otel.GetTextMapPropagator(); set propagation.TraceContext{} to send "traceparent" even when no
// global propagator is installed, as the global one then propagates nothing).
func WithPropagator(p propagation.TextMapPropagator) TracerOption {
	return func(c *tracerConfig) { c.propagator = p }
}

// WithMessageKey records the message key as messaging.kafka.message.key (off by default: keys may
// hold personal data, and a key that is not UTF-8 is recorded as its quoted Go string).
func WithMessageKey() TracerOption {
	return func(c *tracerConfig) { c.key = true }
}

// NewTracer returns a Tracer.
func NewTracer(opts ...TracerOption) *Tracer {
	var c tracerConfig
	for _, o := range opts {
		o(&c)
	}
	if c.provider == nil {
		c.provider = otel.GetTracerProvider()
	}
	if c.propagator == nil {
		c.propagator = otel.GetTextMapPropagator()
	}
	return &Tracer{
		tracer:     c.provider.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL)),
		propagator: c.propagator,
		key:        c.key,
		again:      map[*aioproducer.Message][]trace.Span{},
	}
}

// OnProduce starts the message's span, a child of the span in ctx, and injects its context into the
// message's headers (aioproducer.HookProduce).
func (t *Tracer) OnProduce(ctx context.Context, m *aioproducer.Message) {
	if m == nil {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationNameKey.String("send"),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingDestinationName(m.Topic),
		semconv.MessagingMessageBodySize(len(m.Value)),
	)
	if id, ok := m.Partition.ID(); ok {
		attrs = append(attrs, semconv.MessagingDestinationPartitionID(strconv.Itoa(int(id))))
	}
	if m.Value == nil {
		attrs = append(attrs, semconv.MessagingKafkaMessageTombstoneKey.Bool(true))
	}
	if t.key && m.Key != nil {
		k := string(m.Key)
		if !utf8.ValidString(k) {
			k = strconv.Quote(k)
		}
		attrs = append(attrs, semconv.MessagingKafkaMessageKey(k))
	}
	ctx, span := t.tracer.Start(ctx, "send "+m.Topic,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	t.propagator.Inject(ctx, headerCarrier{m})
	if _, loaded := t.spans.LoadOrStore(m, span); loaded {
		t.mu.Lock()
		t.again[m] = append(t.again[m], span)
		t.mu.Unlock()
	}
}

// OnDelivery ends the message's span, with where it was written or with its error
// (aioproducer.HookDelivery).
func (t *Tracer) OnDelivery(e aioproducer.DeliveryEvent) {
	span := t.take(e.Message)
	if span == nil {
		return
	}
	if e.Err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(aioproducer.ErrorClass(e.Err)))
		span.RecordError(e.Err)
		span.SetStatus(codes.Error, e.Err.Error())
	} else {
		span.SetAttributes(
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(e.Delivery.Partition))),
			semconv.MessagingKafkaOffset(int(e.Delivery.Offset)),
		)
	}
	span.End()
}

// take removes and returns m's span: the first one started, then those of m produced again.
func (t *Tracer) take(m *aioproducer.Message) trace.Span {
	if v, ok := t.spans.LoadAndDelete(m); ok {
		return v.(trace.Span)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.again[m]
	if len(l) == 0 {
		return nil
	}
	if len(l) == 1 {
		delete(t.again, m)
	} else {
		t.again[m] = l[1:]
	}
	return l[0]
}

// pending returns the number of spans started and not ended, for the tests.
func (t *Tracer) pending() int {
	n := 0
	t.spans.Range(func(any, any) bool { n++; return true })
	t.mu.Lock()
	for _, l := range t.again {
		n += len(l)
	}
	t.mu.Unlock()
	return n
}

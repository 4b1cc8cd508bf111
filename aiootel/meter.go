package aiootel

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/seed-f937cf20/aioproducer"
)

var (
	_ aioproducer.HookProduce  = (*Meter)(nil)
	_ aioproducer.HookDelivery = (*Meter)(nil)
	_ aioproducer.HookBatch    = (*Meter)(nil)
	_ aioproducer.HookError    = (*Meter)(nil)
)

// Meter is an aioproducer hook that records the producer's metrics with OpenTelemetry instruments.
// Create it with NewMeter and pass it to aioproducer.WithHooks. The instruments, with the messaging
// semantic conventions' names where they have one:
//
//	messaging.client.sent.messages       counter {message}: outcomes of accepted messages; error.type on failures
//	messaging.client.operation.duration  histogram s: time from Produce to the outcome; error.type on failures
//	aioproducer.messages.produced        counter {message}: messages handed to Produce and its variants
//	aioproducer.messages.refused         counter {message}: messages Produce refused; error.type
//	aioproducer.batch.messages           histogram {message}: messages per batch handed to librdkafka
//	aioproducer.batch.size               histogram By: bytes per batch
//	aioproducer.client.errors            counter {error}: librdkafka's errors beside deliveries; error.type
//
// Every instrument but aioproducer.client.errors has messaging.system "kafka" and
// messaging.destination.name (the topic); the sent messages and duration also
// messaging.operation.name "send". error.type is a bounded class (see Tracer).
type Meter struct {
	produced, sent, refused, clientErrors metric.Int64Counter
	duration                              metric.Float64Histogram
	batchMessages, batchBytes             metric.Int64Histogram

	attrs sync.Map // attrKey → metric.MeasurementOption
}

type attrKey struct {
	topic, errType string
	send           bool
}

// MeterOption configures NewMeter.
type MeterOption func(*meterConfig)

type meterConfig struct {
	provider metric.MeterProvider
	buckets  []float64
}

// WithMeterProvider sets the MeterProvider of the instruments (default otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) MeterOption {
	return func(c *meterConfig) { c.provider = mp }
}

// WithDurationBuckets sets the bucket boundaries of messaging.client.operation.duration, in seconds
// (default the semantic conventions' advice: 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1,
// 2.5, 5, 7.5, 10).
func WithDurationBuckets(b []float64) MeterOption {
	return func(c *meterConfig) { c.buckets = append([]float64(nil), b...) }
}

// NewMeter returns a Meter. An instrument the MeterProvider fails to create is reported to
// otel.Handle and records nothing.
func NewMeter(opts ...MeterOption) *Meter {
	cfg := meterConfig{buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.provider == nil {
		cfg.provider = otel.GetMeterProvider()
	}
	mt := cfg.provider.Meter(instrumentationName, metric.WithSchemaURL(semconv.SchemaURL))
	m := &Meter{}
	var err error
	check := func(e error) {
		if e != nil && err == nil {
			err = e
		}
	}
	var e error
	m.sent, e = mt.Int64Counter("messaging.client.sent.messages", metric.WithUnit("{message}"),
		metric.WithDescription("Messages the producer attempted to send to the broker, by outcome."))
	check(e)
	m.duration, e = mt.Float64Histogram("messaging.client.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from Produce to the message's outcome."), metric.WithExplicitBucketBoundaries(cfg.buckets...))
	check(e)
	m.produced, e = mt.Int64Counter("aioproducer.messages.produced", metric.WithUnit("{message}"),
		metric.WithDescription("Messages handed to Produce and its variants."))
	check(e)
	m.refused, e = mt.Int64Counter("aioproducer.messages.refused", metric.WithUnit("{message}"),
		metric.WithDescription("Messages Produce refused: never accepted."))
	check(e)
	m.batchMessages, e = mt.Int64Histogram("aioproducer.batch.messages", metric.WithUnit("{message}"),
		metric.WithDescription("Messages per batch handed to librdkafka."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384))
	check(e)
	m.batchBytes, e = mt.Int64Histogram("aioproducer.batch.size", metric.WithUnit("By"),
		metric.WithDescription("Bytes (keys, values, headers) per batch handed to librdkafka."),
		metric.WithExplicitBucketBoundaries(256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864))
	check(e)
	m.clientErrors, e = mt.Int64Counter("aioproducer.client.errors", metric.WithUnit("{error}"),
		metric.WithDescription("Errors librdkafka reported beside delivery reports."))
	check(e)
	if err != nil {
		otel.Handle(err)
	}
	return m
}

// attributes returns the attribute set of a topic, an error class and whether the instrument is a
// "send" operation's, made once each: the sets are few (topics times error classes).
func (m *Meter) attributes(k attrKey) metric.MeasurementOption {
	if v, ok := m.attrs.Load(k); ok {
		return v.(metric.MeasurementOption)
	}
	kv := []attribute.KeyValue{semconv.MessagingSystemKafka, semconv.MessagingDestinationName(k.topic)}
	if k.send {
		kv = append(kv, semconv.MessagingOperationNameKey.String("send"))
	}
	if k.errType != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(k.errType))
	}
	v, _ := m.attrs.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(kv...)))
	return v.(metric.MeasurementOption)
}

// OnProduce counts the message (aioproducer.HookProduce).
func (m *Meter) OnProduce(ctx context.Context, msg *aioproducer.Message) {
	if msg == nil {
		return
	}
	m.produced.Add(ctx, 1, m.attributes(attrKey{topic: msg.Topic}))
}

// OnDelivery records the message's outcome and how long it took (aioproducer.HookDelivery).
func (m *Meter) OnDelivery(e aioproducer.DeliveryEvent) {
	topic := e.Delivery.Topic
	if e.Message != nil {
		topic = e.Message.Topic
	}
	ctx := context.Background()
	if e.Refused {
		m.refused.Add(ctx, 1, m.attributes(attrKey{topic: topic, errType: aioproducer.ErrorClass(e.Err)}))
		return
	}
	a := m.attributes(attrKey{topic: topic, errType: aioproducer.ErrorClass(e.Err), send: true})
	m.sent.Add(ctx, 1, a)
	m.duration.Record(ctx, e.Latency.Seconds(), a)
}

// OnBatch records the batch's size (aioproducer.HookBatch).
func (m *Meter) OnBatch(e aioproducer.BatchEvent) {
	a := m.attributes(attrKey{topic: e.Topic})
	m.batchMessages.Record(context.Background(), int64(e.Messages), a)
	m.batchBytes.Record(context.Background(), e.Bytes, a)
}

// OnError counts librdkafka's error (aioproducer.HookError).
func (m *Meter) OnError(err error) {
	m.clientErrors.Add(context.Background(), 1, metric.WithAttributes(semconv.ErrorTypeKey.String(aioproducer.ErrorClass(err))))
}

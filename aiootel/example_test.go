package aiootel_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aiootel"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

func Example() {
	cluster, _ := aioproducertest.StartCluster(aioproducertest.WithTopic("orders", 1)) // in-process mock Kafka
	defer cluster.Close()

	spans := tracetest.NewSpanRecorder() // your exporter here, e.g. otlptracegrpc
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": cluster.Bootstrap()},
		aioproducer.WithHooks(
			aiootel.NewTracer(aiootel.WithTracerProvider(tp), aiootel.WithPropagator(propagation.TraceContext{})),
			aiootel.NewMeter(aiootel.WithMeterProvider(mp)),
		),
		aioproducer.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ctx, span := tp.Tracer("app").Start(ctx, "handle order")
	msg := &aioproducer.Message{Topic: "orders", Value: []byte("order 1")}
	fut, _ := p.Produce(ctx, msg) // msg's span is a child of "handle order"
	d, _ := fut.Wait(ctx)
	span.End()
	_ = p.Close(ctx)

	fmt.Println("header:", msg.Headers[0].Key)
	for _, s := range spans.Ended() { // Close waited for the hooks: the message's span has ended
		if s.SpanKind() != trace.SpanKindProducer {
			continue
		}
		fmt.Println("span:", s.Name(), s.SpanKind(), "parent:", s.Parent().SpanID() == span.SpanContext().SpanID())
	}
	fmt.Println("offset:", d.Offset)
	// Output:
	// header: traceparent
	// span: send orders producer parent: true
	// offset: 0
}

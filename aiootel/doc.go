// Package aiootel traces and measures an aioproducer Producer with OpenTelemetry. It is a module of its
// own (github.com/seed-f937cf20/aioproducer/aiootel), so that users of aioproducer who do not need it
// download none of OpenTelemetry.
//
// Tracer gives every message a producer span, the child of the span in Produce's ctx, and writes the
// span's context into the message's headers (W3C "traceparent"), so a consumer continues the trace;
// Meter records the message outcomes, the send duration and the batch sizes. Both are aioproducer
// hooks:
//
//	p, err := aioproducer.New(cfg, aioproducer.WithHooks(
//		aiootel.NewTracer(aiootel.WithTracerProvider(tp), aiootel.WithPropagator(propagation.TraceContext{})),
//		aiootel.NewMeter(aiootel.WithMeterProvider(mp)),
//	))
//	ctx, span := tracer.Start(ctx, "handle order")
//	fut, err := p.Produce(ctx, msg) // msg's span is a child of "handle order"
//
// On the consumer side, Extract reads the context back from a message's headers.
package aiootel

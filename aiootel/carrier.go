package aiootel

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/seed-f937cf20/aioproducer"
)

// headerCarrier is a propagation.TextMapCarrier over a message's headers.
type headerCarrier struct{ m *aioproducer.Message }

var _ propagation.TextMapCarrier = headerCarrier{}

// Get returns the value of the last header named key, or "".
func (c headerCarrier) Get(key string) string {
	for i := len(c.m.Headers) - 1; i >= 0; i-- {
		if c.m.Headers[i].Key == key {
			return string(c.m.Headers[i].Value)
		}
	}
	return ""
}

// Set replaces the value of the headers named key (a message produced again carries the new trace
// context, not two), or appends one. It writes to a copy of the headers: messages may share one
// Headers slice (or its backing array), and each must get its own trace context.
func (c headerCarrier) Set(key, value string) {
	hs := make([]aioproducer.Header, len(c.m.Headers), len(c.m.Headers)+1)
	copy(hs, c.m.Headers)
	found := false
	for i := range hs {
		if hs[i].Key == key {
			hs[i].Value = []byte(value)
			found = true
		}
	}
	if !found {
		hs = append(hs, aioproducer.Header{Key: key, Value: []byte(value)})
	}
	c.m.Headers = hs
}

// Keys returns the header names.
func (c headerCarrier) Keys() []string {
	keys := make([]string, len(c.m.Headers))
	for i, h := range c.m.Headers {
		keys[i] = h.Key
	}
	return keys
}

// Extract returns ctx with the trace context found in m's headers by propagator p (nil: the global
// propagator, otel.GetTextMapPropagator), for a consumer that reads the messages a Tracer traced.
func Extract(ctx context.Context, p propagation.TextMapPropagator, headers []aioproducer.Header) context.Context {
	if p == nil {
		p = otel.GetTextMapPropagator()
	}
	return p.Extract(ctx, headerCarrier{&aioproducer.Message{Headers: headers}})
}

package aiootel

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// newTracing returns a TracerProvider that records every span in the returned recorder.
func newTracing(t testing.TB) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, sr
}

// newMetrics returns a MeterProvider read by the returned manual reader.
func newMetrics(t testing.TB) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp, r
}

// collect reads every metric of r by name.
func collect(t testing.TB, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// hasAttrs reports whether set holds every attribute of want.
func hasAttrs(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// sum returns the sum of a counter's points that have the attributes want, and how many points had.
func sum(t testing.TB, m metricdata.Metrics, want ...attribute.KeyValue) (int64, int) {
	t.Helper()
	s, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T", m.Name, m.Data)
	var total int64
	n := 0
	for _, dp := range s.DataPoints {
		if hasAttrs(dp.Attributes, want) {
			total += dp.Value
			n++
		}
	}
	return total, n
}

// histCount returns the count of a float histogram's points that have the attributes want.
func histCount(t testing.TB, m metricdata.Metrics, want ...attribute.KeyValue) uint64 {
	t.Helper()
	var n uint64
	switch h := m.Data.(type) {
	case metricdata.Histogram[float64]:
		for _, dp := range h.DataPoints {
			if hasAttrs(dp.Attributes, want) {
				n += dp.Count
			}
		}
	case metricdata.Histogram[int64]:
		for _, dp := range h.DataPoints {
			if hasAttrs(dp.Attributes, want) {
				n += dp.Count
			}
		}
	default:
		t.Fatalf("%s is a %T", m.Name, m.Data)
	}
	return n
}

package aioprom

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// scrape GETs url and parses the text exposition.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return mfs
}

// value returns the value of the family's metric whose labels include want (name, value pairs), and
// whether there is one.
func value(mfs map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// A known workload through a real Producer on librdkafka's mock cluster, scraped over HTTP: 20
// delivered, 3 failed (a partition the topic does not have), 2 refused (an invalid topic name), and
// the statistics gauges.
func TestProducerOnMockClusterScrapedOverHTTP(t *testing.T) {
	const topic, delivered, failed, refused = "orders", 20, 3, 2
	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic(topic, 2))

	m := New()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(m))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()

	p := c.NewProducer(t, kafka.ConfigMap{"statistics.interval.ms": 100}, aioproducer.WithHooks(m))
	m.WatchStats(p)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var futs []*aioproducer.Future
	for i := range delivered {
		f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("value")})
		require.NoError(t, err)
		futs = append(futs, f)
	}
	for range failed {
		f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("nowhere"), Partition: aioproducer.ExplicitPartition(99)})
		require.NoError(t, err)
		futs = append(futs, f)
	}
	for range refused {
		_, err := p.Produce(ctx, &aioproducer.Message{Topic: "not a topic!", Value: []byte("x")})
		require.ErrorIs(t, err, aioproducer.ErrInvalidMessage)
	}
	require.NoError(t, p.Flush(ctx), "Flush returns once every delivery event was seen")
	for i, f := range futs {
		_, err := f.Wait(ctx)
		if i < delivered {
			require.NoError(t, err)
		} else {
			var ke kafka.Error
			require.ErrorAs(t, err, &ke)
			require.Equal(t, kafka.ErrUnknownPartition, ke.Code())
		}
	}

	mfs := scrape(t, srv.URL)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"aioproducer_messages_produced_total", []string{"topic", topic}, delivered + failed},
		{"aioproducer_messages_produced_total", []string{"topic", "not a topic!"}, refused},
		{"aioproducer_messages_delivered_total", []string{"topic", topic}, delivered},
		{"aioproducer_messages_failed_total", []string{"topic", topic, "error", "local_unknown_partition"}, failed},
		{"aioproducer_messages_refused_total", []string{"topic", "not a topic!", "error", "invalid_message"}, refused},
		{"aioproducer_outstanding_messages", nil, 0},
		{"aioproducer_delivery_latency_seconds", []string{"topic", topic}, delivered},
		{"aioproducer_held_messages", nil, 0},
		{"aioproducer_hook_panics_total", nil, 0},
	} {
		got, ok := value(mfs, c.name, c.labels...)
		if assert.True(t, ok, "%s%v missing", c.name, c.labels) {
			assert.Equal(t, c.want, got, "%s%v", c.name, c.labels)
		}
	}
	batches, ok := value(mfs, "aioproducer_batch_messages", "topic", topic)
	require.True(t, ok)
	assert.Positive(t, batches)

	// librdkafka's statistics, every 100 ms: the broker is UP and answered requests.
	// A report made after the deliveries: the broker UP, nothing queued.
	require.Eventually(t, func() bool {
		mfs = scrape(t, srv.URL)
		up, ok := value(mfs, "aioproducer_broker_up")
		queued, ok2 := value(mfs, "aioproducer_librdkafka_queued_messages")
		_, ok3 := value(mfs, "aioproducer_partition_queued_messages", "topic", topic, "partition", "0")
		return ok && ok2 && ok3 && up == 1 && queued == 0
	}, 10*time.Second, 50*time.Millisecond, "no statistics report with the broker UP and nothing queued")
	st, ok := value(mfs, "aioproducer_broker_state", "state", "UP")
	assert.True(t, ok)
	assert.Equal(t, 1.0, st)
	_, ok = value(mfs, "aioproducer_broker_rtt_seconds", "stat", "p99")
	assert.True(t, ok, "broker RTT gauge")
	q, ok := value(mfs, "aioproducer_partition_queued_messages", "topic", topic, "partition", "0")
	assert.True(t, ok, "partition queue depth gauge")
	assert.Zero(t, q)
	require.NoError(t, p.Close(ctx))
}

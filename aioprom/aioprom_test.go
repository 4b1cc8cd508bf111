package aioprom

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
)

// The hook methods called directly, as the producer calls them: the counters, the outstanding gauge
// and the histograms follow.
func TestHookMethodsCountOutcomes(t *testing.T) {
	m := New()
	ctx := context.Background()
	msg := func(topic string) *aioproducer.Message { return &aioproducer.Message{Topic: topic, Value: []byte("v")} }
	a, b, bad := msg("a"), msg("b"), msg("bad topic")
	for _, x := range []*aioproducer.Message{a, a, b, bad} {
		m.OnProduce(ctx, x)
	}
	assert.Equal(t, 4.0, testutil.ToFloat64(m.outstanding))
	m.OnDelivery(aioproducer.DeliveryEvent{Message: a, Delivery: aioproducer.Delivery{Topic: "a", Offset: 0}, Latency: 3 * time.Millisecond})
	m.OnDelivery(aioproducer.DeliveryEvent{Message: a, Err: &aioproducer.DeliveryError{Topic: "a", Err: kafka.NewError(kafka.ErrMsgTimedOut, "", false)}, Latency: time.Second})
	m.OnDelivery(aioproducer.DeliveryEvent{Message: b, Delivery: aioproducer.Delivery{Topic: "b"}, Latency: 40 * time.Millisecond})
	m.OnDelivery(aioproducer.DeliveryEvent{Message: bad, Err: fmt.Errorf("%w: nope", aioproducer.ErrInvalidMessage), Refused: true})
	m.OnBatch(aioproducer.BatchEvent{Topic: "a", Messages: 2, Bytes: 2000, Took: 50 * time.Microsecond})
	m.OnError(kafka.NewError(kafka.ErrAllBrokersDown, "down", false))

	assert.Zero(t, testutil.ToFloat64(m.outstanding))
	assert.Equal(t, 2.0, testutil.ToFloat64(m.produced.WithLabelValues("a")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.delivered.WithLabelValues("a")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.delivered.WithLabelValues("b")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.failed.WithLabelValues("a", "local_message_timed_out")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.refused.WithLabelValues("bad topic", "invalid_message")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.clientErrors.WithLabelValues("local_all_broker_connections_are_down")))

	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(m))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP aioproducer_delivery_latency_seconds Time from Produce to delivery, of delivered messages.
# TYPE aioproducer_delivery_latency_seconds histogram
aioproducer_delivery_latency_seconds_bucket{topic="a",le="0.001"} 0
aioproducer_delivery_latency_seconds_bucket{topic="a",le="0.002"} 0
aioproducer_delivery_latency_seconds_bucket{topic="a",le="0.004"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="0.008"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="0.016"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="0.032"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="0.064"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="0.128"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="0.256"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="0.512"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="1.024"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="2.048"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="4.096"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="8.192"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="16.384"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="32.768"} 1
aioproducer_delivery_latency_seconds_bucket{topic="a",le="+Inf"} 1
aioproducer_delivery_latency_seconds_sum{topic="a"} 0.003
aioproducer_delivery_latency_seconds_count{topic="a"} 1
aioproducer_delivery_latency_seconds_bucket{topic="b",le="0.001"} 0
aioproducer_delivery_latency_seconds_bucket{topic="b",le="0.002"} 0
aioproducer_delivery_latency_seconds_bucket{topic="b",le="0.004"} 0
aioproducer_delivery_latency_seconds_bucket{topic="b",le="0.008"} 0
aioproducer_delivery_latency_seconds_bucket{topic="b",le="0.016"} 0
aioproducer_delivery_latency_seconds_bucket{topic="b",le="0.032"} 0
aioproducer_delivery_latency_seconds_bucket{topic="b",le="0.064"} 1
aioproducer_delivery_latency_seconds_bucket{topic="b",le="0.128"} 1
aioproducer_delivery_latency_seconds_bucket{topic="b",le="0.256"} 1
aioproducer_delivery_latency_seconds_bucket{topic="b",le="0.512"} 1
aioproducer_delivery_latency_seconds_bucket{topic="b",le="1.024"} 1
aioproducer_delivery_latency_seconds_bucket{topic="b",le="2.048"} 1
aioproducer_delivery_latency_seconds_bucket{topic="b",le="4.096"} 1
aioproducer_delivery_latency_seconds_bucket{topic="b",le="8.192"} 1
aioproducer_delivery_latency_seconds_bucket{topic="b",le="16.384"} 1
aioproducer_delivery_latency_seconds_bucket{topic="b",le="32.768"} 1
aioproducer_delivery_latency_seconds_bucket{topic="b",le="+Inf"} 1
aioproducer_delivery_latency_seconds_sum{topic="b"} 0.04
aioproducer_delivery_latency_seconds_count{topic="b"} 1
# HELP aioproducer_messages_failed_total Messages accepted by Produce that failed, by error class.
# TYPE aioproducer_messages_failed_total counter
aioproducer_messages_failed_total{error="local_message_timed_out",topic="a"} 1
`), "aioproducer_delivery_latency_seconds", "aioproducer_messages_failed_total"))
	n, err := testutil.GatherAndCount(reg, "aioproducer_batch_messages", "aioproducer_batch_bytes", "aioproducer_batch_enqueue_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}

func TestOptionsNameAndLabelTheMetrics(t *testing.T) {
	m := New(WithNamespace("app"), WithSubsystem("orders"), WithConstLabels(prometheus.Labels{"producer": "p1"}),
		WithoutTopicLabel(), WithLatencyBuckets([]float64{0.5, 1}))
	m.OnProduce(context.Background(), &aioproducer.Message{Topic: "a"})
	m.OnDelivery(aioproducer.DeliveryEvent{Message: &aioproducer.Message{Topic: "a"}, Latency: 700 * time.Millisecond})
	m.OnStats(testStats())
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(m))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP app_orders_delivery_latency_seconds Time from Produce to delivery, of delivered messages.
# TYPE app_orders_delivery_latency_seconds histogram
app_orders_delivery_latency_seconds_bucket{producer="p1",le="0.5"} 0
app_orders_delivery_latency_seconds_bucket{producer="p1",le="1"} 1
app_orders_delivery_latency_seconds_bucket{producer="p1",le="+Inf"} 1
app_orders_delivery_latency_seconds_sum{producer="p1"} 0.7
app_orders_delivery_latency_seconds_count{producer="p1"} 1
# HELP app_orders_messages_produced_total Messages handed to Produce and its variants.
# TYPE app_orders_messages_produced_total counter
app_orders_messages_produced_total{producer="p1"} 1
`), "app_orders_delivery_latency_seconds", "app_orders_messages_produced_total"))
	// Without the topic label there are no partition gauges either.
	n, err := testutil.GatherAndCount(reg, "app_orders_partition_queued_messages")
	require.NoError(t, err)
	assert.Zero(t, n)
	n, err = testutil.GatherAndCount(reg, "app_orders_broker_up")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func testStats() *aioproducer.LibrdkafkaStats {
	return &aioproducer.LibrdkafkaStats{
		Messages: 7, MessageBytes: 700,
		Brokers: map[string]aioproducer.BrokerStats{
			"localhost:9092/1": {Name: "localhost:9092/1", NodeID: 1, State: "UP", OutbufRequests: 2, OutbufMessages: 5, WaitingResponses: 1,
				RTT:             aioproducer.LatencyStats{Avg: 2 * time.Millisecond, P50: time.Millisecond, P95: 4 * time.Millisecond, P99: 5 * time.Millisecond, Max: 6 * time.Millisecond, Count: 10},
				InternalLatency: aioproducer.LatencyStats{Avg: 100 * time.Microsecond, Count: 10}},
			":0/internal": {Name: ":0/internal", NodeID: -1, State: "INIT"},
		},
		Topics: map[string]aioproducer.TopicStats{
			"a": {Topic: "a", Partitions: map[int32]aioproducer.PartitionStats{
				0:  {Partition: 0, QueuedMessages: 3, QueuedBytes: 300, InFlight: 4},
				-1: {Partition: -1, QueuedMessages: 1, QueuedBytes: 10},
			}},
		},
	}
}

func TestStatsGaugesFromTheLatestReport(t *testing.T) {
	m := New()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(m))
	n, err := testutil.GatherAndCount(reg, "aioproducer_broker_up", "aioproducer_librdkafka_queued_messages")
	require.NoError(t, err)
	assert.Zero(t, n, "no report yet, no gauges")

	m.OnStats(testStats())
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP aioproducer_broker_up 1 when the broker connection's state is UP, else 0.
# TYPE aioproducer_broker_up gauge
aioproducer_broker_up{broker="localhost:9092/1"} 1
# HELP aioproducer_broker_state 1, with the broker connection's state (UP, DOWN, CONNECT, AUTH, ...) as the state label.
# TYPE aioproducer_broker_state gauge
aioproducer_broker_state{broker="localhost:9092/1",state="UP"} 1
# HELP aioproducer_broker_rtt_seconds Request round-trip time over the last statistics interval (0: no sample).
# TYPE aioproducer_broker_rtt_seconds gauge
aioproducer_broker_rtt_seconds{broker="localhost:9092/1",stat="avg"} 0.002
aioproducer_broker_rtt_seconds{broker="localhost:9092/1",stat="max"} 0.006
aioproducer_broker_rtt_seconds{broker="localhost:9092/1",stat="p50"} 0.001
aioproducer_broker_rtt_seconds{broker="localhost:9092/1",stat="p95"} 0.004
aioproducer_broker_rtt_seconds{broker="localhost:9092/1",stat="p99"} 0.005
# HELP aioproducer_broker_outbuf_requests Requests waiting to be sent to the broker.
# TYPE aioproducer_broker_outbuf_requests gauge
aioproducer_broker_outbuf_requests{broker="localhost:9092/1"} 2
# HELP aioproducer_broker_waiting_responses Requests sent to the broker awaiting their response.
# TYPE aioproducer_broker_waiting_responses gauge
aioproducer_broker_waiting_responses{broker="localhost:9092/1"} 1
# HELP aioproducer_librdkafka_queued_messages Messages librdkafka holds, queued or in flight (msg_cnt), in its latest statistics report.
# TYPE aioproducer_librdkafka_queued_messages gauge
aioproducer_librdkafka_queued_messages 7
# HELP aioproducer_partition_queued_messages Messages in the partition's queue, not yet in a request.
# TYPE aioproducer_partition_queued_messages gauge
aioproducer_partition_queued_messages{partition="-1",topic="a"} 1
aioproducer_partition_queued_messages{partition="0",topic="a"} 3
# HELP aioproducer_partition_in_flight_messages Messages of the partition in requests not yet answered.
# TYPE aioproducer_partition_in_flight_messages gauge
aioproducer_partition_in_flight_messages{partition="-1",topic="a"} 0
aioproducer_partition_in_flight_messages{partition="0",topic="a"} 4
`), "aioproducer_broker_up", "aioproducer_broker_state", "aioproducer_broker_rtt_seconds", "aioproducer_broker_outbuf_requests",
		"aioproducer_broker_waiting_responses", "aioproducer_librdkafka_queued_messages",
		"aioproducer_partition_queued_messages", "aioproducer_partition_in_flight_messages"))

	// A newer report replaces the older: a broker that went DOWN, a partition gone.
	s := testStats()
	b := s.Brokers["localhost:9092/1"]
	b.State = "DOWN"
	s.Brokers["localhost:9092/1"] = b
	delete(s.Topics["a"].Partitions, -1)
	m.OnStats(s)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP aioproducer_broker_up 1 when the broker connection's state is UP, else 0.
# TYPE aioproducer_broker_up gauge
aioproducer_broker_up{broker="localhost:9092/1"} 0
# HELP aioproducer_broker_state 1, with the broker connection's state (UP, DOWN, CONNECT, AUTH, ...) as the state label.
# TYPE aioproducer_broker_state gauge
aioproducer_broker_state{broker="localhost:9092/1",state="DOWN"} 1
# HELP aioproducer_partition_queued_messages Messages in the partition's queue, not yet in a request.
# TYPE aioproducer_partition_queued_messages gauge
aioproducer_partition_queued_messages{partition="0",topic="a"} 3
`), "aioproducer_broker_up", "aioproducer_broker_state", "aioproducer_partition_queued_messages"))

	m2 := New(WithoutPartitionStats())
	m2.OnStats(testStats())
	assert.Zero(t, testutil.CollectAndCount(m2, "aioproducer_partition_queued_messages"))
}

type fixedStats aioproducer.Stats

func (f fixedStats) Stats() aioproducer.Stats { return aioproducer.Stats(f) }

func TestWatchStatsExportsTheProducersGauges(t *testing.T) {
	m := New()
	m.WatchStats(fixedStats{Buffered: 1, InFlight: 2, HeldMessages: 3, HeldBytes: 400, QueueFullWaits: 5, CallbackPanics: 6, HookPanics: 7})
	require.NoError(t, testutil.CollectAndCompare(m, strings.NewReader(`
# HELP aioproducer_held_bytes Bytes counted against WithMaxBuffered (Stats.HeldBytes).
# TYPE aioproducer_held_bytes gauge
aioproducer_held_bytes 400
# HELP aioproducer_in_flight_messages Messages librdkafka holds whose outcome is not known yet (Stats.InFlight).
# TYPE aioproducer_in_flight_messages gauge
aioproducer_in_flight_messages 2
# HELP aioproducer_queue_full_waits_total Times librdkafka's queue was full and a worker waited (Stats.QueueFullWaits).
# TYPE aioproducer_queue_full_waits_total counter
aioproducer_queue_full_waits_total 5
# HELP aioproducer_hook_panics_total Hook calls that panicked (Stats.HookPanics).
# TYPE aioproducer_hook_panics_total counter
aioproducer_hook_panics_total 7
`), "aioproducer_held_bytes", "aioproducer_in_flight_messages", "aioproducer_queue_full_waits_total", "aioproducer_hook_panics_total"))
	m.WatchStats(nil)
	assert.Zero(t, testutil.CollectAndCount(m, "aioproducer_held_bytes"))
}

// The cost of the hook per message: OnProduce and a delivered OnDelivery.
func BenchmarkHookPerMessage(b *testing.B) {
	m := New()
	msg := &aioproducer.Message{Topic: "orders", Value: []byte("v")}
	ev := aioproducer.DeliveryEvent{Message: msg, Delivery: aioproducer.Delivery{Topic: "orders"}, Latency: time.Millisecond}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.OnProduce(ctx, msg)
			m.OnDelivery(ev)
		}
	})
}

package aioprom

import "github.com/prometheus/client_golang/prometheus"

// Option configures New.
type Option func(*config)

type config struct {
	namespace, subsystem string
	constLabels          prometheus.Labels
	topicLabel           bool
	partitionStats       bool
	latencyBuckets       []float64
}

func defaultConfig() config {
	return config{
		namespace:      "aioproducer",
		topicLabel:     true,
		partitionStats: true,
		// 1 ms to 32 s.
		latencyBuckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}
}

// WithNamespace sets the metric names' first part (default "aioproducer"); "" leaves it out.
func WithNamespace(ns string) Option { return func(c *config) { c.namespace = ns } }

// WithSubsystem sets the metric names' second part, between the namespace and the name (default none):
// WithSubsystem("orders") gives aioproducer_orders_messages_produced_total. Use it, or
// WithConstLabels, to tell several producers of one process apart.
func WithSubsystem(s string) Option { return func(c *config) { c.subsystem = s } }

// WithConstLabels adds labels with fixed values to every metric, such as {"producer": "orders"}.
func WithConstLabels(l prometheus.Labels) Option {
	return func(c *config) {
		c.constLabels = make(prometheus.Labels, len(l))
		for k, v := range l {
			c.constLabels[k] = v
		}
	}
}

// WithoutTopicLabel drops the "topic" label from the message and batch metrics, and the partition
// gauges from librdkafka's statistics, for a producer that writes to many topics (each topic is a
// series of each metric otherwise). The default has the label.
func WithoutTopicLabel() Option { return func(c *config) { c.topicLabel = false } }

// WithoutPartitionStats leaves out the per-partition gauges from librdkafka's statistics (one series
// per partition the producer writes to, times three), keeping the per-broker ones.
func WithoutPartitionStats() Option { return func(c *config) { c.partitionStats = false } }

// WithLatencyBuckets sets the buckets of the delivery latency histogram, in seconds (default
// exponential from 1 ms to 32 s: 0.001, 0.002, ..., 32.768).
func WithLatencyBuckets(b []float64) Option {
	return func(c *config) { c.latencyBuckets = append([]float64(nil), b...) }
}

// Package aioprom exports an aioproducer Producer's metrics to Prometheus. Metrics is both an
// aioproducer hook and a prometheus.Collector: pass it to aioproducer.WithHooks and register it.
//
//	m := aioprom.New()
//	prometheus.MustRegister(m)
//	p, err := aioproducer.New(cfg, aioproducer.WithHooks(m))
//	m.WatchStats(p) // optional: the producer's buffer gauges
//
// The metrics, with the default namespace "aioproducer" (WithNamespace, WithSubsystem change it) and
// the "topic" label unless WithoutTopicLabel:
//
//	aioproducer_messages_produced_total{topic}            counter: messages handed to Produce and its variants
//	aioproducer_messages_delivered_total{topic}           counter: messages written to Kafka
//	aioproducer_messages_failed_total{topic,error}        counter: accepted messages that failed
//	aioproducer_messages_refused_total{topic,error}       counter: messages Produce refused (never accepted)
//	aioproducer_outstanding_messages                      gauge: produced, outcome not known yet
//	aioproducer_delivery_latency_seconds{topic}           histogram: Produce to delivery, delivered messages
//	aioproducer_batch_messages{topic}                     histogram: messages per batch handed to librdkafka
//	aioproducer_batch_bytes{topic}                        histogram: bytes per batch
//	aioproducer_batch_enqueue_duration_seconds{topic}     histogram: time to hand a batch to librdkafka
//	aioproducer_client_errors_total{error}                counter: librdkafka's errors beside deliveries
//
// From librdkafka's statistics (set "statistics.interval.ms" in the ConfigMap; gauges of the latest
// report):
//
//	aioproducer_librdkafka_queued_messages, aioproducer_librdkafka_queued_bytes
//	aioproducer_broker_up{broker}                         1 when the connection's state is UP, else 0
//	aioproducer_broker_state{broker,state}                1, with the connection's state as a label
//	aioproducer_broker_rtt_seconds{broker,stat}           request round trip: stat is avg, p50, p95, p99, max
//	aioproducer_broker_internal_latency_seconds{broker,stat}  produce requests' wait in librdkafka's queues
//	aioproducer_broker_outbuf_latency_seconds{broker,stat}    requests' wait in the output buffer
//	aioproducer_broker_outbuf_requests{broker}, aioproducer_broker_outbuf_messages{broker}
//	aioproducer_broker_waiting_responses{broker}
//	aioproducer_partition_queued_messages{topic,partition}   (unless WithoutPartitionStats)
//	aioproducer_partition_queued_bytes{topic,partition}
//	aioproducer_partition_in_flight_messages{topic,partition}
//
// From the producer's Stats, at each scrape, once WatchStats is called:
//
//	aioproducer_buffered_messages, aioproducer_in_flight_messages, aioproducer_held_messages,
//	aioproducer_held_bytes (gauges), aioproducer_queue_full_waits_total,
//	aioproducer_callback_panics_total, aioproducer_hook_panics_total (counters)
//
// The "error" label is aioproducer.ErrorClass(err), a bounded set. Use one Metrics per producer: two producers on
// one Metrics add up their counters, but the librdkafka gauges show the last report of either.
package aioprom

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-f937cf20/aioproducer"
)

var (
	_ aioproducer.HookProduce  = (*Metrics)(nil)
	_ aioproducer.HookDelivery = (*Metrics)(nil)
	_ aioproducer.HookBatch    = (*Metrics)(nil)
	_ aioproducer.HookError    = (*Metrics)(nil)
	_ aioproducer.HookStats    = (*Metrics)(nil)
	_ prometheus.Collector     = (*Metrics)(nil)
)

// Metrics is an aioproducer hook that counts what the producer does, and the prometheus.Collector
// that exports it. Create it with New. Its methods are safe for concurrent use.
type Metrics struct {
	cfg config

	produced, delivered, failed, refused *prometheus.CounterVec
	clientErrors                         *prometheus.CounterVec
	outstanding                          prometheus.Gauge
	latency                              *prometheus.HistogramVec
	batchMessages, batchBytes, batchTook *prometheus.HistogramVec

	statsDescs
	watch atomic.Pointer[statsSource]

	// producedByTopic and deliveredByTopic cache each topic's children of the metrics every message
	// touches (one entry, "", without the topic label): a vec's WithLabelValues hashes the labels at
	// every call.
	producedByTopic  sync.Map // string → prometheus.Counter
	deliveredByTopic sync.Map // string → *deliveredMetrics

	mu    sync.Mutex
	stats *aioproducer.LibrdkafkaStats // the latest report, under mu
}

// StatsSource is what WatchStats reads: an *aioproducer.Producer.
type StatsSource interface {
	Stats() aioproducer.Stats
}

type statsSource struct{ StatsSource }

// New returns a Metrics. Register it (prometheus.MustRegister(m), or a registry of your own) and pass it
// to aioproducer.WithHooks.
func New(opts ...Option) *Metrics {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	m := &Metrics{cfg: cfg}
	var topic []string
	if cfg.topicLabel {
		topic = []string{"topic"}
	}
	withError := append(append([]string(nil), topic...), "error")
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: cfg.namespace, Subsystem: cfg.subsystem, ConstLabels: cfg.constLabels, Name: name, Help: help,
		}, labels)
	}
	histogram := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: cfg.namespace, Subsystem: cfg.subsystem, ConstLabels: cfg.constLabels, Name: name, Help: help,
			Buckets: buckets,
		}, topic)
	}
	m.produced = counter("messages_produced_total", "Messages handed to Produce and its variants.", topic)
	m.delivered = counter("messages_delivered_total", "Messages written to Kafka.", topic)
	m.failed = counter("messages_failed_total", "Messages accepted by Produce that failed, by error class.", withError)
	m.refused = counter("messages_refused_total", "Messages Produce refused (never accepted), by error class.", withError)
	m.clientErrors = counter("client_errors_total", "Errors librdkafka reported beside delivery reports, by error class.", []string{"error"})
	m.outstanding = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: cfg.namespace, Subsystem: cfg.subsystem, ConstLabels: cfg.constLabels,
		Name: "outstanding_messages", Help: "Messages handed to Produce whose outcome is not known yet.",
	})
	m.latency = histogram("delivery_latency_seconds", "Time from Produce to delivery, of delivered messages.", cfg.latencyBuckets)
	m.batchMessages = histogram("batch_messages", "Messages per batch handed to librdkafka.", prometheus.ExponentialBuckets(1, 2, 15))
	m.batchBytes = histogram("batch_bytes", "Bytes (keys, values, headers) per batch handed to librdkafka.", prometheus.ExponentialBuckets(256, 4, 10))
	m.batchTook = histogram("batch_enqueue_duration_seconds", "Time taken to hand a batch to librdkafka, waits for a full queue included.", prometheus.ExponentialBuckets(1e-5, 4, 12))
	m.statsDescs = newStatsDescs(cfg)
	return m
}

// WatchStats makes every scrape read p.Stats() (p is normally the *aioproducer.Producer the hook is
// registered with) and export its buffer gauges and counters. A later call replaces p; nil stops it.
func (m *Metrics) WatchStats(p StatsSource) {
	if p == nil {
		m.watch.Store(nil)
		return
	}
	m.watch.Store(&statsSource{p})
}

// producedChild returns topic's child of messages_produced_total.
func (m *Metrics) producedChild(topic string) prometheus.Counter {
	if !m.cfg.topicLabel {
		topic = ""
	}
	if v, ok := m.producedByTopic.Load(topic); ok {
		return v.(prometheus.Counter)
	}
	v, _ := m.producedByTopic.LoadOrStore(topic, m.produced.WithLabelValues(m.topic(topic)...))
	return v.(prometheus.Counter)
}

// deliveredChildren returns topic's children of messages_delivered_total and
// delivery_latency_seconds, made at the topic's first delivery.
func (m *Metrics) deliveredChildren(topic string) *deliveredMetrics {
	if !m.cfg.topicLabel {
		topic = ""
	}
	if v, ok := m.deliveredByTopic.Load(topic); ok {
		return v.(*deliveredMetrics)
	}
	l := m.topic(topic)
	v, _ := m.deliveredByTopic.LoadOrStore(topic, &deliveredMetrics{
		delivered: m.delivered.WithLabelValues(l...),
		latency:   m.latency.WithLabelValues(l...),
	})
	return v.(*deliveredMetrics)
}

type deliveredMetrics struct {
	delivered prometheus.Counter
	latency   prometheus.Observer
}

func (m *Metrics) topic(topic string) []string {
	if m.cfg.topicLabel {
		return []string{topic}
	}
	return nil
}

func (m *Metrics) topicErr(topic string, err error) []string {
	if m.cfg.topicLabel {
		return []string{topic, aioproducer.ErrorClass(err)}
	}
	return []string{aioproducer.ErrorClass(err)}
}

// OnProduce counts the message (aioproducer.HookProduce).
func (m *Metrics) OnProduce(_ context.Context, msg *aioproducer.Message) {
	m.outstanding.Inc()
	m.producedChild(msg.Topic).Inc()
}

// OnDelivery counts the message's outcome (aioproducer.HookDelivery).
func (m *Metrics) OnDelivery(e aioproducer.DeliveryEvent) {
	m.outstanding.Dec()
	topic := e.Delivery.Topic
	if e.Message != nil {
		topic = e.Message.Topic
	}
	switch {
	case e.Refused:
		m.refused.WithLabelValues(m.topicErr(topic, e.Err)...).Inc()
	case e.Err != nil:
		m.failed.WithLabelValues(m.topicErr(topic, e.Err)...).Inc()
	default:
		tm := m.deliveredChildren(topic)
		tm.delivered.Inc()
		tm.latency.Observe(e.Latency.Seconds())
	}
}

// OnBatch records the batch's size and hand-over time (aioproducer.HookBatch).
func (m *Metrics) OnBatch(e aioproducer.BatchEvent) {
	l := m.topic(e.Topic)
	m.batchMessages.WithLabelValues(l...).Observe(float64(e.Messages))
	m.batchBytes.WithLabelValues(l...).Observe(float64(e.Bytes))
	m.batchTook.WithLabelValues(l...).Observe(e.Took.Seconds())
}

// OnError counts librdkafka's error (aioproducer.HookError).
func (m *Metrics) OnError(err error) {
	m.clientErrors.WithLabelValues(aioproducer.ErrorClass(err)).Inc()
}

// OnStats keeps librdkafka's latest statistics report for the next scrape (aioproducer.HookStats).
func (m *Metrics) OnStats(s *aioproducer.LibrdkafkaStats) {
	m.mu.Lock()
	m.stats = s
	m.mu.Unlock()
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.produced, m.delivered, m.failed, m.refused, m.clientErrors, m.outstanding,
		m.latency, m.batchMessages, m.batchBytes, m.batchTook,
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
	m.statsDescs.describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
	m.mu.Lock()
	s := m.stats
	m.mu.Unlock()
	if s != nil {
		m.collectLibrdkafka(ch, s)
	}
	if w := m.watch.Load(); w != nil {
		m.collectProducer(ch, w.Stats())
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

package aioprom

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seed-f937cf20/aioproducer"
)

// statsDescs describes the metrics read from librdkafka's statistics and from the producer's Stats:
// they are made at each scrape from the latest values, so a broker or partition that leaves the
// report leaves the metrics too.
type statsDescs struct {
	partitionStats bool

	queuedMessages, queuedBytes                               *prometheus.Desc
	brokerUp, brokerState                                     *prometheus.Desc
	brokerRTT, brokerInternalLatency, brokerOutbufLatency     *prometheus.Desc
	brokerOutbufRequests, brokerOutbufMessages, brokerWaiting *prometheus.Desc
	partQueuedMessages, partQueuedBytes, partInFlight         *prometheus.Desc

	buffered, inFlight, heldMessages, heldBytes *prometheus.Desc
	queueFullWaits, callbackPanics, hookPanics  *prometheus.Desc
}

func newStatsDescs(cfg config) statsDescs {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(cfg.namespace, cfg.subsystem, name), help, labels, cfg.constLabels)
	}
	d := statsDescs{
		partitionStats: cfg.partitionStats && cfg.topicLabel,

		queuedMessages: desc("librdkafka_queued_messages", "Messages librdkafka holds, queued or in flight (msg_cnt), in its latest statistics report."),
		queuedBytes:    desc("librdkafka_queued_bytes", "Bytes of the messages librdkafka holds (msg_size), in its latest statistics report."),

		brokerUp:              desc("broker_up", "1 when the broker connection's state is UP, else 0.", "broker"),
		brokerState:           desc("broker_state", "1, with the broker connection's state (UP, DOWN, CONNECT, AUTH, ...) as the state label.", "broker", "state"),
		brokerRTT:             desc("broker_rtt_seconds", "Request round-trip time over the last statistics interval (0: no sample).", "broker", "stat"),
		brokerInternalLatency: desc("broker_internal_latency_seconds", "Time produce requests waited in librdkafka's queues over the last statistics interval.", "broker", "stat"),
		brokerOutbufLatency:   desc("broker_outbuf_latency_seconds", "Time requests waited in the output buffer over the last statistics interval.", "broker", "stat"),
		brokerOutbufRequests:  desc("broker_outbuf_requests", "Requests waiting to be sent to the broker.", "broker"),
		brokerOutbufMessages:  desc("broker_outbuf_messages", "Messages in requests waiting to be sent to the broker.", "broker"),
		brokerWaiting:         desc("broker_waiting_responses", "Requests sent to the broker awaiting their response.", "broker"),

		partQueuedMessages: desc("partition_queued_messages", "Messages in the partition's queue, not yet in a request.", "topic", "partition"),
		partQueuedBytes:    desc("partition_queued_bytes", "Bytes of the messages in the partition's queue.", "topic", "partition"),
		partInFlight:       desc("partition_in_flight_messages", "Messages of the partition in requests not yet answered.", "topic", "partition"),

		buffered:       desc("buffered_messages", "Accepted messages not yet handed to librdkafka (Stats.Buffered)."),
		inFlight:       desc("in_flight_messages", "Messages librdkafka holds whose outcome is not known yet (Stats.InFlight)."),
		heldMessages:   desc("held_messages", "Accepted messages counted against WithMaxBuffered (Stats.HeldMessages)."),
		heldBytes:      desc("held_bytes", "Bytes counted against WithMaxBuffered (Stats.HeldBytes)."),
		queueFullWaits: desc("queue_full_waits_total", "Times librdkafka's queue was full and a worker waited (Stats.QueueFullWaits)."),
		callbackPanics: desc("callback_panics_total", "Callbacks and result channel sends that panicked (Stats.CallbackPanics)."),
		hookPanics:     desc("hook_panics_total", "Hook calls that panicked (Stats.HookPanics)."),
	}
	return d
}

func (d *statsDescs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{
		d.queuedMessages, d.queuedBytes,
		d.brokerUp, d.brokerState, d.brokerRTT, d.brokerInternalLatency, d.brokerOutbufLatency,
		d.brokerOutbufRequests, d.brokerOutbufMessages, d.brokerWaiting,
		d.buffered, d.inFlight, d.heldMessages, d.heldBytes, d.queueFullWaits, d.callbackPanics, d.hookPanics,
	} {
		ch <- x
	}
	if d.partitionStats {
		ch <- d.partQueuedMessages
		ch <- d.partQueuedBytes
		ch <- d.partInFlight
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func latency(ch chan<- prometheus.Metric, d *prometheus.Desc, broker string, l aioproducer.LatencyStats) {
	for _, s := range [...]struct {
		stat string
		v    time.Duration
	}{{"avg", l.Avg}, {"p50", l.P50}, {"p95", l.P95}, {"p99", l.P99}, {"max", l.Max}} {
		gauge(ch, d, s.v.Seconds(), broker, s.stat)
	}
}

func (m *Metrics) collectLibrdkafka(ch chan<- prometheus.Metric, s *aioproducer.LibrdkafkaStats) {
	d := &m.statsDescs
	gauge(ch, d.queuedMessages, float64(s.Messages))
	gauge(ch, d.queuedBytes, float64(s.MessageBytes))
	for name, b := range s.Brokers {
		if b.NodeID < 0 && strings.HasSuffix(name, "/internal") {
			continue // librdkafka's internal broker: no connection
		}
		up := 0.0
		if b.State == "UP" {
			up = 1
		}
		gauge(ch, d.brokerUp, up, name)
		gauge(ch, d.brokerState, 1, name, b.State)
		latency(ch, d.brokerRTT, name, b.RTT)
		latency(ch, d.brokerInternalLatency, name, b.InternalLatency)
		latency(ch, d.brokerOutbufLatency, name, b.OutbufLatency)
		gauge(ch, d.brokerOutbufRequests, float64(b.OutbufRequests), name)
		gauge(ch, d.brokerOutbufMessages, float64(b.OutbufMessages), name)
		gauge(ch, d.brokerWaiting, float64(b.WaitingResponses), name)
	}
	if !d.partitionStats {
		return
	}
	for topic, t := range s.Topics {
		for id, p := range t.Partitions {
			part := itoa(id)
			gauge(ch, d.partQueuedMessages, float64(p.QueuedMessages), topic, part)
			gauge(ch, d.partQueuedBytes, float64(p.QueuedBytes), topic, part)
			gauge(ch, d.partInFlight, float64(p.InFlight), topic, part)
		}
	}
}

func (m *Metrics) collectProducer(ch chan<- prometheus.Metric, st aioproducer.Stats) {
	d := &m.statsDescs
	gauge(ch, d.buffered, float64(st.Buffered))
	gauge(ch, d.inFlight, float64(st.InFlight))
	gauge(ch, d.heldMessages, float64(st.HeldMessages))
	gauge(ch, d.heldBytes, float64(st.HeldBytes))
	ch <- prometheus.MustNewConstMetric(d.queueFullWaits, prometheus.CounterValue, float64(st.QueueFullWaits))
	ch <- prometheus.MustNewConstMetric(d.callbackPanics, prometheus.CounterValue, float64(st.CallbackPanics))
	ch <- prometheus.MustNewConstMetric(d.hookPanics, prometheus.CounterValue, float64(st.HookPanics))
}

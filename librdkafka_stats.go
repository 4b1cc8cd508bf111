package aioproducer

import (
	"encoding/json"
	"fmt"
	"time"
)

// LibrdkafkaStats is one of librdkafka's statistics reports (see librdkafka's STATISTICS.md), the part
// of it a producer's user watches, with typed values: counts as int64, latencies as time.Duration.
// HookStats receives it. Raw keeps the whole JSON document, for what the typed values leave out.
type LibrdkafkaStats struct {
	// Name and ClientID name the librdkafka handle ("name", "client_id").
	Name     string
	ClientID string
	// Time is when librdkafka made the report ("time", whole seconds: "ts" is librdkafka's monotonic
	// clock, not a date).
	Time time.Time
	// Messages and MessageBytes are what librdkafka holds: queued or in flight ("msg_cnt",
	// "msg_size"); MaxMessages and MaxMessageBytes are its limits ("msg_max", "msg_size_max").
	Messages        int64
	MessageBytes    int64
	MaxMessages     int64
	MaxMessageBytes int64
	// TxMessages and TxMessageBytes count the messages sent to brokers ("txmsgs", "txmsg_bytes");
	// Requests, RequestBytes count the requests sent ("tx", "tx_bytes").
	TxMessages     int64
	TxMessageBytes int64
	Requests       int64
	RequestBytes   int64
	// Brokers is keyed by the broker's name as librdkafka gives it ("127.0.0.1:9092/1"), and
	// Topics by topic name.
	Brokers map[string]BrokerStats
	Topics  map[string]TopicStats
	// Raw is the JSON document librdkafka emitted.
	Raw []byte
}

// BrokerStats is one broker connection ("brokers" in librdkafka's report).
type BrokerStats struct {
	Name   string
	NodeID int32
	// State is the connection state: "UP", "DOWN", "INIT", "CONNECT", "AUTH", ... ("state").
	State string
	// OutbufRequests and OutbufMessages wait to be sent ("outbuf_cnt", "outbuf_msg_cnt");
	// WaitingResponses were sent and wait for their response ("waitresp_cnt").
	OutbufRequests   int64
	OutbufMessages   int64
	WaitingResponses int64
	// Requests, RequestBytes, RequestErrors and Retries count what was sent ("tx", "txbytes",
	// "txerrs", "txretries"); Connects and Disconnects the connections ("connects", "disconnects").
	Requests      int64
	RequestBytes  int64
	RequestErrors int64
	Retries       int64
	Connects      int64
	Disconnects   int64
	// RTT is the round-trip time of requests ("rtt"), InternalLatency the time produce requests
	// waited in librdkafka's queues ("int_latency"), OutbufLatency the time in the output buffer
	// ("outbuf_latency"), over the last statistics interval.
	RTT             LatencyStats
	InternalLatency LatencyStats
	OutbufLatency   LatencyStats
}

// LatencyStats summarises one of librdkafka's rolling latency windows (which it reports in
// microseconds). All are zero when the window saw no sample.
type LatencyStats struct {
	Min, Max, Avg time.Duration
	P50, P95, P99 time.Duration
	// Count is the number of samples in the window ("cnt").
	Count int64
}

// TopicStats is one topic ("topics" in librdkafka's report).
type TopicStats struct {
	Topic string
	// Partitions is keyed by partition id; librdkafka's internal UA partition (-1), where messages
	// wait for the partitioner, is included when it holds messages.
	Partitions map[int32]PartitionStats
}

// PartitionStats is one partition of a topic.
type PartitionStats struct {
	Partition int32
	// Leader is the broker id of the partition's leader, -1 when unknown ("leader").
	Leader int32
	// QueuedMessages and QueuedBytes wait in the partition's queue, not yet in a request
	// ("msgq_cnt" + "xmit_msgq_cnt", "msgq_bytes" + "xmit_msgq_bytes"); InFlight are in requests
	// not yet answered ("msgs_inflight").
	QueuedMessages int64
	QueuedBytes    int64
	InFlight       int64
	// TxMessages and TxBytes count what was sent ("txmsgs", "txbytes").
	TxMessages int64
	TxBytes    int64
}

// The JSON shapes of librdkafka's statistics report, the fields LibrdkafkaStats keeps (STATISTICS.md).
type (
	rawStats struct {
		Name       string               `json:"name"`
		ClientID   string               `json:"client_id"`
		Time       int64                `json:"time"` // wall clock, seconds since the epoch
		MsgCnt     int64                `json:"msg_cnt"`
		MsgSize    int64                `json:"msg_size"`
		MsgMax     int64                `json:"msg_max"`
		MsgSizeMax int64                `json:"msg_size_max"`
		TxMsgs     int64                `json:"txmsgs"`
		TxMsgBytes int64                `json:"txmsg_bytes"`
		Tx         int64                `json:"tx"`
		TxBytes    int64                `json:"tx_bytes"`
		Brokers    map[string]rawBroker `json:"brokers"`
		Topics     map[string]rawTopic  `json:"topics"`
	}
	rawBroker struct {
		Name          string    `json:"name"`
		NodeID        int32     `json:"nodeid"`
		State         string    `json:"state"`
		OutbufCnt     int64     `json:"outbuf_cnt"`
		OutbufMsgCnt  int64     `json:"outbuf_msg_cnt"`
		WaitrespCnt   int64     `json:"waitresp_cnt"`
		Tx            int64     `json:"tx"`
		TxBytes       int64     `json:"txbytes"`
		TxErrs        int64     `json:"txerrs"`
		TxRetries     int64     `json:"txretries"`
		Connects      int64     `json:"connects"`
		Disconnects   int64     `json:"disconnects"`
		RTT           rawWindow `json:"rtt"`
		IntLatency    rawWindow `json:"int_latency"`
		OutbufLatency rawWindow `json:"outbuf_latency"`
	}
	// rawWindow is a rolling window, in microseconds.
	rawWindow struct {
		Min int64 `json:"min"`
		Max int64 `json:"max"`
		Avg int64 `json:"avg"`
		P50 int64 `json:"p50"`
		P95 int64 `json:"p95"`
		P99 int64 `json:"p99"`
		Cnt int64 `json:"cnt"`
	}
	rawTopic struct {
		Topic      string                  `json:"topic"`
		Partitions map[string]rawPartition `json:"partitions"`
	}
	rawPartition struct {
		Partition     int32 `json:"partition"`
		Leader        int32 `json:"leader"`
		MsgqCnt       int64 `json:"msgq_cnt"`
		MsgqBytes     int64 `json:"msgq_bytes"`
		XmitMsgqCnt   int64 `json:"xmit_msgq_cnt"`
		XmitMsgqBytes int64 `json:"xmit_msgq_bytes"`
		MsgsInflight  int64 `json:"msgs_inflight"`
		TxMsgs        int64 `json:"txmsgs"`
		TxBytes       int64 `json:"txbytes"`
	}
)

// parseLibrdkafkaStats parses one of librdkafka's statistics reports. It keeps raw as Raw.
func parseLibrdkafkaStats(raw []byte) (*LibrdkafkaStats, error) {
	var r rawStats
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("aioproducer: librdkafka statistics: %w", err)
	}
	s := &LibrdkafkaStats{
		Name: r.Name, ClientID: r.ClientID,
		Messages: r.MsgCnt, MessageBytes: r.MsgSize, MaxMessages: r.MsgMax, MaxMessageBytes: r.MsgSizeMax,
		TxMessages: r.TxMsgs, TxMessageBytes: r.TxMsgBytes, Requests: r.Tx, RequestBytes: r.TxBytes,
		Brokers: make(map[string]BrokerStats, len(r.Brokers)),
		Topics:  make(map[string]TopicStats, len(r.Topics)),
		Raw:     raw,
	}
	if r.Time > 0 {
		s.Time = time.Unix(r.Time, 0)
	}
	for key, b := range r.Brokers {
		name := b.Name
		if name == "" {
			name = key
		}
		s.Brokers[name] = BrokerStats{
			Name: name, NodeID: b.NodeID, State: b.State,
			OutbufRequests: b.OutbufCnt, OutbufMessages: b.OutbufMsgCnt, WaitingResponses: b.WaitrespCnt,
			Requests: b.Tx, RequestBytes: b.TxBytes, RequestErrors: b.TxErrs, Retries: b.TxRetries,
			Connects: b.Connects, Disconnects: b.Disconnects,
			RTT: b.RTT.latency(), InternalLatency: b.IntLatency.latency(), OutbufLatency: b.OutbufLatency.latency(),
		}
	}
	for key, t := range r.Topics {
		name := t.Topic
		if name == "" {
			name = key
		}
		ts := TopicStats{Topic: name, Partitions: make(map[int32]PartitionStats, len(t.Partitions))}
		for _, p := range t.Partitions {
			ps := PartitionStats{
				Partition: p.Partition, Leader: p.Leader,
				QueuedMessages: p.MsgqCnt + p.XmitMsgqCnt, QueuedBytes: p.MsgqBytes + p.XmitMsgqBytes,
				InFlight: p.MsgsInflight, TxMessages: p.TxMsgs, TxBytes: p.TxBytes,
			}
			if ps.Partition == -1 && ps.QueuedMessages == 0 && ps.InFlight == 0 {
				continue // the UA partition, empty
			}
			ts.Partitions[ps.Partition] = ps
		}
		s.Topics[name] = ts
	}
	return s, nil
}

// latency converts a window from librdkafka's microseconds.
func (w rawWindow) latency() LatencyStats {
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return LatencyStats{Min: us(w.Min), Max: us(w.Max), Avg: us(w.Avg), P50: us(w.P50), P95: us(w.P95), P99: us(w.P99), Count: w.Cnt}
}

package aioproducer

import "time"

// LibrdkafkaStats is one of librdkafka's statistics reports (see librdkafka's STATISTICS.md), the part
// of it a producer's user watches, with typed values: counts as int64, latencies as time.Duration.
// HookStats receives it. Raw keeps the whole JSON document, for what the typed values leave out.
type LibrdkafkaStats struct {
	// Name and ClientID name the librdkafka handle ("name", "client_id").
	Name     string
	ClientID string
	// Time is when librdkafka made the report ("ts").
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

package aioproducer

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// engine is the executor's one seam to the broker: librdkafkaEngine (engine_librdkafka.go) in
// production, memEngine (engine_mem.go) behind aioproducertest.Fake and the package's own tests. Its
// contract is per batch, so an engine crosses cgo once per batch, and its reports come in bursts.
type engine interface {
	// start starts draining the engine's reports into sink. Nothing is reported before.
	start(sink reportSink)
	// enqueue hands recs (runs of one topic each, in produce order) to librdkafka and returns how
	// many it accepted, n, and why it stopped: nil when it accepted all; errQueueFull when
	// librdkafka's queue is full (recs[n:] are to be offered again once deliveries free space); any
	// other error belongs to recs[n] alone, which librdkafka refused. It may reorder recs in place
	// within each topic's run, keeping the order of each partition's records: n counts the reordered
	// slice, and recs[n:] is to be offered again in its new order.
	enqueue(recs []*record) (n int, err error)
	// purge makes librdkafka fail every message it holds, queued or in flight; their reports still
	// arrive through the sink. purgeQueue fails only the queued ones, never sent.
	purge() error
	purgeQueue() error
	// fatalError returns the fatal error librdkafka raised, with its own code and text, and false if
	// it raised none. An enqueue refused after a fatal error only says kafka.ErrFatal.
	fatalError() (kafka.Error, bool)
	// flush makes librdkafka send what it holds at once, ignoring linger.ms, for up to timeoutMs
	// (rd_kafka_flush), and reports whether librdkafka then held nothing. It never delivers a report
	// itself: those still come through the sink. It is not called once close has begun.
	flush(timeoutMs int) bool
	// txn runs a transactional operation (rdk.TxnInit, TxnBegin, TxnCommit, TxnAbort) for up to
	// timeoutMs, and sendOffsets adds consumer offsets to the transaction. Their errors are *TxnError
	// (Op left empty), with librdkafka's verdict on what may be done next.
	txn(op, timeoutMs int) error
	sendOffsets(offsets []kafka.TopicPartition, cgm *kafka.ConsumerGroupMetadata, timeoutMs int) error
	// drain waits until the report goroutine has handed the sink every report the engine held
	// ready when drain was called (the reports of a purge that returned), or ctx ends.
	drain(ctx context.Context) error
	// ping asks the cluster for metadata, waiting up to timeoutMs, and returns nil if a broker
	// answered.
	ping(timeoutMs int) error
	// setSaslCredentials replaces the SASL username and password for new connections.
	setSaslCredentials(username, password string) error
	// stuck reports whether msg would go to a partition that stopped making progress while others go
	// on (partitionHealth): part, its explicit partition or the Partitioner's choice, or, when that is
	// kafka.PartitionAny, the one librdkafka would choose. Produce then holds it to the stuck budget.
	// It is called by Produce, so it is cheap while no partition is stuck.
	stuck(msg *Message, part int32) bool
	// stuckAdmit takes one place for a message stuck reported on, unless the marked partitions
	// hold limit messages already (as far as the engine knows: what they held when it last looked, and
	// what it admitted since), and reports whether it took it.
	stuckAdmit(limit int64) bool
	// knownPartitions returns topic's partition count as the engine last learned it, without waiting,
	// or 0 while it is not known: then it starts learning it. It is called by Produce for every
	// message a Partitioner places, so a known count costs a map lookup.
	knownPartitions(topic string) int32
	// partitions returns topic's partition count, waiting for the cluster's metadata while it is not
	// known, until ctx ends. A topic that does not exist fails with the metadata error.
	partitions(ctx context.Context, topic string) (int32, error)
	// forget drops what the engine keeps for topics (a librdkafka topic handle): the dispatcher has
	// seen no message for them for a while. A later message to one of them is welcome all the same.
	// It is called by the worker whose topics they are, never while that worker calls enqueue.
	forget(topics []string)
	// close releases librdkafka and stops the engine's report goroutine, waiting for it. It is called
	// once, after every message's outcome is known.
	close()
}

// reportSink receives what an engine's report goroutine drains from librdkafka. Its methods are called
// from that one goroutine and must not block on anything but short locks.
type reportSink interface {
	// onReports takes delivery reports, in the order librdkafka gave them. The slice is reused
	// after the call.
	onReports(rs []report)
	// onFatal takes a fatal librdkafka error.
	onFatal(err kafka.Error)
	// onError takes a librdkafka error event that is not fatal (a broker connection failed, all
	// brokers are down, ...): librdkafka goes on, and logs it itself.
	onError(err kafka.Error)
	// onStats takes one of librdkafka's statistics reports, the JSON document (the sink keeps it).
	// Engines deliver them only when created to (a HookStats is registered).
	onStats(raw []byte)
}

// report is the outcome of one message that librdkafka accepted.
type report struct {
	rec         *record
	partition   int32
	status      msgStatus // for a failure: whether it may be in the log, if the engine knows
	offset      int64
	logAppendMs int64 // the broker's LogAppendTime in ms, 0 if it did not give one
	err         error // nil, or the librdkafka error (kafka.Error)
}

// errPurgeQueue is librdkafka's error for a message purged from its queue, never sent: what the
// in-memory engine reports for a purge, and what the executor fails a message with while Purge runs.
var errPurgeQueue = kafka.NewError(kafka.ErrPurgeQueue, "Local: Purged in queue", false)

// errQueueFull is what engine.enqueue returns when librdkafka's queue is full.
var errQueueFull = errors.New("aioproducer: librdkafka queue full")

// logLevel maps one of librdkafka's log lines (its syslog level, facility tag and text) to a slog
// level. librdkafka's level says how bad the event is for a connection, not for the application: it
// logs a connection refused during a broker restart at LOG_ERR (3), then reconnects and retries by
// itself. So what heals by itself is WARN, as the Java client logs a broker it cannot reach, and ERROR
// is kept for what needs a human: levels 0 to 2, and the level 3 lines that speak of authentication,
// authorization, TLS certificates or a fatal error (retrying does not cure those; the producer's own
// ERROR lines say when it fails messages for them). librdkafka's notices that a topic's partition
// count is known or changed (PARTCNT) are DEBUG: a producer spread over thousands of topics logs one
// per topic.
func logLevel(level int, tag, text string) slog.Level {
	switch {
	case level <= 2:
		return slog.LevelError
	case level == 3:
		if needsHuman(text) {
			return slog.LevelError
		}
		return slog.LevelWarn
	case level == 4:
		return slog.LevelWarn
	case level <= 6:
		if tag == "PARTCNT" {
			return slog.LevelDebug
		}
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// humanWords are what a librdkafka error line says when retrying will not cure it.
var humanWords = []string{"authenticat", "authoriz", "sasl", "certificate", "ssl handshake", "fatal"}

func needsHuman(text string) bool {
	lower := strings.ToLower(text)
	for _, w := range humanWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

package aioproducer

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// drainBurst is the most delivery reports the engine copies out of librdkafka per cgo call.
const drainBurst = 4096

// minLogAppendTime is the earliest LogAppendTime a Delivery reports (2011-01-01, before Kafka's first
// release): an earlier one is no broker's clock. librdkafka's mock cluster answers 1234 to every produce,
// whatever the topic's message.timestamp.type; the Delivery then keeps the CreateTime it was sent with.
const minLogAppendTime = 1293840000000

// librdkafkaEngine is the engine over the producer's own librdkafka handle (package internal/rdk): one
// cgo call enqueues a whole job, whatever its topics, one cgo call drains up to drainBurst delivery
// reports. A message's opaque in librdkafka is its index in the engine's slot table, never a Go
// pointer. It keeps a librdkafka topic handle per topic in use (rd_kafka_topic_new searches every
// topic librdkafka knows, so one per call would cost the number of topics), until the dispatcher says
// the topic went idle (forget).
type librdkafkaEngine struct {
	p      *rdk.Producer
	log    *slog.Logger
	tokens *tokenRefresher
	sink   reportSink // set by start

	mu     sync.Mutex
	slots  []*record // by opaque; nil when free
	free   []uint32  // free slot indexes
	topics map[string]rdk.Topic

	scratch sync.Pool // *enqueueScratch, one per enqueue call in progress
	// partitioned counts the records librdkafka's partitioner function placed in the C helper (for
	// tests).
	partitioned atomic.Uint64
	kickPID     bool     // needsPIDKick: start starts kick
	kick        *pidKick // stopped by close before p.Close
	started     bool
	stop        atomic.Bool
	done        chan struct{}
}

// newLibrdkafkaEngine creates the librdkafka producer for cm; with stats, librdkafka's statistics reports
// are delivered too (when statistics.interval.ms is set). It starts nothing of its own; a setting
// librdkafka refuses comes back as *rdk.ConfigError, whose text names the key.
func newLibrdkafkaEngine(cm kafka.ConfigMap, log *slog.Logger, tokens TokenProvider, stats bool) (*librdkafkaEngine, error) {
	p, err := rdk.New(librdkafkaSettings(cm), rdk.Options{TokenRefresh: tokens != nil, Stats: stats, Partitioner: partitionerOf(cm)})
	if err != nil {
		return nil, err
	}
	e := &librdkafkaEngine{p: p, log: log, topics: map[string]rdk.Topic{}, kickPID: needsPIDKick(cm), done: make(chan struct{})}
	e.tokens = newTokenRefresher(tokens, log, p.SetOAuthBearerToken, p.SetOAuthBearerTokenFailure)
	e.scratch.New = func() any { return new(enqueueScratch) }
	return e, nil
}

func (e *librdkafkaEngine) start(sink reportSink) {
	e.sink = sink
	e.started = true
	go e.run()
	if e.kickPID {
		e.kick = startPIDKick(e.p)
	}
}

// librdkafkaSettings turns cm into librdkafka's name/value strings, sorted by name, converting each
// value with settingValue: the strings New checked, and those confluent-kafka-go passes. A nested
// ConfigMap (default.topic.config) is flattened: librdkafka takes topic settings at the top level.
func librdkafkaSettings(cm kafka.ConfigMap) [][2]string {
	var kv [][2]string
	var add func(m kafka.ConfigMap)
	add = func(m kafka.ConfigMap) {
		for k, v := range m {
			if sub, ok := v.(kafka.ConfigMap); ok {
				add(sub)
				continue
			}
			s, _ := settingValue(v) // checked by kafkaConfig
			kv = append(kv, [2]string{k, s})
		}
	}
	add(cm)
	sort.Slice(kv, func(i, j int) bool { return kv[i][0] < kv[j][0] })
	return kv
}

// enqueueScratch is what one enqueue call works in, pooled.
type enqueueScratch struct {
	b    rdk.Batch
	recs []*record // the call's records in their order before the call
}

// enqueue hands recs to librdkafka in one cgo call. The C helper groups each topic run's records by
// partition (placing keyed ones itself with librdkafka's partitioner function, see rdk.Batch.Produce)
// and says in which order it took them; recs is reordered to match, so that recs[n:] is what is left.
func (e *librdkafkaEngine) enqueue(recs []*record) (int, error) {
	sc := e.scratch.Get().(*enqueueScratch)
	defer e.scratch.Put(sc)
	b := &sc.b
	defer b.Reset() // unpins its large values
	var topicErr error
	e.mu.Lock()
	var t rdk.Topic
	for i, r := range recs {
		if i == 0 || r.msg.Topic != recs[i-1].msg.Topic {
			var err error
			if t, err = e.topicLocked(r.msg.Topic); err != nil {
				recs, topicErr = recs[:i], err // the records before are still enqueued
				break
			}
		}
		var slot uint32
		if n := len(e.free); n > 0 {
			slot = e.free[n-1]
			e.free = e.free[:n-1]
		} else {
			slot = uint32(len(e.slots))
			e.slots = append(e.slots, nil)
		}
		e.slots[slot] = r
		part, _ := r.msg.Partition.ID()
		b.Add(t, r.msg.Key, r.msg.Value, r.msg.Headers, part, r.ts.UnixMilli(), uint64(slot))
	}
	e.mu.Unlock()

	n, err := e.p.Produce(b)
	if m := b.Partitioned(); m > 0 {
		e.partitioned.Add(uint64(m))
	}
	// Reorder recs as librdkafka took them. recs[:n] may be recycled already (their reports may have
	// come): the order is read from the batch, whose opaques are the records' slots.
	order := b.Order()
	if len(order) == len(recs) {
		moved := false
		for k, o := range order {
			if int(o) != k {
				moved = true
				break
			}
		}
		if moved {
			sc.recs = append(sc.recs[:0], recs...)
			for k, o := range order {
				recs[k] = sc.recs[o]
			}
			clear(sc.recs)
		}
	}
	if n < len(recs) {
		// The messages librdkafka did not take get no report: their slots are free again.
		e.mu.Lock()
		for k := n; k < len(recs); k++ {
			slot := b.Opaque(int(order[k]))
			e.slots[slot] = nil
			e.free = append(e.free, uint32(slot))
		}
		e.mu.Unlock()
	}
	switch {
	case err == rdk.ErrQueueFull:
		return n, errQueueFull
	case err != nil:
		return n, err
	case topicErr != nil:
		return n, topicErr
	}
	return n, nil
}

// topicLocked returns topic's handle, made on first use. e.mu is held.
func (e *librdkafkaEngine) topicLocked(topic string) (rdk.Topic, error) {
	if t, ok := e.topics[topic]; ok {
		return t, nil
	}
	t, err := e.p.Topic(topic)
	if err != nil {
		return t, err
	}
	e.topics[topic] = t
	return t, nil
}

// forget drops the handles of topics that went idle. librdkafka keeps what it knows of a topic (its
// metadata and partitions, a few KiB) until the producer closes, handle or not: it offers no way to
// forget a topic.
func (e *librdkafkaEngine) forget(topics []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, name := range topics {
		if t, ok := e.topics[name]; ok {
			e.p.DestroyTopic(t)
			delete(e.topics, name)
		}
	}
}

// knownTopics is how many topic handles the engine keeps (for tests).
func (e *librdkafkaEngine) knownTopics() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.topics)
}

func (e *librdkafkaEngine) flush(timeoutMs int) bool { return e.p.Flush(timeoutMs) }

func (e *librdkafkaEngine) txn(op, timeoutMs int) error {
	return txnErrorOf(e.p.Txn(op, timeoutMs))
}

func (e *librdkafkaEngine) sendOffsets(offsets []kafka.TopicPartition, cgm *kafka.ConsumerGroupMetadata, timeoutMs int) error {
	return txnErrorOf(e.p.SendOffsets(offsets, cgm, timeoutMs))
}

// txnErrorOf is rdk's transactional error as a *TxnError, or nil.
func txnErrorOf(te *rdk.TxnError) error {
	if te == nil {
		return nil
	}
	return &TxnError{Err: kafka.NewError(te.Code, te.Str, te.Fatal), retriable: te.Retriable, requiresAbort: te.Abortable, fatal: te.Fatal}
}

func (e *librdkafkaEngine) purgeQueue() error {
	return e.p.Purge(rdk.PurgeQueue | rdk.PurgeNonBlocking)
}

func (e *librdkafkaEngine) purge() error {
	return e.p.Purge(rdk.PurgeQueue | rdk.PurgeInFlight | rdk.PurgeNonBlocking)
}

func (e *librdkafkaEngine) close() {
	e.kick.close()
	if e.started {
		e.stop.Store(true)
		e.p.Wake()
		<-e.done
	}
	e.tokens.close()
	e.mu.Lock()
	for name, t := range e.topics {
		e.p.DestroyTopic(t)
		delete(e.topics, name)
	}
	e.mu.Unlock()
	e.p.Close()
}

func (e *librdkafkaEngine) setSaslCredentials(username, password string) error {
	return e.p.SetSaslCredentials(username, password)
}

func (e *librdkafkaEngine) fatalError() (kafka.Error, bool) { return e.p.FatalError() }

// testFatalError raises a fatal error in librdkafka, for tests.
func (e *librdkafkaEngine) testFatalError(code kafka.ErrorCode, reason string) {
	e.p.TestFatalError(code, reason)
}

// run drains delivery reports, errors and log lines until close.
func (e *librdkafkaEngine) run() {
	defer close(e.done)
	out := make([]rdk.Report, drainBurst)
	reps := make([]report, 0, drainBurst)
	for !e.stop.Load() {
		n, ev := e.p.Poll(1000, out)
		if n > 0 {
			e.mu.Lock()
			for _, d := range out[:n] {
				rec := e.slots[d.Opaque]
				e.slots[d.Opaque] = nil
				e.free = append(e.free, uint32(d.Opaque))
				r := report{rec: rec, partition: d.Partition, offset: d.Offset}
				switch {
				case d.Err != 0:
					r.err = kafka.NewError(kafka.ErrorCode(d.Err), "", false)
					switch d.Status {
					case rdk.StatusNotPersisted:
						r.status = statusNotPersisted
					case rdk.StatusPossiblyPersisted:
						r.status = statusPossiblyPersisted
					}
				case d.TsType == rdk.TimestampLogAppendTime && d.Timestamp >= minLogAppendTime:
					r.logAppendMs = d.Timestamp
				}
				reps = append(reps, r)
			}
			e.mu.Unlock()
			e.sink.onReports(reps)
			clear(reps)
			reps = reps[:0]
		}
		if ev != nil {
			e.handle(ev)
		}
	}
}

func (e *librdkafkaEngine) handle(ev *rdk.Event) {
	switch ev.Type {
	case rdk.EventLog:
		e.log.Log(context.Background(), syslogLevel(ev.Level), "librdkafka: "+ev.Str, "tag", ev.Tag, "client", e.p.Name())
	case rdk.EventTokenRefresh:
		e.tokens.request(ev.Str)
	case rdk.EventStats:
		e.sink.onStats(ev.Data)
	case rdk.EventError:
		if ev.Fatal {
			e.sink.onFatal(kafka.NewError(ev.Code, ev.Str, true))
			return
		}
		// librdkafka logs these itself; this one is for debugging the producer.
		e.log.Debug("aioproducer: librdkafka error event", "code", ev.Code.String(), "error", ev.Str)
		e.sink.onError(kafka.NewError(ev.Code, ev.Str, false))
	}
}

package aioproducer

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// drainBurst is the most delivery reports the batch engine copies out of librdkafka per cgo call.
const drainBurst = 4096

// minLogAppendTime is the earliest LogAppendTime a Delivery reports (2011-01-01, before Kafka's first
// release): an earlier one is no broker's clock. librdkafka's mock cluster answers 1234 to every produce,
// whatever the topic's message.timestamp.type; the Delivery then keeps the CreateTime it was sent with.
const minLogAppendTime = 1293840000000

// batchEngine is the engine over the producer's own librdkafka handle (package internal/rdk): one cgo
// call enqueues a whole batch, one cgo call drains up to drainBurst delivery reports. A message's opaque
// in librdkafka is its index in the engine's slot table, never a Go pointer.
type batchEngine struct {
	p      *rdk.Producer
	sink   reportSink
	log    *slog.Logger
	tokens *tokenRefresher

	mu    sync.Mutex
	slots []*record // by opaque; nil when free
	free  []uint32  // free slot indexes

	scratch sync.Pool // *enqueueScratch, one per enqueue call in progress
	started bool
	stop    atomic.Bool
	done    chan struct{}
}

// newBatchEngine creates the librdkafka producer for cm (the go.* keys, which are confluent-kafka-go's,
// are left out), whose reports go to sink once started. It starts nothing of its own; a setting
// librdkafka refuses comes back as *rdk.ConfigError, whose text names the key.
func newBatchEngine(cm kafka.ConfigMap, sink reportSink, log *slog.Logger, tokens TokenProvider) (*batchEngine, error) {
	p, err := rdk.New(librdkafkaSettings(cm), tokens != nil)
	if err != nil {
		return nil, err
	}
	e := &batchEngine{p: p, sink: sink, log: log, done: make(chan struct{})}
	e.tokens = newTokenRefresher(tokens, log, p.SetOAuthBearerToken, p.SetOAuthBearerTokenFailure)
	e.scratch.New = func() any { return new(enqueueScratch) }
	return e, nil
}

func (e *batchEngine) start() {
	e.started = true
	go e.run()
}

// librdkafkaSettings turns cm into librdkafka's name/value strings, sorted by name, without the go.*
// keys, converting each value with settingValue: the strings New checked, and those confluent-kafka-go
// passes. A nested ConfigMap (default.topic.config) is flattened: librdkafka takes topic settings at
// the top level.
func librdkafkaSettings(cm kafka.ConfigMap) [][2]string {
	var kv [][2]string
	var add func(m kafka.ConfigMap)
	add = func(m kafka.ConfigMap) {
		for k, v := range m {
			if strings.HasPrefix(k, "go.") {
				continue
			}
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
	b     rdk.Batch
	recs  []*record // groupByPartition's copy
	parts []partRun
}

// partRun is one partition's records in groupByPartition: how many, then where they go.
type partRun struct {
	id  int32
	pos int
}

// maxGroupedPartitions is the most distinct partitions groupByPartition looks up by linear search; a
// batch that names more is left as it is.
const maxGroupedPartitions = 64

// groupByPartition reorders recs in place so that the records of each partition are adjacent, each
// partition's in their order, when every record names its partition (ExplicitPartition) and they
// alternate between partitions. librdkafka enqueues a run for one partition at less than half the cost
// of messages that switch partitions each time (BENCHMARKS.md, "Engine experiments on real Kafka"). A
// record without a partition may land in any partition, so a batch holding one keeps its order, as
// does a batch of several topics. The order between partitions is no promise: only the order within one
// is, and enqueue's prefix rule holds for the new order (the executor offers recs[n:] again).
func groupByPartition(recs []*record, sc *enqueueScratch) {
	if len(recs) < 3 {
		return
	}
	topic := recs[0].msg.Topic
	parts := sc.parts[:0]
	defer func() { sc.parts = parts[:0] }()
	last, switches := int32(-1), 0
	for _, r := range recs {
		id, ok := r.msg.Partition.ID()
		if !ok || r.msg.Topic != topic {
			return
		}
		if id == last {
			parts[len(parts)-1].pos++ // counted in the run's entry below
			continue
		}
		last = id
		switches++
		i := 0
		for i < len(parts) && parts[i].id != id {
			i++
		}
		if i == len(parts) {
			if len(parts) == maxGroupedPartitions {
				return
			}
			parts = append(parts, partRun{id: id})
		}
		// Keep the current partition last so the run fast path above counts into it.
		parts[i].pos++
		parts[i], parts[len(parts)-1] = parts[len(parts)-1], parts[i]
	}
	if switches == len(parts) {
		return // already grouped
	}
	// Counts to starting positions, in the order the partitions were last seen (any order will do).
	pos := 0
	for i := range parts {
		n := parts[i].pos
		parts[i].pos = pos
		pos += n
	}
	sc.recs = append(sc.recs[:0], recs...)
	i := 0
	for _, r := range sc.recs {
		id, _ := r.msg.Partition.ID()
		if parts[i].id != id {
			i = 0
			for parts[i].id != id {
				i++
			}
		}
		recs[parts[i].pos] = r
		parts[i].pos++
	}
	clear(sc.recs)
}

func (e *batchEngine) enqueue(recs []*record) (int, error) {
	sc := e.scratch.Get().(*enqueueScratch)
	b := &sc.b
	defer func() {
		b.Reset() // unpins its large values
		e.scratch.Put(sc)
	}()
	groupByPartition(recs, sc)
	e.mu.Lock()
	for _, r := range recs {
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
		b.Add(r.msg.Topic, r.msg.Key, r.msg.Value, r.msg.Headers, part, r.ts.UnixMilli(), uint64(slot))
	}
	e.mu.Unlock()

	n, err := e.p.Produce(b, 0)
	if n < len(recs) {
		// The messages librdkafka did not take get no report: their slots are free again.
		e.mu.Lock()
		for i := n; i < len(recs); i++ {
			slot := b.Opaque(i)
			e.slots[slot] = nil
			e.free = append(e.free, uint32(slot))
		}
		e.mu.Unlock()
	}
	if err == rdk.ErrQueueFull {
		return n, errQueueFull
	}
	return n, err
}

func (e *batchEngine) flush(timeoutMs int) bool { return e.p.Flush(timeoutMs) }

func (e *batchEngine) txn(op, timeoutMs int) error {
	return txnErrorOf(e.p.Txn(op, timeoutMs))
}

func (e *batchEngine) sendOffsets(offsets []kafka.TopicPartition, cgm *kafka.ConsumerGroupMetadata, timeoutMs int) error {
	return txnErrorOf(e.p.SendOffsets(offsets, cgm, timeoutMs))
}

// txnErrorOf is rdk's transactional error as a *TxnError, or nil.
func txnErrorOf(te *rdk.TxnError) error {
	if te == nil {
		return nil
	}
	return &TxnError{Err: kafka.NewError(te.Code, te.Str, te.Fatal), retriable: te.Retriable, requiresAbort: te.Abortable, fatal: te.Fatal}
}

func (e *batchEngine) purgeQueue() error {
	return e.p.Purge(rdk.PurgeQueue | rdk.PurgeNonBlocking)
}

func (e *batchEngine) purge() error {
	return e.p.Purge(rdk.PurgeQueue | rdk.PurgeInFlight | rdk.PurgeNonBlocking)
}

func (e *batchEngine) close() {
	if e.started {
		e.stop.Store(true)
		e.p.Wake()
		<-e.done
	}
	e.tokens.close()
	e.p.Close()
}

func (e *batchEngine) setSaslCredentials(username, password string) error {
	return e.p.SetSaslCredentials(username, password)
}

func (e *batchEngine) fatalError() (kafka.Error, bool) { return e.p.FatalError() }

// testFatalError raises a fatal error in librdkafka, for tests.
func (e *batchEngine) testFatalError(code kafka.ErrorCode, reason string) {
	e.p.TestFatalError(code, reason)
}

// run drains delivery reports, errors and log lines until close.
func (e *batchEngine) run() {
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

func (e *batchEngine) handle(ev *rdk.Event) {
	switch ev.Type {
	case rdk.EventLog:
		e.log.Log(context.Background(), syslogLevel(ev.Level), "librdkafka: "+ev.Str, "tag", ev.Tag, "client", e.p.Name())
	case rdk.EventTokenRefresh:
		e.tokens.request(ev.Str)
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

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

	scratch sync.Pool // *rdk.Batch, one per enqueue call in progress
	started bool
	stop    atomic.Bool
	done    chan struct{}
}

// newBatchEngine creates the librdkafka producer for cm (the go.* keys, which are confluent-kafka-go's,
// are left out), whose reports go to sink once started; with stats, librdkafka's statistics reports
// too (when statistics.interval.ms is set). It starts nothing of its own; a setting librdkafka refuses
// comes back as *rdk.ConfigError, whose text names the key.
func newBatchEngine(cm kafka.ConfigMap, sink reportSink, log *slog.Logger, tokens TokenProvider, stats bool) (*batchEngine, error) {
	p, err := rdk.New(librdkafkaSettings(cm), rdk.Options{TokenRefresh: tokens != nil, Stats: stats})
	if err != nil {
		return nil, err
	}
	e := &batchEngine{p: p, sink: sink, log: log, done: make(chan struct{})}
	e.tokens = newTokenRefresher(tokens, log, p.SetOAuthBearerToken, p.SetOAuthBearerTokenFailure)
	e.scratch.New = func() any { return new(rdk.Batch) }
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

func (e *batchEngine) enqueue(recs []*record) (int, error) {
	b := e.scratch.Get().(*rdk.Batch)
	defer func() {
		b.Reset() // unpins its large values
		e.scratch.Put(b)
	}()
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

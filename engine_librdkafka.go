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

// librdkafkaEngine is the engine over the producer's own librdkafka handle (package internal/rdk): one cgo
// call enqueues a whole batch, one cgo call drains up to drainBurst delivery reports. A message's opaque
// in librdkafka is its index in the engine's slot table, never a Go pointer.
type librdkafkaEngine struct {
	p      *rdk.Producer
	sink   reportSink
	log    *slog.Logger
	tokens *tokenRefresher

	mu    sync.Mutex
	slots []*record // by opaque; nil when free
	free  []uint32  // free slot indexes

	scratch sync.Pool // *enqueueScratch, one per enqueue call in progress
	// keyHash is librdkafka's partitioner for keyed messages, copied (keyHashOf), or nil.
	keyHash func(key []byte) uint32
	// partitioned counts the records enqueue partitioned by key itself (for tests).
	partitioned atomic.Uint64
	started     bool
	stop        atomic.Bool
	done        chan struct{}
}

// newLibrdkafkaEngine creates the librdkafka producer for cm (the go.* keys, which are confluent-kafka-go's,
// are left out), whose reports go to sink once started; with stats, librdkafka's statistics reports
// too (when statistics.interval.ms is set). It starts nothing of its own; a setting librdkafka refuses
// comes back as *rdk.ConfigError, whose text names the key.
func newLibrdkafkaEngine(cm kafka.ConfigMap, sink reportSink, log *slog.Logger, tokens TokenProvider, stats bool) (*librdkafkaEngine, error) {
	keyHash, kind := keyHashOf(cm)
	p, err := rdk.New(librdkafkaSettings(cm), rdk.Options{TokenRefresh: tokens != nil, Stats: stats, Partitioner: kind})
	if err != nil {
		return nil, err
	}
	e := &librdkafkaEngine{p: p, sink: sink, log: log, keyHash: keyHash, done: make(chan struct{})}
	e.tokens = newTokenRefresher(tokens, log, p.SetOAuthBearerToken, p.SetOAuthBearerTokenFailure)
	e.scratch.New = func() any { return new(enqueueScratch) }
	return e, nil
}

func (e *librdkafkaEngine) start() {
	e.started = true
	go e.run()
}

// librdkafkaSettings turns cm into librdkafka's name/value strings, sorted by name, converting each
// value with settingValue: the strings New checked, and those confluent-kafka-go
// passes. A nested ConfigMap (default.topic.config) is flattened: librdkafka takes topic settings at
// the top level.
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
	b     rdk.Batch
	eff   []int32   // each record's partition for librdkafka: explicit, computed from its key, or -1
	recs  []*record // groupByPartition's copies
	effs  []int32
	parts []partRun
}

// partRun is one partition's records in groupByPartition: how many, then where they go.
type partRun struct {
	id  int32
	pos int
}

// maxGroupedPartitions is the most distinct partitions groupByPartition looks up by linear search in
// one run; a run that names more is left as it is.
const maxGroupedPartitions = 64

// effectivePartitions fills sc.eff with each record's partition as librdkafka will be told it: its
// ExplicitPartition, or with keyHash and cnt > 0 the partition librdkafka's partitioner gives its
// (non-empty) key for cnt partitions, or -1 (librdkafka's partitioner decides: null and empty keys,
// and keys while the partition count is unknown). It returns false, leaving sc.eff unset, for a batch
// of several topics.
func effectivePartitions(recs []*record, keyHash func([]byte) uint32, cnt int32, sc *enqueueScratch) bool {
	if len(recs) == 0 {
		return false
	}
	topic := recs[0].msg.Topic
	sc.eff = sc.eff[:0]
	for _, r := range recs {
		if r.msg.Topic != topic {
			return false
		}
		id, ok := r.msg.Partition.ID()
		switch {
		case ok:
		case keyHash != nil && cnt > 0 && len(r.msg.Key) > 0:
			id = int32(keyHash(r.msg.Key) % uint32(cnt))
		default:
			id = -1
		}
		sc.eff = append(sc.eff, id)
	}
	return true
}

// groupByPartition reorders recs (and eff, their partitions as effectivePartitions set them) in place so
// that within each run of records that have a partition, each partition's records are adjacent, in
// their order. librdkafka enqueues a message to the partition it enqueued the previous one to at less
// than half the cost of a switch (BENCHMARKS.md, "Engine experiments on real Kafka"). A record without a
// partition (-1) may land in any partition, so it stays where it is and no record crosses it. Only the
// order within a partition is promised, and enqueue's prefix rule holds for the new order: the executor
// offers recs[n:] again, and each partition's rest is in order there.
func groupByPartition(recs []*record, eff []int32, sc *enqueueScratch) {
	for lo := 0; lo < len(recs); {
		if eff[lo] < 0 {
			lo++
			continue
		}
		hi := lo + 1
		for hi < len(recs) && eff[hi] >= 0 {
			hi++
		}
		groupRun(recs[lo:hi], eff[lo:hi], sc)
		lo = hi
	}
}

// groupRun groups one run of records that all have a partition.
func groupRun(recs []*record, eff []int32, sc *enqueueScratch) {
	if len(recs) < 3 {
		return
	}
	parts := sc.parts[:0]
	defer func() { sc.parts = parts[:0] }()
	last, switches := int32(-1), 0
	for _, id := range eff {
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
	sc.effs = append(sc.effs[:0], eff...)
	i := 0
	for k, r := range sc.recs {
		id := sc.effs[k]
		if parts[i].id != id {
			i = 0
			for parts[i].id != id {
				i++
			}
		}
		recs[parts[i].pos], eff[parts[i].pos] = r, id
		parts[i].pos++
	}
	clear(sc.recs)
}

// enqueue hands recs to librdkafka, each partition's in order. When the engine copies librdkafka's
// partitioner (keyHash), keyed messages without a partition are partitioned here, so they can be
// grouped: the first one goes to librdkafka's partitioner, which tells the partition count it used
// (rdk.Batch.PartitionCount), and the rest of the batch is partitioned with that count, the same
// function, and therefore to the same partitions librdkafka would pick. While librdkafka does not know
// the topic's partitions yet, its partitioner is not called and the batch goes as it is.
func (e *librdkafkaEngine) enqueue(recs []*record) (int, error) {
	sc := e.scratch.Get().(*enqueueScratch)
	defer e.scratch.Put(sc)
	keyed, explicit := -1, false // the first keyed record without a partition; any with one?
	for j, r := range recs {
		if _, ok := r.msg.Partition.ID(); ok {
			explicit = true
		} else if len(r.msg.Key) > 0 && e.keyHash != nil {
			keyed = j
			break
		}
	}
	switch {
	case keyed >= 0 && len(recs)-keyed > 2:
		return e.enqueueKeyed(recs, keyed, sc)
	case explicit && effectivePartitions(recs, nil, 0, sc):
		groupByPartition(recs, sc.eff, sc)
		return e.produce(recs, sc.eff, sc)
	}
	return e.produce(recs, nil, sc)
}

// enqueueKeyed is enqueue for a batch whose record j is the first with a key and no partition.
func (e *librdkafkaEngine) enqueueKeyed(recs []*record, j int, sc *enqueueScratch) (int, error) {
	topic := recs[j].msg.Topic // recs[:j+1] are librdkafka's once handed over: their reports may recycle them
	n, err := e.produce(recs[:j+1], nil, sc)
	if n <= j {
		return n, err
	}
	rest := recs[j+1:]
	cnt := sc.b.PartitionCount() // -1: librdkafka does not know the topic's partitions yet
	if cnt <= 0 || rest[0].msg.Topic != topic || !effectivePartitions(rest, e.keyHash, cnt, sc) {
		m, err := e.produce(rest, nil, sc)
		return n + m, err
	}
	groupByPartition(rest, sc.eff, sc)
	m, err := e.produce(rest, sc.eff, sc)
	e.partitioned.Add(uint64(m))
	return n + m, err
}

// produce hands recs to librdkafka in one call, telling it eff[i] as record i's partition (-1: its
// partitioner decides; eff nil: each record's ExplicitPartition or -1).
func (e *librdkafkaEngine) produce(recs []*record, eff []int32, sc *enqueueScratch) (int, error) {
	b := &sc.b
	defer b.Reset() // unpins its large values; keeps PartitionCount
	e.mu.Lock()
	for i, r := range recs {
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
		if eff != nil {
			part = eff[i]
		}
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
	if e.started {
		e.stop.Store(true)
		e.p.Wake()
		<-e.done
	}
	e.tokens.close()
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

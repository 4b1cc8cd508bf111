package aioproducer

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

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
	slots  []slot   // by opaque; rec nil when free
	free   []uint32 // free slot indexes
	topics map[string]*rdkTopic

	// health follows each partition's held messages and progress, for the unkeyed choice and the
	// stuck budget (health.go); kind is the partitioner the engine places keyed messages with.
	health *partitionHealth
	kind   int
	linger time.Duration // sticky.partitioning.linger.ms
	meta   chan string   // topics whose partition count to learn (metadataLoop)
	metaWG sync.WaitGroup
	// counts are the partition counts the Partitioner and Producer.Partitions read.
	counts *partitionCounts

	scratch sync.Pool // *enqueueScratch, one per enqueue call in progress
	// partitioned counts the records librdkafka's partitioner function placed in the C helper (for
	// tests).
	partitioned atomic.Uint64
	kickPID     bool     // needsPIDKick: start starts kick
	kick        *pidKick // stopped by close before p.Close
	started     bool
	stop        atomic.Bool
	done        chan struct{}

	// drainers are the drain calls waiting for the report goroutine (guarded by drainMu); it arms them
	// at the start of a poll and closes them once, after a poll it began after them, it has handed
	// over everything librdkafka queued.
	drainMu      sync.Mutex
	drainers     []chan struct{}
	drainWaiting atomic.Bool // drainers is not empty
}

// newLibrdkafkaEngine creates the librdkafka producer for cm; with stats, librdkafka's statistics reports
// are delivered too (when statistics.interval.ms is set). It starts nothing of its own; a setting
// librdkafka refuses comes back as *rdk.ConfigError, whose text names the key.
func newLibrdkafkaEngine(cm kafka.ConfigMap, log *slog.Logger, tokens TokenProvider, stats bool, stuckAfter time.Duration) (*librdkafkaEngine, error) {
	p, err := rdk.New(librdkafkaSettings(cm), rdk.Options{TokenRefresh: tokens != nil, Stats: stats, Partitioner: partitionerOf(cm)})
	if err != nil {
		return nil, err
	}
	e := &librdkafkaEngine{
		p: p, log: log, topics: map[string]*rdkTopic{}, kickPID: needsPIDKick(cm), done: make(chan struct{}),
		health: newPartitionHealth(stuckAfter), kind: partitionerOf(cm), linger: stickyLinger(cm),
		meta: make(chan string, metaQueue),
	}
	e.tokens = newTokenRefresher(tokens, log, p.SetOAuthBearerToken, p.SetOAuthBearerTokenFailure)
	e.counts = newPartitionCounts(e.learnCount)
	e.scratch.New = func() any { return new(enqueueScratch) }
	return e, nil
}

func (e *librdkafkaEngine) start(sink reportSink) {
	e.sink = sink
	e.started = true
	go e.run()
	e.metaWG.Add(1)
	go e.metadataLoop()
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

// slot is a message librdkafka holds: its record, its topic's health, and the partition it is counted
// on there (partUnknown: not counted; partLater: known after the call that enqueues it).
type slot struct {
	rec  *record
	th   *topicHealth
	part int32
	gen  uint32 // counts the slot's uses: enqueue tells its own from a later one
}

const (
	partUnknown = -1
	partLater   = -2
)

// rdkTopic is what the engine keeps per topic in use.
type rdkTopic struct {
	h       rdk.Topic
	health  *topicHealth
	metaAt  time.Time // when its partition count was last asked for
	metaAsk bool      // asked, not answered
}

// metaEvery is how often the partition count of a topic in use is asked for again, so that partitions
// added to it get unkeyed messages too.
const metaEvery = 5 * time.Minute

// metaRetry is how soon a partition count that could not be learned is asked for again.
const metaRetry = time.Second

// enqueueScratch is what one enqueue call works in, pooled.
type enqueueScratch struct {
	b    rdk.Batch
	recs []*record // the call's records in their order before the call
	gens []uint32  // their slots' generations, by the order of Add
}

// enqueue hands recs to librdkafka in one cgo call. The C helper groups each topic run's records by
// partition (placing keyed ones itself with librdkafka's partitioner function, see rdk.Batch.Produce)
// and says in which order it took them; recs is reordered to match, so that recs[n:] is what is left.
// Unkeyed records get their partition here, from the topic's health (topicHealth.choose), once the
// topic's partition count is known.
func (e *librdkafkaEngine) enqueue(recs []*record) (int, error) {
	sc := e.scratch.Get().(*enqueueScratch)
	defer e.scratch.Put(sc)
	b := &sc.b
	defer b.Reset() // unpins its large values
	now := time.Now()
	nowNs := now.UnixNano()
	var topicErr error
	e.mu.Lock()
	var t *rdkTopic
	var counts tally
	chosen := int32(-1)
	for i, r := range recs {
		if i == 0 || r.msg.Topic != recs[i-1].msg.Topic {
			var err error
			if t, err = e.topicLocked(r.msg.Topic, now); err != nil {
				recs, topicErr = recs[:i], err // the records before are still enqueued
				break
			}
			chosen = -2 // not chosen yet for this run
		}
		part, explicit := r.partition()
		counted := int32(partUnknown)
		switch {
		case explicit:
			if t.health.tracks(part) {
				counted = part
			}
		case r.placed:
			part, counted = r.part, r.part
		case e.unkeyed(r.msg.Key):
			if chosen == -2 {
				chosen = t.health.choose(now, e.linger)
			}
			part, counted = chosen, chosen
			if chosen >= 0 {
				r.placed, r.part = true, chosen
			}
		case e.kind != rdk.PartitionerNone:
			part, counted = -1, partLater // the C helper places it
		default:
			part = -1
		}
		var sl uint32
		if n := len(e.free); n > 0 {
			sl = e.free[n-1]
			e.free = e.free[:n-1]
		} else {
			sl = uint32(len(e.slots))
			e.slots = append(e.slots, slot{})
		}
		gen := e.slots[sl].gen + 1
		e.slots[sl] = slot{rec: r, th: t.health, part: counted, gen: gen}
		sc.gens = append(sc.gens, gen)
		if counted >= 0 {
			counts.enqueued(t.health, counted, nowNs)
		}
		b.Add(t.h, r.msg.Key, r.msg.Value, r.msg.Headers, part, r.ts.UnixMilli(), uint64(sl))
	}
	counts.flushEnqueued(nowNs)
	e.mu.Unlock()

	n, err := e.p.Produce(b)
	if m := b.Partitioned(); m > 0 {
		e.partitioned.Add(uint64(m))
	}
	order, parts := b.Order(), b.Partitions()
	e.mu.Lock()
	// What the C helper placed is counted on its partition now, unless its report came already (its
	// slot no longer holds it): the report did not count it either.
	for k := range n {
		i := order[k]
		sl := &e.slots[b.Opaque(int(i))]
		if sl.part == partLater && sl.gen == sc.gens[i] {
			sl.part = partUnknown
			if sl.th.tracks(parts[i]) {
				sl.part = parts[i]
				counts.enqueued(sl.th, parts[i], nowNs)
			}
		}
	}
	counts.flushEnqueued(nowNs)
	// The messages librdkafka did not take get no report: their slots are free again, and their counts
	// taken back.
	for k := n; k < len(recs); k++ {
		i := order[k]
		o := b.Opaque(int(i))
		if sl := e.slots[o]; sl.part >= 0 {
			sl.th.reported(sl.part, 1, nowNs, false)
		}
		e.slots[o] = slot{gen: e.slots[o].gen}
		e.free = append(e.free, uint32(o))
	}
	e.mu.Unlock()
	sc.gens = sc.gens[:0]
	// Reorder recs as librdkafka took them. recs[:n] may be recycled already (their reports may have
	// come): only the slice is touched.
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

// unkeyed reports whether a message with key, and no partition of its own, is one librdkafka's
// partitioner would place at random (sticky): a null key, or an empty one with consistent_random. The
// engine places those itself, when it places keyed ones (a *_random partitioner).
func (e *librdkafkaEngine) unkeyed(key []byte) bool {
	return e.kind != rdk.PartitionerNone && (key == nil || len(key) == 0 && e.kind == rdk.PartitionerConsistentRandom)
}

// topicLocked returns topic's state, made on first use, and asks for its partition count when it is
// not known or old, if the engine places messages itself or the count is followed (partitionCounts).
// e.mu is held.
func (e *librdkafkaEngine) topicLocked(topic string, now time.Time) (*rdkTopic, error) {
	t, ok := e.topics[topic]
	if !ok {
		h, err := e.p.Topic(topic)
		if err != nil {
			return nil, err
		}
		t = &rdkTopic{h: h, health: e.health.topic(topic)}
		e.topics[topic] = t
	}
	if !t.metaAsk && now.Sub(t.metaAt) > metaEvery && (e.kind != rdk.PartitionerNone || e.counts.has(topic)) {
		select {
		case e.meta <- topic:
			t.metaAsk, t.metaAt = true, now
		default: // the queue is full: asked again at the next call
		}
	}
	return t, nil
}

// errNoLeader says that a metadata answer named no leader for some partition.
var errNoLeader = errors.New("aioproducer: a partition has no leader")

// metaQueue is how many topics may wait for metadataLoop.
const metaQueue = 4096

// metadataTimeoutMs bounds one topic's metadata request, and so how long Close waits for one in
// progress. A request that lands on a broker that stopped answering gives up: it is asked again later.
const metadataTimeoutMs = 500

// metadataLoop learns the partition counts (and leaders) of the topics enqueue asks for, one request
// at a time, on a goroutine of its own: the engine's calls never wait for the network. While partitions
// are marked unavailable it asks for their topics every second: librdkafka learns their new leaders
// from the answers too, sooner than from its own refresh (topic.metadata.refresh.interval.ms).
func (e *librdkafkaEngine) metadataLoop() {
	defer e.metaWG.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case name, ok := <-e.meta:
			if !ok {
				return
			}
			e.learn(name)
		case <-tick.C:
			if e.health.marked.Load() > 0 {
				for _, name := range e.health.markedTopics() {
					e.learn(name)
				}
			}
		}
	}
}

// learn asks the cluster for topic name's partitions (learnCount) for metadataLoop.
func (e *librdkafkaEngine) learn(name string) {
	_, err := e.learnCount(name)
	if th := e.health.lookup(name); err == nil && th != nil {
		if l := th.leader.Load(); l != nil && slices.Contains(*l, -1) {
			err = errNoLeader // a partition without a leader (yet): ask again soon
		}
	}
	e.mu.Lock()
	if t, ok := e.topics[name]; ok {
		t.metaAsk = false
		if err != nil {
			t.metaAt = time.Now().Add(metaRetry - metaEvery) // ask again in metaRetry
		}
	}
	e.mu.Unlock()
}

// learnCount asks the cluster for topic name's partitions, through a topic handle of its own (the
// engine's may be destroyed meanwhile), records them in its health and its count, and returns the
// count. One request, of at most metadataTimeoutMs.
func (e *librdkafkaEngine) learnCount(name string) (int32, error) {
	h, err := e.p.Topic(name)
	if err != nil {
		return 0, err
	}
	defer e.p.DestroyTopic(h)
	leaders, err := e.p.TopicLeaders(h, metadataTimeoutMs)
	if err != nil {
		return 0, err
	}
	if len(leaders) == 0 {
		return 0, kafka.NewError(kafka.ErrUnknownTopic, "no partitions in the topic's metadata", false)
	}
	if th := e.health.lookup(name); th != nil {
		th.setLeaders(leaders)
	}
	e.counts.store(name, int32(len(leaders)))
	return int32(len(leaders)), nil
}

// knownPartitions is the count partitionCounts knows, asking for it when it does not.
func (e *librdkafkaEngine) knownPartitions(topic string) int32 { return e.counts.known(topic) }

// partitions waits for the count partitionCounts learns, until ctx ends.
func (e *librdkafkaEngine) partitions(ctx context.Context, topic string) (int32, error) {
	return e.counts.wait(ctx, topic)
}

// stuck reports whether msg goes to a partition marked unavailable: part, its explicit partition or
// the Partitioner's choice; else its key's (with librdkafka's partitioner function, a cgo call, made
// only while some partition is marked), or, unkeyed, every partition of its topic.
func (e *librdkafkaEngine) stuck(msg *Message, part int32) bool {
	if e.health.marked.Load() == 0 {
		return false
	}
	th := e.health.lookup(msg.Topic)
	if th == nil {
		return false
	}
	if part >= 0 {
		return th.isMarked(part)
	}
	if len(msg.Key) > 0 && e.kind != rdk.PartitionerNone {
		n := th.count.Load()
		return n > 0 && th.isMarked(e.partitionOf(msg.Key, n))
	}
	return th.allMarked()
}

func (e *librdkafkaEngine) stuckAdmit(limit int64) bool { return e.health.admit(limit) }

// partitionOf is the partition librdkafka's partitioner puts a non-empty key in, of n.
func (e *librdkafkaEngine) partitionOf(key []byte, n int32) int32 {
	return rdk.Partition(e.kind, key, n)
}

// forget drops the handles of topics that went idle. librdkafka keeps what it knows of a topic (its
// metadata and partitions, a few KiB) until the producer closes, handle or not: it offers no way to
// forget a topic.
func (e *librdkafkaEngine) forget(topics []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, name := range topics {
		if t, ok := e.topics[name]; ok {
			e.p.DestroyTopic(t.h)
			delete(e.topics, name)
		}
	}
	e.health.forget(topics)
	e.counts.forget(topics)
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
	if e.started {
		close(e.meta)
		e.metaWG.Wait()
	}
	e.counts.close()
	e.mu.Lock()
	for name, t := range e.topics {
		e.p.DestroyTopic(t.h)
		delete(e.topics, name)
	}
	e.mu.Unlock()
	e.p.Close()
}

// drain waits until the report goroutine, after a poll that began after the call, finds that it has
// handed over everything librdkafka queued (rdk.Drained): every report queued before the call (those
// of a purge that returned, say) has then been handed to the sink. Events that keep coming (log lines
// while a broker is down) do not delay it. Wake makes a poll waiting on an empty queue return at once.
func (e *librdkafkaEngine) drain(ctx context.Context) error {
	ch := make(chan struct{})
	e.drainMu.Lock()
	e.drainers = append(e.drainers, ch)
	e.drainWaiting.Store(true)
	e.drainMu.Unlock()
	e.p.Wake()
	select {
	case <-ch:
		return nil
	case <-e.done:
		return nil // closed: every report was handed over
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *librdkafkaEngine) ping(timeoutMs int) error {
	if _, code := e.p.MetadataOrigin(timeoutMs); code != kafka.ErrNoError {
		return kafka.NewError(code, "", false)
	}
	return nil
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
	every := e.health.after / 4
	lastScan := time.Now()
	var armed []chan struct{} // drain calls made before the poll in progress began
	for !e.stop.Load() {
		if e.drainWaiting.Load() {
			e.drainMu.Lock()
			armed = append(armed, e.drainers...)
			e.drainers = e.drainers[:0]
			e.drainWaiting.Store(false)
			e.drainMu.Unlock()
		}
		n, ev := e.p.Poll(int(every.Milliseconds()), out)
		now := time.Now()
		if n > 0 {
			nowNs := now.UnixNano()
			var counts tally
			e.mu.Lock()
			for _, d := range out[:n] {
				sl := e.slots[d.Opaque]
				e.slots[d.Opaque] = slot{gen: sl.gen}
				e.free = append(e.free, uint32(d.Opaque))
				r := report{rec: sl.rec, partition: d.Partition, offset: d.Offset}
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
				// A report shows its partition working, unless librdkafka gave up on the message
				// (it timed out, or was purged).
				progress := d.Err == 0 || !localFailure(kafka.ErrorCode(d.Err))
				switch {
				case sl.part >= 0:
					counts.reported(sl.th, sl.part, 1, progress, nowNs)
				case sl.th != nil && sl.th.tracks(d.Partition):
					counts.reported(sl.th, d.Partition, 0, progress, nowNs)
				}
				reps = append(reps, r)
			}
			counts.flushReported(nowNs)
			e.mu.Unlock()
			e.sink.onReports(reps)
			clear(reps)
			reps = reps[:0]
		}
		if ev != nil {
			e.handle(ev)
		}
		if len(armed) > 0 && e.p.Drained() {
			// Every report librdkafka queued before the poll began is handed over.
			for _, ch := range armed {
				close(ch)
			}
			clear(armed)
			armed = armed[:0]
		}
		if now.Sub(lastScan) >= every {
			e.health.scan(now)
			lastScan = now
		}
	}
}

// localFailure reports whether code is librdkafka giving up on a message in the client (a timeout or a
// purge), which says nothing good of its partition.
func localFailure(code kafka.ErrorCode) bool {
	switch code {
	case kafka.ErrMsgTimedOut, kafka.ErrTimedOut, kafka.ErrTimedOutQueue, kafka.ErrPurgeQueue, kafka.ErrPurgeInflight:
		return true
	}
	return false
}

func (e *librdkafkaEngine) handle(ev *rdk.Event) {
	switch ev.Type {
	case rdk.EventLog:
		e.log.Log(context.Background(), logLevel(ev.Level, ev.Tag, ev.Str), "librdkafka: "+ev.Str, "tag", ev.Tag, "client", e.p.Name())
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

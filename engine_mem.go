package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/fakeengine"
	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// memEngine is an engine without librdkafka: an in-memory broker behind aioproducertest.Fake and the
// package's own tests of the producer's logic. It takes messages at once, assigns each its partition
// (explicit, else the CRC-32 of a non-empty key modulo the topic's partitions, round robin for a null
// or empty key, which librdkafka's default partitioner places at random) and completes them, at once
// (Auto) or when the test says so, with offsets counting from 0 per partition. Like the librdkafka
// engine it reports from one goroutine of its own.
//
// For the package's tests it can also act as librdkafka does under stress: a queue of limited
// capacity (errQueueFull), messages it refuses, a gate that holds enqueue calls, a fatal error.
//
// It keeps the transactions of a transactional producer (memTxn: what each took, the offsets sent to
// it, how it ended) and fails transactional calls as the test asks (FailTxn, Fence), with librdkafka's
// rules: a fatal error is raised on the producer as librdkafka's error event raises it, and after an
// abortable one the transaction takes no message and cannot commit until it is aborted.
type memEngine struct {
	cfg memConfig

	// Set by start.
	sink  reportSink
	stats *counters

	mu       sync.Mutex
	pending  []memPending // taken, not completed, oldest first
	history  []*fakeengine.Sent[*Message]
	calls    [][]*Message // the messages each enqueue call took, in call order
	taken    uint64
	next     map[memPartition]int64 // the next offset of each partition
	rr       map[string]int32       // the next partition of a null or empty key, per topic
	changed  chan struct{}          // closed and replaced whenever a message is taken or completed
	capacity int                    // > 0: enqueue refuses with errQueueFull while this many are pending
	refuse   map[*Message]error     // messages enqueue refuses, with their error
	gate     chan struct{}          // non-nil: enqueue waits until it is closed
	fatal    *kafka.Error           // raised by raiseFatal: enqueue refuses from then on
	purges   int
	forgot   int
	txns     []memTxnCall

	txnLog    []*memTxn       // the transactions begun since the start or the last Clear
	curTxn    *memTxn         // the open one, if any
	txnFail   map[int][]error // the failures queued for the next calls of each operation (FailTxn)
	fenced    bool            // the next transactional call fails as a fenced producer's (Fence)
	abortable *kafka.Error    // the open transaction's abortable error: only an abort clears it

	flushCalls atomic.Int32
	purgeReq   atomic.Bool   // a purge waits for the report goroutine
	wake       chan struct{} // capacity 1: messages were taken (Auto), or a purge was asked for
	req        chan memReq
	stop       chan struct{}
	done       chan struct{}
}

// memConfig is fakeengine.Config for aioproducer's messages.
type memConfig = fakeengine.Config[*Message]

type memPending struct {
	rec   *record
	sent  *fakeengine.Sent[*Message]
	valid bool // the partition exists
}

type memPartition struct {
	topic     string
	partition int32
}

type memReq struct {
	n     int
	err   error
	fatal *kafka.Error
	drain bool // hand over a purge asked for, and nothing else
	abort bool // end what is outstanding, as librdkafka's abort_transaction does
	done  chan int
}

// memTxn is one transaction, from a BeginTransaction that succeeded.
type memTxn struct {
	sent      []*fakeengine.Sent[*Message]
	offsets   []fakeengine.Offsets
	committed bool
	aborted   bool
}

// memSendOffsets stands for SendOffsetsToTransaction among rdk's transactional operations.
const memSendOffsets = -1

// memTxnOps are the transactional operations by the name of the Producer's method.
var memTxnOps = map[string]int{
	"InitTransactions": rdk.TxnInit, "BeginTransaction": rdk.TxnBegin, "SendOffsetsToTransaction": memSendOffsets,
	"CommitTransaction": rdk.TxnCommit, "AbortTransaction": rdk.TxnAbort,
}

// memTxnCall is a transactional call the engine took, and how many messages it had taken before.
type memTxnCall struct {
	op    int
	taken uint64
}

func init() { fakeengine.Register(newMemProducer) }

// newMemEngine returns an in-memory engine; newProducer binds it to its producer.
func newMemEngine(cfg memConfig) *memEngine {
	if cfg.Partitions == nil {
		cfg.Partitions = func(string) int32 { return 1 }
	}
	return &memEngine{
		cfg: cfg, next: map[memPartition]int64{}, rr: map[string]int32{}, refuse: map[*Message]error{}, txnFail: map[int][]error{},
		changed: make(chan struct{}), wake: make(chan struct{}, 1), req: make(chan memReq),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// newMemProducer is the fakeengine.Opener package aioproducertest builds a Fake with: a Producer
// with opts over a new memEngine.
func newMemProducer(fc memConfig, opts []Option) (*Producer, fakeengine.Engine[*Message], error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	cfg.kafka.transactional = fc.Transactional
	me := newMemEngine(fc)
	return newProducer(cfg, me), me, nil
}

// start makes sink the engine's and starts its report goroutine. The producer's sink gives it the
// producer's counts too, for Sync.
func (e *memEngine) start(sink reportSink) {
	e.sink = sink
	e.stats = new(counters)
	if c, ok := sink.(interface{ counters() *counters }); ok {
		e.stats = c.counters()
	}
	go e.run()
}

// stuck is false: the in-memory broker's partitions never stall.
func (e *memEngine) stuck(*Message, int32) bool { return false }

// knownPartitions is topic's partition count as the engine's configuration gives it (1 by default):
// the in-memory broker knows every topic.
func (e *memEngine) knownPartitions(topic string) int32 { return max(e.cfg.Partitions(topic), 1) }

func (e *memEngine) partitions(_ context.Context, topic string) (int32, error) {
	return e.knownPartitions(topic), nil
}

func (e *memEngine) stuckAdmit(int64) bool { return true }

// forget counts the topics it is told to forget (forgotten).
func (e *memEngine) forget(topics []string) {
	e.mu.Lock()
	e.forgot += len(topics)
	e.mu.Unlock()
}

// forgotten is how many topics the dispatcher told the engine to forget.
func (e *memEngine) forgotten() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.forgot
}

// changedLocked wakes whoever waits for a change.
func (e *memEngine) changedLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *memEngine) enqueue(recs []*record) (int, error) {
	e.mu.Lock()
	gate := e.gate
	e.mu.Unlock()
	if gate != nil {
		<-gate
	}
	e.mu.Lock()
	n := 0
	var err error
	var took []*Message
	for _, r := range recs {
		if e.fatal != nil {
			err = kafka.NewError(kafka.ErrFatal, "Local: Fatal error", false)
			break
		}
		if e.capacity > 0 && len(e.pending) >= e.capacity {
			err = errQueueFull
			break
		}
		if rerr, ok := e.refuse[r.msg]; ok {
			err = rerr
			break
		}
		if e.abortable != nil { // librdkafka takes no message in a transaction that must be aborted
			err = errMemTxnState
			break
		}
		parts := e.knownPartitions(r.msg.Topic)
		part, explicit := r.partition()
		switch {
		case explicit:
		case len(r.msg.Key) > 0: // consistent_random hashes only a non-empty key
			part = int32(crc32.ChecksumIEEE(r.msg.Key) % uint32(parts))
		default:
			part = e.rr[r.msg.Topic] % parts
			e.rr[r.msg.Topic] = part + 1
		}
		s := &fakeengine.Sent[*Message]{Msg: r.msg, Partition: part, Offset: -1}
		e.history = append(e.history, s)
		if e.curTxn != nil {
			e.curTxn.sent = append(e.curTxn.sent, s)
		}
		e.pending = append(e.pending, memPending{rec: r, sent: s, valid: part >= 0 && part < parts})
		took = append(took, r.msg)
		n++
	}
	if n > 0 {
		e.calls = append(e.calls, took)
		e.taken += uint64(n)
		e.changedLocked()
	}
	e.mu.Unlock()
	if e.cfg.Auto && n > 0 {
		wakeUp(e.wake)
	}
	return n, err
}

func (e *memEngine) run() {
	defer close(e.done)
	for {
		select {
		case <-e.wake:
			if e.purgeReq.Swap(false) {
				e.report(-1, nil, true)
			}
			if e.cfg.Auto {
				e.report(-1, nil, false)
			}
		case r := <-e.req:
			n := 0
			switch {
			case r.drain:
				if e.purgeReq.Swap(false) {
					e.report(-1, nil, true)
				}
			case r.abort: // Auto: the broker has them already; otherwise they are purged
				n = e.report(-1, nil, !e.cfg.Auto)
			case r.fatal != nil:
				e.mu.Lock()
				e.fatal = r.fatal
				e.mu.Unlock()
				e.sink.onFatal(*r.fatal)
			default:
				n = e.report(r.n, r.err, false)
			}
			if r.done != nil {
				r.done <- n
			}
		case <-e.stop:
			return
		}
	}
}

var (
	errMemUnknownPartition = kafka.NewError(kafka.ErrUnknownPartition, "Local: Unknown partition", false)
	errMemTxnState         = kafka.NewError(kafka.ErrState, "Local: Erroneous state", false)
)

// memFault is the status, fatality and error of a message failed with err: a *fakeengine.Fault says
// them, as librdkafka's report does; any other error is reported as it is, its status unknown.
func memFault(err error) (msgStatus, bool, error) {
	var f *fakeengine.Fault
	if !errors.As(err, &f) {
		return statusUnknown, false, err
	}
	switch f.Class {
	case fakeengine.NotPersisted:
		return statusNotPersisted, false, f.Err
	case fakeengine.PossiblyPersisted:
		return statusPossiblyPersisted, false, f.Err
	case fakeengine.Fatal:
		return statusNotPersisted, true, f.Err
	}
	return statusUnknown, false, f.Err // a report carries no retriable or abortable flag
}

// report completes the n oldest pending messages (n < 0: all): with err, with the purge error, or as
// the configuration says. It runs on the engine's goroutine only.
func (e *memEngine) report(n int, err error, purge bool) int {
	e.mu.Lock()
	if n < 0 || n > len(e.pending) {
		n = len(e.pending)
	}
	batch := e.pending[:n:n]
	e.pending = append([]memPending(nil), e.pending[n:]...)
	e.mu.Unlock()
	if n == 0 {
		return 0
	}
	rs := make([]report, n)
	var fatal *kafka.Error
	for i, p := range batch {
		rs[i] = report{rec: p.rec, partition: p.sent.Partition}
		switch {
		case purge:
			rs[i].err, rs[i].status = errPurgeQueue, statusNotPersisted
		case !p.valid:
			rs[i].err, rs[i].status = errMemUnknownPartition, statusNotPersisted
		case err != nil:
			rs[i].err = err
		case e.cfg.Fail != nil:
			rs[i].err = e.cfg.Fail(p.rec.msg) // outside the lock: it is the test's code
		}
		if rs[i].err != nil && rs[i].status == statusUnknown {
			var isFatal bool
			rs[i].status, isFatal, rs[i].err = memFault(rs[i].err)
			var ke kafka.Error
			if isFatal && fatal == nil && errors.As(rs[i].err, &ke) {
				fatal = &ke
			}
		}
	}
	e.mu.Lock()
	for i, p := range batch {
		p.sent.Done, p.sent.Err = true, rs[i].err
		if rs[i].err == nil {
			tp := memPartition{p.rec.msg.Topic, p.sent.Partition}
			rs[i].offset = e.next[tp]
			p.sent.Offset = rs[i].offset
			e.next[tp]++
		}
	}
	if fatal != nil && e.fatal == nil {
		e.fatal = fatal
	}
	e.mu.Unlock()
	if fatal != nil {
		// As librdkafka raises its fatal error (the error event) before the failed message's report:
		// the message's outcome wraps ErrFatal, the rest outstanding is purged.
		e.sink.onFatal(*fatal)
	}
	e.sink.onReports(rs)
	e.mu.Lock()
	e.changedLocked()
	e.mu.Unlock()
	return n
}

// Sync is fakeengine.Engine's.
func (e *memEngine) Sync(d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		ok := e.taken+e.stats.failedEarly.Load() >= e.stats.accepted.Load()
		ch := e.changed
		e.mu.Unlock()
		if ok {
			return true
		}
		poll := time.NewTimer(time.Millisecond) // failures before the engine change nothing here
		select {
		case <-ch:
		case <-poll.C:
		case <-deadline.C:
			poll.Stop()
			return false
		}
		poll.Stop()
	}
}

// syncTimeout bounds how long Complete waits for the producer to hand over what it accepted.
const syncTimeout = 10 * time.Second

// Complete is fakeengine.Engine's.
func (e *memEngine) Complete(n int, err error) int {
	e.Sync(syncTimeout)
	return e.request(memReq{n: n, err: err})
}

// request has the report goroutine carry out r and returns what it reported, once the sink has it.
func (e *memEngine) request(r memReq) int {
	r.done = make(chan int, 1)
	select {
	case e.req <- r:
		return <-r.done
	case <-e.done:
		return 0
	}
}

// Outstanding is fakeengine.Engine's.
func (e *memEngine) Outstanding() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.pending)
}

// History is fakeengine.Engine's.
func (e *memEngine) History() []fakeengine.Sent[*Message] {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]fakeengine.Sent[*Message], len(e.history))
	for i, s := range e.history {
		out[i] = *s
	}
	return out
}

// Clear is fakeengine.Engine's.
func (e *memEngine) Clear() {
	e.mu.Lock()
	e.history = nil
	e.txnLog = nil
	if e.curTxn != nil {
		e.curTxn.sent, e.curTxn.offsets = nil, nil
		e.txnLog = []*memTxn{e.curTxn}
	}
	e.mu.Unlock()
}

// Transactions is fakeengine.Engine's.
func (e *memEngine) Transactions() []fakeengine.Txn[*Message] {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]fakeengine.Txn[*Message], len(e.txnLog))
	for i, t := range e.txnLog {
		out[i] = fakeengine.Txn[*Message]{Committed: t.committed, Aborted: t.aborted,
			Sent: make([]fakeengine.Sent[*Message], len(t.sent)), Offsets: append([]fakeengine.Offsets(nil), t.offsets...)}
		for j, s := range t.sent {
			out[i].Sent[j] = *s
		}
	}
	return out
}

// FailTxn is fakeengine.Engine's.
func (e *memEngine) FailTxn(op string, err error) bool {
	code, ok := memTxnOps[op]
	if !ok {
		return false
	}
	e.mu.Lock()
	e.txnFail[code] = append(e.txnFail[code], err)
	e.mu.Unlock()
	return true
}

// Fence is fakeengine.Engine's.
func (e *memEngine) Fence() {
	e.mu.Lock()
	e.fenced = true
	e.mu.Unlock()
}

// purge fails every pending message, on the report goroutine (it may be called from there, through
// the sink's onFatal).
func (e *memEngine) purge() error {
	e.mu.Lock()
	e.purges++
	e.mu.Unlock()
	e.purgeReq.Store(true)
	wakeUp(e.wake)
	return nil
}

func (e *memEngine) purgeQueue() error { return e.purge() }

// drain has the engine's goroutine hand over a purge asked for before the call.
func (e *memEngine) drain(ctx context.Context) error {
	done := make(chan int, 1)
	select {
	case e.req <- memReq{drain: true, done: done}:
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	<-done
	return nil
}

// ping answers at once: the in-memory broker is always up.
func (e *memEngine) ping(int) error { return nil }

func (e *memEngine) fatalError() (kafka.Error, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fatal == nil {
		return kafka.Error{}, false
	}
	return *e.fatal, true
}

// flush waits until no message is outstanding, up to timeoutMs, as rd_kafka_flush waits for the broker.
func (e *memEngine) flush(timeoutMs int) bool {
	e.flushCalls.Add(1)
	t := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
	defer t.Stop()
	for {
		e.mu.Lock()
		empty, ch := len(e.pending) == 0, e.changed
		e.mu.Unlock()
		if empty {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-e.stop:
			return false
		}
	}
}

// txn records the call and carries it out: it fails as the test asked (FailTxn, Fence) or as
// librdkafka's state says (fatal, or the transaction must be aborted), else succeeds. An abort ends
// what is outstanding first, as rd_kafka_abort_transaction purges it.
func (e *memEngine) txn(op, _ int) error {
	e.mu.Lock()
	e.txns = append(e.txns, memTxnCall{op: op, taken: e.taken})
	err := e.txnFailure(op)
	e.mu.Unlock()
	if err != nil {
		return err
	}
	if op == rdk.TxnAbort {
		e.request(memReq{abort: true})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch op {
	case rdk.TxnBegin:
		e.curTxn = &memTxn{}
		e.txnLog = append(e.txnLog, e.curTxn)
	case rdk.TxnCommit, rdk.TxnAbort:
		if t := e.curTxn; t != nil {
			t.committed, t.aborted = op == rdk.TxnCommit, op == rdk.TxnAbort
			for _, s := range t.sent {
				s.Committed, s.Aborted = t.committed, t.aborted
			}
		}
		e.curTxn, e.abortable = nil, nil
	}
	return nil
}

// sendOffsets checks its arguments as rdk.SendOffsets does, then records the offsets and the group's
// id in the open transaction, unless the call fails as txn's do.
func (e *memEngine) sendOffsets(offsets []kafka.TopicPartition, cgm *kafka.ConsumerGroupMetadata, _ int) error {
	group, err := rdk.GroupID(cgm)
	if err != nil {
		return &TxnError{Err: kafka.NewError(kafka.ErrInvalidArg, err.Error(), false)}
	}
	tps := make([]kafka.TopicPartition, len(offsets))
	for i, tp := range offsets {
		if tp.Topic == nil {
			return &TxnError{Err: kafka.NewError(kafka.ErrInvalidArg, fmt.Sprintf("offset %d has no topic", i), false)}
		}
		topic := *tp.Topic
		tps[i] = tp
		tps[i].Topic = &topic
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.txnFailure(memSendOffsets); err != nil {
		return err
	}
	if e.curTxn != nil {
		e.curTxn.offsets = append(e.curTxn.offsets, fakeengine.Offsets{Group: group, Offsets: tps})
	}
	return nil
}

// errMemFenced is what a fenced producer's transactional calls fail with.
var errMemFenced = kafka.NewError(kafka.ErrFenced, "", true)

// txnFailure is the error transactional operation op fails with, or nil: librdkafka's fatal error
// once there is one; a fenced producer's; the next failure FailTxn queued for op; the abortable error
// of the open transaction for a commit or SendOffsets. A fatal failure is raised on the producer, as
// librdkafka's error event raises it, before the call returns; an abortable one stays until an abort.
// The caller holds e.mu, which this releases and takes again to raise a fatal error.
func (e *memEngine) txnFailure(op int) error {
	if e.fatal != nil {
		return &TxnError{Err: *e.fatal, fatal: true}
	}
	var err error
	switch q := e.txnFail[op]; {
	case e.fenced:
		e.fenced = false
		err = &fakeengine.Fault{Err: errMemFenced, Class: fakeengine.Fatal}
	case len(q) > 0:
		err, e.txnFail[op] = q[0], q[1:]
	case e.abortable != nil && (op == rdk.TxnCommit || op == memSendOffsets):
		return &TxnError{Err: *e.abortable, requiresAbort: true}
	default:
		return nil
	}
	te := &TxnError{Err: err}
	var f *fakeengine.Fault
	if errors.As(err, &f) {
		te = &TxnError{Err: f.Err, retriable: f.Class == fakeengine.Retriable,
			requiresAbort: f.Class == fakeengine.Abortable, fatal: f.Class == fakeengine.Fatal}
	}
	var ke kafka.Error
	switch {
	case te.requiresAbort && errors.As(te.Err, &ke):
		e.abortable = &ke
	case te.fatal && errors.As(te.Err, &ke):
		e.mu.Unlock()
		e.raiseFatal(ke)
		e.mu.Lock()
	}
	return te
}

func (e *memEngine) setSaslCredentials(string, string) error { return nil }

func (e *memEngine) close() {
	close(e.stop)
	<-e.done
}

// What the package's tests ask of the engine.

// deliver completes the n oldest pending messages as the configuration says (-1: all), and returns
// once the sink has their reports.
func (e *memEngine) deliver(n int) { e.request(memReq{n: n}) }

// raiseFatal reports a fatal error, as librdkafka's error event does, and refuses every enqueue from
// then on.
func (e *memEngine) raiseFatal(err kafka.Error) { e.request(memReq{fatal: &err}) }

// setGate makes enqueue calls wait until g is closed (nil: no gate).
func (e *memEngine) setGate(g chan struct{}) {
	e.mu.Lock()
	e.gate = g
	e.mu.Unlock()
}

// setCapacity makes enqueue refuse with errQueueFull while n messages are pending (0: no limit).
func (e *memEngine) setCapacity(n int) {
	e.mu.Lock()
	e.capacity = n
	e.mu.Unlock()
}

// refuseWith makes enqueue refuse m with err.
func (e *memEngine) refuseWith(m *Message, err error) {
	e.mu.Lock()
	e.refuse[m] = err
	e.mu.Unlock()
}

// callSizes returns how many messages each enqueue call took, in call order.
func (e *memEngine) callSizes() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]int, len(e.calls))
	for i, c := range e.calls {
		out[i] = len(c)
	}
	return out
}

// callMessages returns the messages each enqueue call took, in call order.
func (e *memEngine) callMessages() [][]*Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([][]*Message(nil), e.calls...)
}

// enqueued returns every message taken, in the order it took them.
func (e *memEngine) enqueued() []*Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*Message
	for _, c := range e.calls {
		out = append(out, c...)
	}
	return out
}

// pendingCount is Outstanding.
func (e *memEngine) pendingCount() int { return e.Outstanding() }

// purgeCount is how many times the engine was purged.
func (e *memEngine) purgeCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.purges
}

// txnCalls returns the transactional calls taken, in order.
func (e *memEngine) txnCalls() []memTxnCall {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]memTxnCall(nil), e.txns...)
}

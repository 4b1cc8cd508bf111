package aioproducer

import (
	"errors"
	"hash/crc32"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/fakeengine"
)

// memEngine is an engine without librdkafka, behind aioproducertest.Fake: it takes every message at
// once, assigns its partition (explicit, else the CRC-32 of a non-empty key modulo the topic's
// partitions, round robin for a null or empty key, which librdkafka's default partitioner places at
// random) and completes it, at once or when the test says so, with offsets counting from 0 per
// partition. Like a real engine it reports from one goroutine of its own. Users reach it only through
// package aioproducertest (see internal/fakeengine).
type memEngine struct {
	cfg          fakeengine.Config
	sink         reportSink
	stats        *counters
	requestFlush func()

	mu      sync.Mutex
	pending []memPending // taken, not completed, oldest first
	history []*fakeengine.Sent
	taken   uint64
	next    map[memPartition]int64 // the next offset of each partition
	rr      map[string]int32       // the next partition of a null or empty key, per topic
	changed chan struct{}          // closed and replaced whenever a message is taken or completed

	wake chan struct{} // auto mode: messages were taken
	req  chan memReq
	stop chan struct{}
	done chan struct{}
}

type memPending struct {
	rec   *record
	sent  *fakeengine.Sent
	valid bool // the partition exists
}

type memPartition struct {
	topic     string
	partition int32
}

type memReq struct {
	n     int
	err   error
	purge bool
	done  chan int
}

func init() { fakeengine.NewProducer = newMemProducer }

// newMemProducer is fakeengine.NewProducer: a Producer built with opts ([]Option) over a memEngine.
func newMemProducer(fc fakeengine.Config, opts any) (any, fakeengine.Engine, error) {
	cfg := defaultConfig()
	for _, o := range opts.([]Option) {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	var me *memEngine
	p, err := newProducer(cfg, func(s reportSink) (engine, error) {
		p := s.(*Producer)
		me = &memEngine{
			cfg: fc, sink: s, stats: &p.stats, requestFlush: p.requestFlush,
			next: map[memPartition]int64{}, rr: map[string]int32{}, changed: make(chan struct{}),
			wake: make(chan struct{}, 1), req: make(chan memReq), stop: make(chan struct{}), done: make(chan struct{}),
		}
		return me, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return p, me, nil
}

func (e *memEngine) start() { go e.run() }

// changedLocked wakes whoever waits for a change.
func (e *memEngine) changedLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *memEngine) enqueue(recs []*record) (int, error) {
	e.mu.Lock()
	for _, r := range recs {
		n := max(e.cfg.Partitions(r.msg.Topic), 1)
		part, explicit := r.msg.Partition.ID()
		switch {
		case explicit:
		case len(r.msg.Key) > 0: // consistent_random hashes only a non-empty key
			part = int32(crc32.ChecksumIEEE(r.msg.Key) % uint32(n))
		default:
			part = e.rr[r.msg.Topic] % n
			e.rr[r.msg.Topic] = part + 1
		}
		s := &fakeengine.Sent{Msg: r.msg, Partition: part, Offset: -1}
		e.history = append(e.history, s)
		e.pending = append(e.pending, memPending{rec: r, sent: s, valid: part >= 0 && part < n})
	}
	e.taken += uint64(len(recs))
	e.changedLocked()
	e.mu.Unlock()
	if e.cfg.Auto {
		wakeUp(e.wake)
	}
	return len(recs), nil
}

func (e *memEngine) run() {
	defer close(e.done)
	for {
		select {
		case <-e.wake:
			e.report(-1, nil, false)
		case r := <-e.req:
			n := e.report(r.n, r.err, r.purge)
			if r.done != nil {
				r.done <- n
			}
		case <-e.stop:
			return
		}
	}
}

var (
	errMemPurged           = kafka.NewError(kafka.ErrPurgeQueue, "Local: Purged in queue", false)
	errMemUnknownPartition = kafka.NewError(kafka.ErrUnknownPartition, "Local: Unknown partition", false)
)

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
	for i, p := range batch {
		rs[i] = report{rec: p.rec, partition: p.sent.Partition}
		switch {
		case purge:
			rs[i].err, rs[i].status = errMemPurged, statusNotPersisted
		case !p.valid:
			rs[i].err, rs[i].status = errMemUnknownPartition, statusNotPersisted
		case err != nil:
			rs[i].err = err
		case e.cfg.Fail != nil:
			rs[i].err = e.cfg.Fail(p.rec.msg) // outside the lock: it is the test's code
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
	e.mu.Unlock()
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
		e.requestFlush()
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
	done := make(chan int, 1)
	select {
	case e.req <- memReq{n: n, err: err, done: done}:
		return <-done
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
func (e *memEngine) History() []fakeengine.Sent {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]fakeengine.Sent, len(e.history))
	for i, s := range e.history {
		out[i] = *s
	}
	return out
}

// Clear is fakeengine.Engine's.
func (e *memEngine) Clear() {
	e.mu.Lock()
	e.history = nil
	e.mu.Unlock()
}

func (e *memEngine) purge() error {
	select {
	case e.req <- memReq{n: -1, purge: true}:
	case <-e.done:
	}
	return nil
}

func (e *memEngine) purgeQueue() error { return e.purge() }

func (e *memEngine) fatalError() (kafka.Error, bool) { return kafka.Error{}, false }

// flush waits until no message is outstanding, up to timeoutMs, as rd_kafka_flush waits for the broker.
func (e *memEngine) flush(timeoutMs int) bool {
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

var errMemNoTxn = errors.New("aioproducer: the fake engine of aioproducertest has no transactions")

func (e *memEngine) txn(int, int) error { return errMemNoTxn }

func (e *memEngine) sendOffsets([]kafka.TopicPartition, *kafka.ConsumerGroupMetadata, int) error {
	return errMemNoTxn
}

func (e *memEngine) setSaslCredentials(string, string) error { return nil }

func (e *memEngine) close() {
	close(e.stop)
	<-e.done
}

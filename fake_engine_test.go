package aioproducer

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"
)

// fakeEngine is an engine without librdkafka, for tests of the producer's own logic. It records every
// enqueue call; accepted messages are reported delivered (offsets counting per topic from 0) when the
// test says so, or at once in auto mode. Like a real engine it reports from one goroutine of its own.
type fakeEngine struct {
	sink       reportSink
	flushCalls atomic.Int32

	mu       sync.Mutex
	calls    [][]*Message             // the messages of every enqueue call, in call order
	pending  []*record                // accepted, not yet reported
	offsets  map[string]int64         // next offset per topic
	refuse   map[*Message]kafka.Error // messages enqueue refuses with an error
	capacity int                      // >0: queue full when this many are pending
	gate     chan struct{}            // non-nil: enqueue waits until it is closed
	purged   int
	txns     []fakeTxnCall // transactional calls, in order

	auto bool
	req  chan fakeReq
	stop chan struct{}
	done chan struct{}
}

type fakeReq struct {
	n     int // reports to send; -1 for all
	err   error
	fatal *kafka.Error
	done  chan struct{}
}

func newFakeEngine(auto bool) *fakeEngine {
	return &fakeEngine{
		offsets: map[string]int64{}, refuse: map[*Message]kafka.Error{},
		auto: auto, req: make(chan fakeReq), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// newFakeProducer returns a producer over fe with opts, closed at cleanup.
func newFakeProducer(t testing.TB, fe *fakeEngine, opts ...Option) *Producer {
	t.Helper()
	cfg := defaultConfig()
	cfg.logger = quietLogger
	for _, o := range opts {
		o(&cfg)
	}
	require.NoError(t, cfg.validate())
	p, err := newProducer(cfg, func(s reportSink) (engine, error) {
		fe.sink = s
		return fe, nil
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close(ctxTimeout(t, 10*time.Second)) })
	return p
}

func (f *fakeEngine) start() { go f.run() }

func (f *fakeEngine) fatalError() (kafka.Error, bool) { return kafka.Error{}, false }

func (f *fakeEngine) enqueue(recs []*record) (int, error) {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	msgs := make([]*Message, 0, len(recs))
	n := 0
	var err error
	for _, r := range recs {
		if f.capacity > 0 && len(f.pending) >= f.capacity {
			err = errQueueFull
			break
		}
		if ke, ok := f.refuse[r.msg]; ok {
			err = ke
			break
		}
		msgs = append(msgs, r.msg)
		f.pending = append(f.pending, r)
		n++
	}
	if len(msgs) > 0 {
		f.calls = append(f.calls, msgs)
	}
	if f.auto && n > 0 {
		go func() { // a kick; the report goroutine sends
			select {
			case f.req <- fakeReq{n: -1}:
			case <-f.stop:
			}
		}()
	}
	return n, err
}

func (f *fakeEngine) purge() error {
	go func() {
		select {
		case f.req <- fakeReq{n: -1, err: kafka.NewError(kafka.ErrPurgeQueue, "purged", false)}:
		case <-f.stop:
		}
	}()
	f.mu.Lock()
	f.purged++
	f.mu.Unlock()
	return nil
}

// fakeTxnCall is a transactional call the fake engine took, and how many messages had been enqueued
// before it.
type fakeTxnCall struct {
	op       int
	enqueued int
}

func (f *fakeEngine) setSaslCredentials(string, string) error { return nil }

func (f *fakeEngine) purgeQueue() error { return f.purge() }

func (f *fakeEngine) txn(op, _ int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += len(c)
	}
	f.txns = append(f.txns, fakeTxnCall{op: op, enqueued: n})
	return nil
}

func (f *fakeEngine) txnCalls() []fakeTxnCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeTxnCall(nil), f.txns...)
}

func (f *fakeEngine) sendOffsets([]kafka.TopicPartition, *kafka.ConsumerGroupMetadata, int) error {
	return nil
}

func (f *fakeEngine) flush(int) bool {
	f.flushCalls.Add(1)
	return true
}

func (f *fakeEngine) close() {
	close(f.stop)
	<-f.done
}

func (f *fakeEngine) run() {
	defer close(f.done)
	for {
		select {
		case r := <-f.req:
			if r.fatal != nil {
				f.sink.onFatal(*r.fatal)
			} else {
				f.report(r.n, r.err)
			}
			if r.done != nil {
				close(r.done)
			}
		case <-f.stop:
			return
		}
	}
}

func (f *fakeEngine) report(n int, err error) {
	f.mu.Lock()
	if n < 0 || n > len(f.pending) {
		n = len(f.pending)
	}
	recs := append([]*record(nil), f.pending[:n]...)
	f.pending = f.pending[n:]
	rs := make([]report, 0, n)
	for _, r := range recs {
		rep := report{rec: r, partition: 0, err: err}
		if err == nil {
			rep.offset = f.offsets[r.msg.Topic]
			f.offsets[r.msg.Topic]++
		}
		rs = append(rs, rep)
	}
	f.mu.Unlock()
	if len(rs) > 0 {
		f.sink.onReports(rs)
	}
}

// deliver reports the n oldest pending messages delivered (-1: all) and waits until the sink has them.
func (f *fakeEngine) deliver(n int) {
	done := make(chan struct{})
	f.req <- fakeReq{n: n, done: done}
	<-done
}

// raiseFatal reports a fatal error.
func (f *fakeEngine) raiseFatal(err kafka.Error) {
	done := make(chan struct{})
	f.req <- fakeReq{fatal: &err, done: done}
	<-done
}

// callSizes returns the length of every enqueue call so far.
func (f *fakeEngine) callSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]int, len(f.calls))
	for i, c := range f.calls {
		out[i] = len(c)
	}
	return out
}

// enqueued returns every message accepted so far, in enqueue order.
func (f *fakeEngine) enqueued() []*Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*Message
	for _, c := range f.calls {
		out = append(out, c...)
	}
	return out
}

func (f *fakeEngine) pendingCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

func (f *fakeEngine) setGate(g chan struct{}) {
	f.mu.Lock()
	f.gate = g
	f.mu.Unlock()
}

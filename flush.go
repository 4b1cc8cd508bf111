package aioproducer

import (
	"context"
	"sync"
	"sync/atomic"
)

// flushTracker lets Flush wait for exactly the messages accepted before it was called. Accepted
// messages count towards the current epoch; Flush seals it, opens the next, and waits until every
// sealed epoch has no message left without an outcome.
//
// add takes no lock: it loads the current epoch and counts on it. An add racing a seal may count on the
// epoch just sealed, even after it was found done; that message was not accepted before the Flush, so
// the Flush need not wait for it, and its finish on an epoch already closed does nothing. An add that
// returned before seal began is always seen by it.
type flushTracker struct {
	cur    atomic.Pointer[epoch]
	mu     sync.Mutex // serialises seal
	sealed []*epoch   // sealed epochs not yet done, oldest first; guarded by mu
}

type epoch struct {
	pending atomic.Int64
	isSeal  atomic.Bool
	once    sync.Once
	done    chan struct{}
}

func newEpoch() *epoch { return &epoch{done: make(chan struct{})} }

func newFlushTracker() *flushTracker {
	t := &flushTracker{}
	t.cur.Store(newEpoch())
	return t
}

// add counts n accepted messages towards the current epoch and returns it.
func (t *flushTracker) add(n int) *epoch {
	e := t.cur.Load()
	e.pending.Add(int64(n))
	return e
}

// finishN counts n of e's messages as having their outcomes. A nil e (no messages) is a no-op.
func (e *epoch) finishN(n int) {
	if e == nil || n == 0 {
		return
	}
	if e.pending.Add(-int64(n)) == 0 && e.isSeal.Load() {
		e.once.Do(func() { close(e.done) })
	}
}

// seal closes the current epoch to new messages and returns the done channels of every epoch not yet
// done, which together cover every message accepted before the call.
func (t *flushTracker) seal() []chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.cur.Swap(newEpoch())
	e.isSeal.Store(true) // before looking at pending: a finish that brings it to 0 then sees the seal
	if e.pending.Load() == 0 {
		e.once.Do(func() { close(e.done) })
	}
	live := t.sealed[:0]
	for _, s := range append(t.sealed, e) {
		select {
		case <-s.done:
		default:
			live = append(live, s)
		}
	}
	t.sealed = live
	out := make([]chan struct{}, len(live))
	for i, s := range live {
		out[i] = s.done
	}
	return out
}

// wait seals the current epoch and waits until every message accepted before has its outcome, or ctx
// ends.
func (t *flushTracker) wait(ctx context.Context) error {
	for _, done := range t.seal() {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// flushAndWait is Flush's work: it keeps librdkafka flushing (fl) while it waits for the outcomes of
// every message accepted before it (flushes), or for ctx to end.
func flushAndWait(ctx context.Context, flushes *flushTracker, fl *flusher) error {
	fl.begin()
	defer fl.end()
	return flushes.wait(ctx)
}

// flushSliceMs is how long one rd_kafka_flush call of the flusher lasts. It returns sooner when
// librdkafka has nothing left; it bounds how long Close waits for the flusher to stop, and how long
// librdkafka goes on ignoring linger.ms after the last Flush returned.
const flushSliceMs = 20

// flusher makes librdkafka send what it holds at once while a Flush or Close waits, as rd_kafka_flush
// does for the raw client: librdkafka then ignores linger.ms, which could otherwise keep a Flush waiting
// for up to its value (the Java producer, confluent-kafka-go and the Python AIOProducer all send at once
// on flush and close). It is one goroutine, owned by the Producer, that calls engine.flush in slices
// while anyone waits and librdkafka holds messages, and sleeps otherwise.
type flusher struct {
	eng     engine
	waiters atomic.Int32
	wake    chan struct{} // capacity 1: a waiter came or went, or the executor handed librdkafka more
	stop    chan struct{}
	done    chan struct{}
}

func newFlusher(eng engine) *flusher {
	return &flusher{eng: eng, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (f *flusher) start() { go f.run() }

// begin marks a waiter: librdkafka flushes until the matching end.
func (f *flusher) begin() {
	f.waiters.Add(1)
	f.kick()
}

func (f *flusher) end() { f.waiters.Add(-1) }

// enqueued is told by the executor that librdkafka was handed messages.
func (f *flusher) enqueued() {
	if f.waiters.Load() > 0 {
		f.kick()
	}
}

func (f *flusher) kick() { wakeUp(f.wake) }

// close stops the flusher and waits for its rd_kafka_flush call in progress, which ends within
// flushSliceMs; after it, the engine may be closed.
func (f *flusher) close() {
	close(f.stop)
	<-f.done
}

func (f *flusher) run() {
	defer close(f.done)
	for {
		select {
		case <-f.wake:
		case <-f.stop:
			return
		}
		for f.waiters.Load() > 0 {
			select {
			case <-f.stop:
				return
			default:
			}
			if f.eng.flush(flushSliceMs) {
				break // librdkafka holds nothing: sleep until it is handed more, or a new waiter comes
			}
		}
	}
}

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

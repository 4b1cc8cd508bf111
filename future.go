package aioproducer

import (
	"context"
	"sync"
	"sync/atomic"
)

// closedChan is the Done channel of every future whose outcome was known before anyone asked for it.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Future is the outcome of one produced message: a Delivery or an error. It is safe for concurrent use.
// A Future has exactly one outcome; once known it never changes.
type Future struct {
	msg  *Message
	done atomic.Bool // set after d and err are written

	mu sync.Mutex
	ch chan struct{} // made only if someone waits before the outcome is known

	d   Delivery
	err error
}

// Message returns the message this future belongs to.
func (f *Future) Message() *Message { return f.msg }

// Done returns a channel that is closed when the outcome is known.
func (f *Future) Done() <-chan struct{} {
	if f.done.Load() {
		return closedChan
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done.Load() {
		return closedChan
	}
	if f.ch == nil {
		f.ch = make(chan struct{})
	}
	return f.ch
}

// Wait returns the delivery, or the error the message failed with, once known. If ctx ends first it
// returns ctx's error: that stops the wait only, the message itself stays in flight and the future still
// gets its outcome.
func (f *Future) Wait(ctx context.Context) (Delivery, error) {
	if f.done.Load() {
		return f.d, f.err
	}
	select {
	case <-f.Done():
		return f.d, f.err
	case <-ctx.Done():
		return Delivery{}, ctx.Err()
	}
}

// resolve sets the outcome. It is called exactly once, by the CallbackManager.
func (f *Future) resolve(d Delivery, err error) {
	f.d, f.err = d, err
	f.mu.Lock()
	f.done.Store(true)
	ch := f.ch
	f.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

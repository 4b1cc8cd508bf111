package aioproducer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// closedChan is the Done channel of every future whose outcome was known before anyone asked for it.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// The states of a Future.
const (
	futurePending uint32 = iota // no outcome, no Done channel
	futureWaited                // no outcome; ch is made and someone may wait on it
	futureDone                  // the outcome is written
)

// Future is the outcome of one produced message: a Delivery or an error. It is safe for concurrent use.
// A Future has exactly one outcome; once known it never changes.
//
// Produce allocates Futures in blocks of 16: a Future that stays reachable keeps the others of
// its block (and the Messages they name) reachable too. Drop Futures once their outcome is read.
type Future struct {
	msg       *Message
	state     atomic.Uint32
	partition int32 // of the outcome; here, it fills state's padding

	mu sync.Mutex    // serialises the making of ch, among waiters only: resolve never takes it
	ch chan struct{} // made only if someone waits before the outcome is known

	// The rest of the outcome, kept compact (the topic is msg's): a Future is the one allocation per
	// message.
	offset int64
	ts     time.Time
	err    error
}

// delivery is the Delivery the outcome describes.
func (f *Future) delivery() Delivery {
	if f.err != nil {
		return Delivery{}
	}
	var topic string
	if f.msg != nil {
		topic = f.msg.Topic
	}
	return Delivery{Topic: topic, Partition: f.partition, Offset: f.offset, Timestamp: f.ts}
}

// Message returns the message this future belongs to.
func (f *Future) Message() *Message { return f.msg }

// Done returns a channel that is closed when the outcome is known.
func (f *Future) Done() <-chan struct{} {
	if ch := f.doneChan(); ch != nil {
		return ch
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch := f.doneChan(); ch != nil { // another waiter made it meanwhile, or the outcome came
		return ch
	}
	f.ch = make(chan struct{})
	if !f.state.CompareAndSwap(futurePending, futureWaited) {
		return closedChan // resolved meanwhile, before it could see ch
	}
	return f.ch
}

// IsDone reports whether the outcome is known, without waiting or allocating (Java's
// Future.isDone). A loop that holds many Futures can collect the finished ones in whatever order they
// finish: messages for different partitions are delivered in no particular order, and waiting for the
// oldest first holds the loop back behind the slowest partition.
func (f *Future) IsDone() bool { return f.state.Load() == futureDone }

// doneChan is Done's channel when the state already decides it, or nil while the future is pending.
func (f *Future) doneChan() chan struct{} {
	switch f.state.Load() {
	case futureDone:
		return closedChan
	case futureWaited:
		return f.ch
	}
	return nil
}

// Wait returns the delivery, or the error the message failed with, once known. If ctx ends first it
// returns ctx's error: that stops the wait only, the message itself stays in flight and the future still
// gets its outcome.
func (f *Future) Wait(ctx context.Context) (Delivery, error) {
	if f.state.Load() == futureDone {
		return f.delivery(), f.err
	}
	select {
	case <-f.Done():
		return f.delivery(), f.err
	case <-ctx.Done():
		return Delivery{}, ctx.Err()
	}
}

// resolve sets the outcome. It is called exactly once, by the callbackManager.
// d.Topic is not kept: it is the message's.
func (f *Future) resolve(d Delivery, err error) {
	f.partition, f.offset, f.ts, f.err = d.Partition, d.Offset, d.Timestamp, err
	if f.state.Swap(futureDone) == futureWaited {
		close(f.ch)
	}
}

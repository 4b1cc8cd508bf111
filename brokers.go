package aioproducer

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// brokerState follows what librdkafka's error events say about the brokers: whether all of them are
// down, and the last connection error. Close uses it to warn, once, that it waits for messages no broker
// can take; a message that times out meanwhile says the brokers were unreachable.
type brokerState struct {
	down atomic.Bool // librdkafka said all brokers are down, and no delivery has succeeded since

	mu     sync.Mutex
	last   kafka.Error   // the last connection error, guarded by mu
	downCh chan struct{} // closed when down becomes true; guarded by mu
}

func newBrokerState() *brokerState { return &brokerState{downCh: make(chan struct{})} }

// connectionErrors are the error events that say a broker cannot be reached or talked to.
var connectionErrors = map[kafka.ErrorCode]bool{
	kafka.ErrTransport: true, kafka.ErrAllBrokersDown: true, kafka.ErrResolve: true,
	kafka.ErrAuthentication: true, kafka.ErrSsl: true, kafka.ErrTimedOut: true,
}

// onError takes a librdkafka error event.
func (b *brokerState) onError(err kafka.Error) {
	if !connectionErrors[err.Code()] {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err.Code() != kafka.ErrAllBrokersDown || b.last.Code() == kafka.ErrNoError {
		b.last = err // ALL_BROKERS_DOWN says less than the connection error before it
	}
	if err.Code() == kafka.ErrAllBrokersDown && !b.down.Load() {
		b.down.Store(true)
		close(b.downCh)
	}
}

// delivered is told that a message was delivered: some broker is up.
func (b *brokerState) delivered() {
	if !b.down.Load() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down.Load() {
		b.down.Store(false)
		b.downCh = make(chan struct{})
	}
}

// wentDown returns a channel that is closed while all brokers are down.
func (b *brokerState) wentDown() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.downCh
}

// unreachable returns an error that says the brokers are down and why, or nil if they are not.
func (b *brokerState) unreachable() error {
	if !b.down.Load() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return &brokersDownError{last: b.last}
}

// brokersDownError is the cause attached to a message that timed out while no broker was reachable.
type brokersDownError struct{ last kafka.Error }

func (e *brokersDownError) Error() string {
	return fmt.Sprintf("no broker was reachable; last connection error: %v", e.last)
}

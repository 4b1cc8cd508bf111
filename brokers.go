package aioproducer

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// brokerState follows what librdkafka's error events say about the brokers: whether all of them are
// down, and the last connection error. Close uses it to warn, once, that it waits for messages no broker
// can take; a message that times out meanwhile says the brokers were unreachable.
type brokerState struct {
	down atomic.Bool // librdkafka said all brokers are down, and no delivery has succeeded since
	// auth is the authentication (or TLS verification) failure librdkafka reported, and since when,
	// until a delivery succeeds or the credentials change.
	auth atomic.Pointer[authFailure]

	mu        sync.Mutex
	last      kafka.Error   // the last connection error, guarded by mu
	downSince time.Time     // when down last became true; guarded by mu
	downCh    chan struct{} // closed when down becomes true; guarded by mu
}

func newBrokerState() *brokerState { return &brokerState{downCh: make(chan struct{})} }

// connectionErrors are the error events that say a broker cannot be reached or talked to.
var connectionErrors = map[kafka.ErrorCode]bool{
	kafka.ErrTransport: true, kafka.ErrAllBrokersDown: true, kafka.ErrResolve: true,
	kafka.ErrAuthentication: true, kafka.ErrSsl: true, kafka.ErrTimedOut: true,
}

// isAuthFailure reports whether err says that a broker refused the client's credentials, or that its
// TLS certificate could not be verified: errors that retrying does not cure.
func isAuthFailure(err kafka.Error) bool {
	switch err.Code() {
	case kafka.ErrAuthentication:
		return true
	case kafka.ErrSsl:
		s := strings.ToLower(err.Error())
		return strings.Contains(s, "certificate verify failed") || strings.Contains(s, "handshake failed")
	}
	return false
}

type authFailure struct {
	err   kafka.Error
	since time.Time
}

// onError takes a librdkafka error event. It reports whether it began an authentication failure.
func (b *brokerState) onError(err kafka.Error) (authBegan bool) {
	if isAuthFailure(err) {
		since := time.Now()
		if old := b.auth.Load(); old != nil {
			since = old.since
		}
		authBegan = b.auth.Swap(&authFailure{err: err, since: since}) == nil
	}
	if !connectionErrors[err.Code()] {
		return authBegan
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err.Code() != kafka.ErrAllBrokersDown || b.last.Code() == kafka.ErrNoError {
		b.last = err // ALL_BROKERS_DOWN says less than the connection error before it
	}
	if err.Code() == kafka.ErrAllBrokersDown && !b.down.Load() {
		b.downSince = time.Now()
		b.down.Store(true)
		close(b.downCh)
	}
	return authBegan
}

// authFailed returns the current authentication failure as an error, or nil.
func (b *brokerState) authFailed() error {
	if a := b.auth.Load(); a != nil {
		return &authError{err: a.err}
	}
	return nil
}

// clearAuth forgets the authentication failure: new credentials, or a delivery, say it may be over.
func (b *brokerState) clearAuth() { b.auth.Store(nil) }

// authError is the cause attached to messages failed while authentication fails.
type authError struct{ err kafka.Error }

func (e *authError) Error() string {
	return fmt.Sprintf("authentication failed (not retriable: fix the credentials or certificates): %v", e.err)
}

func (e *authError) Unwrap() []error { return []error{ErrAuthentication, e.err} }

// delivered is told that a message was delivered: some broker is up, and took the credentials.
func (b *brokerState) delivered() {
	if b.auth.Load() != nil {
		b.clearAuth()
	}
	b.reached()
}

// reached is told that a broker answered (a delivery, or a metadata request of brokerWatch): they
// are not all down.
func (b *brokerState) reached() {
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
	if !b.down.Load() {
		return nil
	}
	return &brokersDownError{last: b.last, since: b.downSince}
}

// brokersDownError says that no broker is reachable, since when and why: Health's error, and the cause
// attached to a message that timed out meanwhile.
type brokersDownError struct {
	last  kafka.Error
	since time.Time
}

func (e *brokersDownError) Error() string {
	return fmt.Sprintf("no broker was reachable since %s (for %v); last connection error: %v",
		e.since.Format(time.RFC3339), time.Since(e.since).Round(time.Millisecond), e.last)
}

// Unwrap returns ErrBrokersDown and the last connection error, so that errors.As finds its
// kafka.Error too.
func (e *brokersDownError) Unwrap() []error { return []error{ErrBrokersDown, e.last} }

// authGrace is how long an authentication failure must last, with no delivery, before brokerWatch fails
// messages for it: a re-authentication that fails once while a token is refreshed, and succeeds on
// the next connection, must cost no message.
const authGrace = time.Second

// brokerWatch follows the brokers for the producer, on one goroutine it owns, asleep while they work.
//
// It makes messages fail promptly while authentication fails: librdkafka keeps them queued and retries
// the connection until message.timeout.ms, and says "authentication failed" only twice, then just "all
// brokers are down" at each failed reconnection. Once a failure has lasted authGrace, the watch purges
// librdkafka's queue (never what is in flight), and again at each of those later events, so each
// message fails with ErrAuthentication within librdkafka's reconnection backoff
// (reconnect.backoff.max.ms, 10 s by default), until a delivery succeeds or the credentials change.
//
// While all brokers are down it asks for metadata every pingEvery, so that Health says they are back
// as soon as one answers, even when no message is sent to show it (librdkafka says when the brokers go
// down, never when they come back).
type brokerWatch struct {
	brokers *brokerState
	eng     engine // purgeQueue, ping
	log     *slog.Logger
	kick    chan struct{} // capacity 1: an authentication failure began, or librdkafka failed to reconnect during one
	stop    chan struct{}
	done    chan struct{}
}

// pingEvery is how often brokerWatch asks for metadata while all brokers are down; pingWait is how long
// each request may take, and so how long Close may wait for one in flight after its deadline (a
// broker that is back answers a metadata request in milliseconds; librdkafka keeps connecting between
// requests).
const (
	pingEvery = time.Second
	pingWait  = 250 * time.Millisecond
)

func newBrokerWatch(b *brokerState, eng engine, log *slog.Logger) *brokerWatch {
	return &brokerWatch{brokers: b, eng: eng, log: log, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (w *brokerWatch) start() { go w.run() }

// poke is told of an error event during an authentication failure.
func (w *brokerWatch) poke() { wakeUp(w.kick) }

// close stops the watch and waits for it.
func (w *brokerWatch) close() {
	close(w.stop)
	<-w.done
}

func (w *brokerWatch) run() {
	defer close(w.done)
	var graceC <-chan time.Time
	grace := time.NewTimer(authGrace)
	grace.Stop()
	defer grace.Stop()
	ping := time.NewTicker(pingEvery)
	ping.Stop()
	defer ping.Stop()
	var pingC <-chan time.Time
	for {
		var down <-chan struct{}
		if pingC == nil {
			down = w.brokers.wentDown()
		}
		select {
		case <-w.kick:
			a := w.brokers.auth.Load()
			if a == nil {
				continue
			}
			if wait := authGrace - time.Since(a.since); wait > 0 {
				if graceC == nil {
					grace.Reset(wait)
					graceC = grace.C
				}
				continue
			}
			w.purgeQueue()
		case <-graceC:
			graceC = nil
			if w.brokers.auth.Load() != nil {
				w.purgeQueue()
			}
		case <-down:
			ping.Reset(pingEvery)
			pingC = ping.C
		case <-pingC:
			select {
			case <-w.stop: // a tick that came while stop did: Close waits for no ping
				return
			default:
			}
			if !w.brokers.down.Load() {
				ping.Stop()
				pingC = nil
				continue
			}
			if w.eng.ping(int(pingWait.Milliseconds())) == nil {
				w.brokers.reached()
			}
		case <-w.stop:
			return
		}
	}
}

func (w *brokerWatch) purgeQueue() {
	if err := w.eng.purgeQueue(); err != nil {
		w.log.Error("aioproducer: purge failed", "error", err)
	}
}

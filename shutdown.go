package aioproducer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/seed-f937cf20/aioproducer/internal/limiter"
)

// closer is the producer's shutdown path: it stops the intake, hands over or fails everything
// accepted, and releases the producer's goroutines and librdkafka, once, whoever calls Close and
// however often.
type closer struct {
	state     *producerState
	limit     *limiter.Limiter
	disp      *dispatcher
	exec      *executor
	eng       engine
	flushes   *flushTracker
	flusher   *flusher
	auth      *brokerWatch
	callbacks *callbackManager
	txn       *txnManager // nil unless transactional
	brokers   *brokerState
	log       *slog.Logger
	timeout   time.Duration // message.timeout.ms, for the warning while every broker is down

	once sync.Once
	done chan struct{}
	res  error

	// engMu is held shared by a call that uses the engine from the application's goroutine (Purge,
	// SetSaslCredentials), and exclusively to release it: released is then set.
	engMu    sync.RWMutex
	released bool
}

// withEngine runs fn unless the engine has been released, and reports whether it ran it.
func (c *closer) withEngine(fn func()) bool {
	c.engMu.RLock()
	defer c.engMu.RUnlock()
	if c.released {
		return false
	}
	fn()
	return true
}

// close is Producer.Close.
func (c *closer) close(ctx context.Context) error {
	first := false
	c.once.Do(func() { first = true })
	inCallback := c.callbacks.inCallback()
	if !first {
		select {
		case <-c.done:
			return c.res
		default:
		}
		if inCallback {
			return nil
		}
		select {
		case <-c.done:
			return c.res
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Whoever runs the rest, intake stops now: a Produce that returns after Close has returned fails
	// with ErrClosed, also when Close was called from a callback.
	c.stopIntake()
	if inCallback {
		// Shut down on a goroutine of its own: the shutdown waits for this callback to return. It
		// ends once every outcome is handed over; done tells when.
		bg, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok {
			bg, cancel = context.WithDeadline(bg, dl)
		}
		go func() {
			defer cancel()
			c.res = c.shutdown(bg)
			close(c.done)
		}()
		return nil
	}
	c.res = c.shutdown(ctx)
	close(c.done)
	return c.res
}

// stopIntake marks the producer closed under every shard's lock, so that every record handed over
// before is in a shard the workers will empty, and none is handed over after; and wakes the Produce
// calls waiting for room, which fail with ErrClosed.
func (c *closer) stopIntake() {
	c.disp.lockAll()
	c.state.closed.Store(true)
	c.disp.unlockAll()
	c.limit.Close(ErrClosed)
}

// shutdown waits for every outcome (or, once ctx ends, fails what was not sent and purges what
// librdkafka holds), then stops the producer's goroutines and releases librdkafka.
func (c *closer) shutdown(ctx context.Context) error {
	if c.txn != nil {
		c.txn.abortOpen(ctx)
	}
	c.flusher.begin()
	var res error
	if err := c.awaitOutcomes(ctx); err != nil {
		abortErr := fmt.Errorf("%w: message not sent: Close's context ended first: %w", ErrClosed, err)
		c.state.closeErr.Store(&abortErr)
		c.exec.abort(abortErr)
		if perr := c.eng.purge(); perr != nil {
			c.log.Error("aioproducer: purge failed", "error", perr)
		}
		// Every message is now failing or failed; purged ones report promptly.
		_ = c.flushes.wait(context.Background())
		res = fmt.Errorf("aioproducer: close: %w", err)
	}
	c.flusher.end()
	c.disp.wait()
	c.flusher.close()
	c.auth.close()
	c.engMu.Lock()
	c.released = true
	c.engMu.Unlock()
	c.eng.close()
	c.callbacks.close()
	return res
}

// awaitOutcomes waits, for Close, until every accepted message has its outcome, or ctx ends. If every
// broker is down meanwhile, it logs once that the wait lasts until the messages time out.
func (c *closer) awaitOutcomes(ctx context.Context) error {
	warned := false
	for _, done := range c.flushes.seal() {
		for waiting := true; waiting; {
			var down <-chan struct{}
			if !warned {
				down = c.brokers.wentDown()
			}
			select {
			case <-done:
				waiting = false
			case <-ctx.Done():
				return ctx.Err()
			case <-down:
				warned = true
				select {
				case <-done: // the outcomes came at the same time: nothing to warn about
					waiting = false
				default:
					c.warnBrokersDown(ctx)
				}
			}
		}
	}
	return nil
}

// warnBrokersDown logs that Close waits for messages no broker can take, and for how long.
func (c *closer) warnBrokersDown(ctx context.Context) {
	cause := c.brokers.unreachable()
	if cause == nil {
		return
	}
	held, _ := c.limit.Used()
	wait := fmt.Sprintf("until they time out, up to message.timeout.ms (%v) after each was produced", c.timeout)
	if dl, ok := ctx.Deadline(); ok {
		wait += fmt.Sprintf(", or until Close's deadline in %v", time.Until(dl).Round(time.Millisecond))
	} else {
		wait += "; Close's context has no deadline"
	}
	c.log.Warn("aioproducer: Close is waiting for messages but "+cause.Error()+"; it waits "+wait,
		"messages", held)
}

// Package limiter is a two-dimensional counting semaphore: it bounds a count and a byte total at once,
// grants waiters in FIFO order, and lets a context end the wait.
package limiter

import (
	"context"
	"sync"
)

// Limiter bounds the number of items and their total size. The zero value is not usable; use New.
type Limiter struct {
	maxN, maxB int64

	mu      sync.Mutex
	n, b    int64
	waiters []*waiter // FIFO; a newcomer never overtakes a waiter
	closed  error
}

type waiter struct {
	n, b  int64
	ready chan error // buffered(1): nil when granted, the close error when closed
}

// New returns a Limiter for at most maxN items and maxB bytes.
func New(maxN, maxB int64) *Limiter {
	return &Limiter{maxN: maxN, maxB: maxB}
}

// Fits reports whether n items of b bytes could ever be acquired at once.
func (l *Limiter) Fits(n, b int64) bool { return n <= l.maxN && b <= l.maxB }

func (l *Limiter) fitsNow(n, b int64) bool {
	return l.n+n <= l.maxN && l.b+b <= l.maxB
}

// TryAcquire takes n items of b bytes if they fit now and no one waits; it never blocks. It returns the
// close error once Close was called.
func (l *Limiter) TryAcquire(n, b int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed != nil {
		return false, l.closed
	}
	if len(l.waiters) == 0 && l.fitsNow(n, b) {
		l.n += n
		l.b += b
		return true, nil
	}
	return false, nil
}

// Acquire takes n items of b bytes, waiting in FIFO order until they fit, ctx ends (its error is
// returned) or Close is called (its error is returned). The caller must check Fits first: a request that
// can never fit waits until ctx ends.
func (l *Limiter) Acquire(ctx context.Context, n, b int64) error {
	l.mu.Lock()
	if l.closed != nil {
		l.mu.Unlock()
		return l.closed
	}
	if len(l.waiters) == 0 && l.fitsNow(n, b) {
		l.n += n
		l.b += b
		l.mu.Unlock()
		return nil
	}
	w := &waiter{n: n, b: b, ready: make(chan error, 1)}
	l.waiters = append(l.waiters, w)
	l.mu.Unlock()

	select {
	case err := <-w.ready:
		return err
	case <-ctx.Done():
		l.mu.Lock()
		if i := l.indexOf(w); i >= 0 {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			// Our leaving may let those behind us in.
			l.grantLocked()
			l.mu.Unlock()
			return ctx.Err()
		}
		l.mu.Unlock()
		// Granted (or closed) while ctx ended: hand a grant back.
		if err := <-w.ready; err != nil {
			return err
		}
		l.Release(n, b)
		return ctx.Err()
	}
}

func (l *Limiter) indexOf(w *waiter) int {
	for i, x := range l.waiters {
		if x == w {
			return i
		}
	}
	return -1
}

// Release returns n items of b bytes and wakes the waiters that now fit, in order.
func (l *Limiter) Release(n, b int64) {
	l.mu.Lock()
	l.n -= n
	l.b -= b
	if l.n < 0 || l.b < 0 {
		l.mu.Unlock()
		panic("limiter: released more than acquired")
	}
	l.grantLocked()
	l.mu.Unlock()
}

func (l *Limiter) grantLocked() {
	i := 0
	for ; i < len(l.waiters); i++ {
		w := l.waiters[i]
		if !l.fitsNow(w.n, w.b) {
			break
		}
		l.n += w.n
		l.b += w.b
		w.ready <- nil
	}
	if i > 0 {
		clear(l.waiters[:i])
		l.waiters = l.waiters[i:]
	}
}

// Close fails every waiter and every later Acquire or TryAcquire with err. Release still works.
func (l *Limiter) Close(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed != nil {
		return
	}
	l.closed = err
	for _, w := range l.waiters {
		w.ready <- err
	}
	l.waiters = nil
}

// Used returns the items and bytes held now.
func (l *Limiter) Used() (n, b int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.b
}

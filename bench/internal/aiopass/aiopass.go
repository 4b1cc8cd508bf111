// Package aiopass holds the producing loops that bench and bench/realab both measure, so that the two
// tools time the same code.
package aiopass

import (
	"context"
	"sync"

	"github.com/seed-f937cf20/aioproducer"
)

// ProduceFunc produces msgs with ProduceFunc from the calling goroutine, with one callback shared by
// all (no Future, nothing allocated per message), and waits for every callback. It returns the first
// error of a call or of a callback.
func ProduceFunc(ctx context.Context, p *aioproducer.Producer, msgs []*aioproducer.Message) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error // the first callback error; a mutex, not an atomic pointer, so err does not escape
	done := func(_ aioproducer.Delivery, err error) {
		if err != nil {
			mu.Lock()
			if failed == nil {
				failed = err
			}
			mu.Unlock()
		}
		wg.Done()
	}
	wg.Add(len(msgs))
	for i, m := range msgs {
		if err := p.ProduceFunc(ctx, m, done); err != nil {
			wg.Add(i - len(msgs)) // the callbacks that will not come
			wg.Wait()
			return err
		}
	}
	wg.Wait()
	return failed
}

// AwaitOld waits for futs[i] and drops it, if i is at least lo (and futs[i] is still held): what a
// producing loop that holds a window of Futures calls for the one that leaves the window.
func AwaitOld(ctx context.Context, futs []*aioproducer.Future, i, lo int) error {
	if i < lo || futs[i] == nil {
		return nil
	}
	_, err := futs[i].Wait(ctx)
	futs[i] = nil
	return err
}

// Window holds the Futures of one producing loop, at most size of them, and collects them in the order
// they finish: when it is full it drops every Future whose outcome is known, and waits only if fewer
// than a sixteenth of them are (for the oldest still pending, then looks again). Messages for different
// partitions are delivered in no particular order, so a loop that waits for its oldest Future first is
// held back behind the slowest partition while the rest of its window is delivered: over 1,000 topics
// that halved aio's throughput on the mock cluster. Raw confluent-kafka-go's loop is bounded the same
// way as this one, by librdkafka's queue, in whatever order deliveries come.
type Window struct {
	futs []*aioproducer.Future
	size int
}

// NewWindow returns a Window of size Futures at most (at least 1).
func NewWindow(size int) *Window {
	size = max(size, 1)
	return &Window{futs: make([]*aioproducer.Future, 0, size), size: size}
}

// Add holds f, first making room if the window is full. It returns the first error among the
// outcomes it collects.
func (w *Window) Add(ctx context.Context, f *aioproducer.Future) error {
	if len(w.futs) == w.size {
		if err := w.makeRoom(ctx); err != nil {
			return err
		}
	}
	w.futs = append(w.futs, f)
	return nil
}

// makeRoom drops the finished Futures until at least a sixteenth of the window is free, waiting for
// the oldest pending one while it is not.
func (w *Window) makeRoom(ctx context.Context) error {
	for {
		if err := w.collect(ctx); err != nil {
			return err
		}
		if w.size-len(w.futs) >= max(1, w.size/16) {
			return nil
		}
		if _, err := w.futs[0].Wait(ctx); err != nil {
			return err
		}
	}
}

// collect drops the finished Futures, keeping the order of the rest.
func (w *Window) collect(ctx context.Context) error {
	kept := w.futs[:0]
	var first error
	for _, f := range w.futs {
		if !f.IsDone() {
			kept = append(kept, f)
			continue
		}
		if _, err := f.Wait(ctx); err != nil && first == nil {
			first = err
		}
	}
	clear(w.futs[len(kept):])
	w.futs = kept
	return first
}

// Wait waits for every Future held and drops them.
func (w *Window) Wait(ctx context.Context) error {
	for _, f := range w.futs {
		if _, err := f.Wait(ctx); err != nil {
			return err
		}
	}
	clear(w.futs)
	w.futs = w.futs[:0]
	return nil
}

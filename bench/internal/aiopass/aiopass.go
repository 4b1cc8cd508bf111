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

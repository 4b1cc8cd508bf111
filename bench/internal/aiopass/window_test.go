package aiopass

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// A Window holds at most its size: a full one drops the Futures that finished without waiting, waits
// while fewer than a sixteenth of it finished, and Wait leaves it empty with every outcome in.
func TestWindowHoldsAtMostItsSizeAndWaitsOnlyWhenTooFewFinished(t *testing.T) {
	fake := aioproducertest.NewFake(t, aioproducertest.ManualCompletion())
	ctx := context.Background()
	produce := func() *aioproducer.Future {
		f, err := fake.Produce(ctx, &aioproducer.Message{Topic: "t", Value: []byte("v")})
		require.NoError(t, err)
		return f
	}
	w := NewWindow(32)
	var futs []*aioproducer.Future
	for range 32 {
		f := produce()
		futs = append(futs, f)
		require.NoError(t, w.Add(ctx, f))
	}
	require.Len(t, w.futs, 32)

	// Two finished (a sixteenth): the next Add drops them and does not wait.
	require.Equal(t, 2, fake.Complete(2))
	for _, f := range futs[:2] {
		_, err := f.Wait(ctx)
		require.NoError(t, err)
	}
	require.NoError(t, w.Add(ctx, produce()))
	require.Len(t, w.futs, 31, "two finished ones dropped, one added")
	require.NoError(t, w.Add(ctx, produce()))

	// Full and nothing finished: Add waits until two have.
	added := make(chan error, 1)
	next := produce()
	go func() { added <- w.Add(ctx, next) }()
	select {
	case err := <-added:
		t.Fatalf("Add returned (%v) with a full window and nothing finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	fake.Complete(2)
	require.NoError(t, <-added)
	require.Len(t, w.futs, 31)

	fake.CompleteAll()
	require.NoError(t, w.Wait(ctx))
	require.Empty(t, w.futs)
	for _, f := range futs {
		require.True(t, f.IsDone())
	}
}

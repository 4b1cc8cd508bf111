package limiter

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAcquireWithinBothLimits(t *testing.T) {
	l := New(3, 100)
	require.NoError(t, l.Acquire(context.Background(), 2, 60))
	ok, err := l.TryAcquire(1, 41)
	require.NoError(t, err)
	assert.False(t, ok, "bytes over the limit")
	ok, _ = l.TryAcquire(2, 1)
	assert.False(t, ok, "count over the limit")
	ok, _ = l.TryAcquire(1, 40)
	assert.True(t, ok)
	n, b := l.Used()
	assert.EqualValues(t, 3, n)
	assert.EqualValues(t, 100, b)
	assert.True(t, l.Fits(3, 100))
	assert.False(t, l.Fits(4, 1))
	assert.False(t, l.Fits(1, 101))
}

func TestWaitersAreGrantedInArrivalOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(1, 100)
		require.NoError(t, l.Acquire(t.Context(), 1, 1))
		var order []int
		done := make(chan struct{}, 3)
		for i := range 3 {
			go func() {
				require.NoError(t, l.Acquire(t.Context(), 1, 1))
				order = append(order, i) // serialised: only one holds the limiter at a time
				l.Release(1, 1)
				done <- struct{}{}
			}()
			synctest.Wait()
		}
		ok, _ := l.TryAcquire(1, 1)
		assert.False(t, ok, "a newcomer overtook the waiters")
		l.Release(1, 1)
		for range 3 {
			<-done
		}
		assert.Equal(t, []int{0, 1, 2}, order)
	})
}

func TestBigWaiterIsNotStarvedBySmallOnes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(10, 10)
		require.NoError(t, l.Acquire(t.Context(), 1, 5))
		big := make(chan error, 1)
		go func() { big <- l.Acquire(t.Context(), 1, 10) }()
		synctest.Wait()
		ok, _ := l.TryAcquire(1, 1)
		assert.False(t, ok, "a small request overtook the waiting big one")
		l.Release(1, 5)
		require.NoError(t, <-big)
	})
}

func TestCancelledWaiterLeavesAndLetsOthersIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(2, 100)
		require.NoError(t, l.Acquire(t.Context(), 1, 90))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		first := make(chan error, 1)
		go func() { first <- l.Acquire(ctx, 1, 20) }() // does not fit until release
		synctest.Wait()
		second := make(chan error, 1)
		go func() { second <- l.Acquire(t.Context(), 1, 5) }() // fits, but queues behind first
		synctest.Wait()
		require.ErrorIs(t, <-first, context.DeadlineExceeded)
		require.NoError(t, <-second)
		n, b := l.Used()
		assert.EqualValues(t, 2, n)
		assert.EqualValues(t, 95, b)
	})
}

func TestCloseFailsWaitersAndLaterCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(1, 1)
		require.NoError(t, l.Acquire(t.Context(), 1, 1))
		closed := errors.New("closed")
		waiter := make(chan error, 1)
		go func() { waiter <- l.Acquire(t.Context(), 1, 1) }()
		synctest.Wait()
		l.Close(closed)
		require.ErrorIs(t, <-waiter, closed)
		require.ErrorIs(t, l.Acquire(t.Context(), 1, 1), closed)
		_, err := l.TryAcquire(1, 1)
		require.ErrorIs(t, err, closed)
		l.Release(1, 1) // still allowed
		n, _ := l.Used()
		assert.Zero(t, n)
	})
}

func TestReleasingMoreThanHeldPanics(t *testing.T) {
	l := New(1, 1)
	assert.Panics(t, func() { l.Release(1, 1) })
}

package aioproducer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFutureResolvedBeforeAnyoneWaitsReturnsAtOnce(t *testing.T) {
	f := &Future{msg: &Message{Topic: "t"}}
	d := Delivery{Topic: "t", Partition: 1, Offset: 7}
	f.resolve(d, nil)
	select {
	case <-f.Done():
	default:
		t.Fatal("Done not closed")
	}
	assert.Nil(t, f.ch, "no channel was needed")
	got, err := f.Wait(context.Background())
	require.NoError(t, err)
	assert.Equal(t, d, got)
}

func TestFutureWakesEveryWaiter(t *testing.T) {
	f := &Future{}
	boom := errors.New("boom")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.Wait(context.Background())
			assert.ErrorIs(t, err, boom)
		}()
	}
	<-time.After(time.Millisecond)
	f.resolve(Delivery{}, boom)
	wg.Wait()
}

// Waiters that arrive while the outcome is being set either get the channel resolve closes or the
// closed one: none waits forever. Run with -race: it also checks that the outcome is published safely.
func TestFutureWaitersRacingTheOutcomeAllWake(t *testing.T) {
	for range 200 {
		f := &Future{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := f.Wait(context.Background())
				assert.NoError(t, err)
				assert.EqualValues(t, 9, d.Offset)
			}()
		}
		f.resolve(Delivery{Offset: 9}, nil)
		wg.Wait()
	}
}

func TestFutureWaitEndsWithItsContextButKeepsTheOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &Future{}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := f.Wait(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		f.resolve(Delivery{Offset: 3}, nil)
		d, err := f.Wait(t.Context())
		require.NoError(t, err)
		assert.EqualValues(t, 3, d.Offset)
	})
}

func TestPoolReusesWhatWasPutBack(t *testing.T) {
	made := 0
	p := newPool(func() *record { made++; return new(record) })
	r := p.get()
	assert.Equal(t, 1, made)
	reused := false
	for range 100 { // the race detector drops some puts on purpose
		p.put(r)
		if p.get() == r {
			reused = true
			break
		}
	}
	assert.True(t, reused)
}

func TestRecycledRecordsHoldNoReferences(t *testing.T) {
	r := &record{msg: &Message{}, fut: &Future{}, fn: func(Delivery, error) {}, ch: make(chan Result), err: errors.New("x"), size: 3}
	r.reset()
	assert.Equal(t, record{}, *r)
}

// A Future is the one allocation Produce makes per message (in blocks): it stays within 80 bytes.
func TestFutureStaysSmall(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(Future{}), uintptr(80))
}

func TestFutureIsDoneOnceResolvedWhetherOrNotSomeoneWaits(t *testing.T) {
	lone := &Future{msg: &Message{Topic: "t"}}
	assert.False(t, lone.IsDone(), "pending")
	lone.resolve(Delivery{Topic: "t"}, nil)
	assert.True(t, lone.IsDone(), "resolved")
	assert.Nil(t, lone.ch, "IsDone made no channel")

	waited := &Future{msg: &Message{Topic: "t"}}
	_ = waited.Done() // a waiter's channel: the state is futureWaited
	assert.False(t, waited.IsDone(), "pending while waited for")
	waited.resolve(Delivery{}, errors.New("failed"))
	assert.True(t, waited.IsDone(), "failed is done too")
}

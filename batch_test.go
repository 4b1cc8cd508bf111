package aioproducer

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestBatchManager(size int, now func() time.Time) *batchManager {
	return newBatchManager(size, now, newPool(func() *recordBuf { return &recordBuf{} }))
}

func TestBatchManagerGroupsByTopicOldestFirst(t *testing.T) {
	clock := time.Unix(100, 0)
	m := newTestBatchManager(3, func() time.Time { return clock })
	add := func(topic string) (*pendingBatch, bool) {
		clock = clock.Add(time.Millisecond)
		return m.add(&record{msg: &Message{Topic: topic}})
	}
	a, full := add("a")
	assert.False(t, full)
	b, _ := add("b")
	add("a")
	assert.Equal(t, time.Unix(100, 0).Add(time.Millisecond), a.oldest, "oldest is the first message's arrival")
	assert.Same(t, a, m.oldest())
	assert.Equal(t, []*pendingBatch{a, b}, m.pendingBatches())

	_, full = add("a")
	assert.True(t, full, "third message of a fills its batch")
	mb := m.take(a)
	assert.Equal(t, "a", mb.Topic())
	assert.Equal(t, 3, mb.Len())
	assert.Same(t, b, m.oldest())

	add("a") // a starts again, after b
	assert.Equal(t, []*pendingBatch{b, a}, m.pendingBatches())
	m.take(b)
	m.take(a)
	assert.Nil(t, m.oldest())
	assert.Empty(t, m.pendingBatches())
}

func TestTimeoutManagerFiresAtTheOldestMessagesDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tm := newTimeoutManager(10 * time.Millisecond)
		start := time.Now()
		tm.arm(start)
		time.Sleep(4 * time.Millisecond)
		tm.arm(start) // more messages for the same batch do not move the deadline
		fired := <-tm.C()
		tm.fired()
		assert.Equal(t, 10*time.Millisecond, fired.Sub(start))
		assert.True(t, tm.due(start, fired))
		assert.False(t, tm.due(start.Add(time.Millisecond), fired))
	})
}

func TestTimeoutManagerDisarmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tm := newTimeoutManager(10 * time.Millisecond)
		tm.arm(time.Now())
		tm.disarm()
		select {
		case <-tm.C():
			t.Fatal("fired after disarm")
		case <-time.After(time.Second):
		}
		tm.arm(time.Now())
		select {
		case <-tm.C():
		case <-time.After(time.Second):
			require.Fail(t, "did not fire after re-arming")
		}
	})
}

package aioproducer

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// topicsOf lists a job's batches as "topic:count".
func topicsOf(j *job) []string {
	var out []string
	for _, b := range j.batches {
		out = append(out, fmt.Sprintf("%s:%d", b.Topic(), b.Len()))
	}
	return out
}

func rec(topic string, size int64) *record { return &record{msg: &Message{Topic: topic}, size: size} }

// A job takes whole topics, oldest first, and as many topics as fit: what the engine gets in one call
// does not shrink when the load spreads over many topics.
func TestBatchManagerTakesWholeTopicsOldestFirstAcrossTopics(t *testing.T) {
	m := newBatchManager()
	now := time.Now()
	for _, topic := range []string{"a", "b", "a", "c", "b", "a"} {
		m.add(rec(topic, 10))
	}
	j := &job{}
	require.True(t, m.take(j, 100, 1<<20, now))
	assert.Equal(t, []string{"a:3", "b:2", "c:1"}, topicsOf(j), "every topic in one job, each in produce order")
	assert.EqualValues(t, 60, j.bytes)
	assert.True(t, m.empty())
	assert.False(t, m.take(&job{}, 100, 1<<20, now), "nothing left")
}

// At the job's limit, a topic that did not fit whole keeps its rest at the front: it is still the
// oldest, and its order holds.
func TestBatchManagerSplitsATopicAtTheJobsLimits(t *testing.T) {
	m := newBatchManager()
	now := time.Now()
	a := []*record{rec("a", 10), rec("a", 10), rec("a", 10)}
	m.add(a[0])
	m.add(rec("b", 10))
	m.add(a[1])
	m.add(a[2])

	j := &job{}
	require.True(t, m.take(j, 2, 1<<20, now))
	assert.Equal(t, []string{"a:2"}, topicsOf(j), "limited by messages")
	assert.Equal(t, []*record{a[0], a[1]}, j.recs)

	j.reset()
	require.True(t, m.take(j, 10, 15, now))
	assert.Equal(t, []string{"a:1"}, topicsOf(j), "limited by bytes: a's rest first, b does not fit")
	assert.Same(t, a[2], j.recs[0])

	j.reset()
	m.add(rec("c", 1000))
	require.True(t, m.take(j, 10, 15, now))
	assert.Equal(t, []string{"b:1"}, topicsOf(j))
	j.reset()
	require.True(t, m.take(j, 10, 15, now))
	assert.Equal(t, []string{"c:1"}, topicsOf(j), "one message goes whatever its size")
}

// A topic whose records were all taken is kept for reuse, then forgotten once idle: a producer that
// writes to many short-lived topics does not keep an entry per topic it ever used.
func TestBatchManagerForgetsIdleTopics(t *testing.T) {
	m := newBatchManager()
	t0 := time.Now()
	m.add(rec("old", 1))
	m.add(rec("busy", 1))
	j := &job{}
	m.take(j, 1, 1<<20, t0) // old is emptied at t0
	m.take(j, 10, 1<<20, t0.Add(time.Minute))
	m.add(rec("pending", 1))
	assert.Equal(t, 3, m.known())

	forgot := m.sweep(t0.Add(time.Second), nil)
	assert.Equal(t, []string{"old"}, forgot, "idle since before the cutoff")
	assert.Equal(t, 2, m.known())
	assert.Equal(t, []string{"busy"}, m.sweep(t0.Add(time.Hour), nil), "a pending topic is never forgotten")
	assert.Equal(t, 1, m.known())

	m.add(rec("old", 1)) // a forgotten topic is welcome again
	j.reset()
	m.take(j, 10, 1<<20, t0)
	assert.Equal(t, []string{"pending:1", "old:1"}, topicsOf(j))
}

// A topic that never empties does not grow its slice without bound: its taken prefix is dropped.
func TestBatchManagerHotTopicReusesItsSlice(t *testing.T) {
	m := newBatchManager()
	j := &job{}
	for i := range 10_000 {
		m.add(rec("hot", 1))
		m.add(rec("hot", 1))
		if i%2 == 0 {
			m.take(j, 3, 1<<20, time.Now())
			j.reset()
		}
	}
	tr := m.topics["hot"]
	assert.LessOrEqual(t, cap(tr.recs), 4*(len(tr.recs)-tr.off)+64, "capacity %d for %d pending", cap(tr.recs), len(tr.recs)-tr.off)
}

func TestTimeoutManagerFiresWhenTheSweepIsDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tm := newTimeoutManager(20 * time.Millisecond) // a sweep every 10 ms
		start := time.Now()
		assert.False(t, tm.due(start))
		tm.arm()
		time.Sleep(4 * time.Millisecond)
		tm.arm() // armed already: the deadline does not move
		fired := <-tm.C()
		tm.fired()
		assert.Equal(t, 10*time.Millisecond, fired.Sub(start))
		assert.True(t, tm.due(fired))
		tm.swept(fired)
		assert.False(t, tm.due(fired.Add(9*time.Millisecond)))
	})
}

func TestTimeoutManagerDisarmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tm := newTimeoutManager(20 * time.Millisecond)
		tm.arm()
		tm.disarm()
		select {
		case <-tm.C():
			t.Fatal("fired after disarm")
		case <-time.After(time.Second):
		}
		tm.arm()
		select {
		case <-tm.C():
		case <-time.After(time.Second):
			require.Fail(t, "did not fire after re-arming")
		}
	})
}

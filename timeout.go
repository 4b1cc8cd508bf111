package aioproducer

import "time"

// timeoutManager is a dispatcher shard's clock for its time-based work: forgetting the topics that
// have been idle for a while (batchManager.sweep). It keeps one timer, armed only while the shard's
// worker sleeps with topics to forget, so an idle producer still lets go of them, and a busy one
// checks due once per job instead. It is owned by the shard's worker and not safe for concurrent use.
//
// A topic idle for idleAfter is forgotten by the first sweep after that: sweeps run every idleAfter/2,
// so within 1.5 × idleAfter.
type timeoutManager struct {
	every time.Duration
	next  time.Time // when the next sweep is due
	timer *time.Timer
	armed bool
}

func newTimeoutManager(idleAfter time.Duration) *timeoutManager {
	t := time.NewTimer(time.Hour)
	t.Stop()
	every := idleAfter / 2
	return &timeoutManager{every: every, next: time.Now().Add(every), timer: t}
}

// C delivers a value when the armed timer fires.
func (m *timeoutManager) C() <-chan time.Time { return m.timer.C }

// due reports whether a sweep is due at now.
func (m *timeoutManager) due(now time.Time) bool { return !now.Before(m.next) }

// swept records a sweep at now: the next is due a period later.
func (m *timeoutManager) swept(now time.Time) { m.next = now.Add(m.every) }

// arm makes the timer fire when the next sweep is due, unless it is armed already.
func (m *timeoutManager) arm() {
	if !m.armed {
		m.armed = true
		m.timer.Reset(time.Until(m.next))
	}
}

// disarm stops the timer: there is nothing to forget.
func (m *timeoutManager) disarm() {
	if m.armed {
		m.armed = false
		m.timer.Stop()
	}
}

// fired records that the timer's value was received.
func (m *timeoutManager) fired() { m.armed = false }

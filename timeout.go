package aioproducer

import "time"

// timeoutManager triggers time-based flushes: it keeps one timer armed for the moment the oldest
// pending message will have waited the buffer timeout. It is owned by the Producer's loop goroutine and
// not safe for concurrent use.
//
// Unlike an idle timeout, the deadline is fixed by the oldest message's arrival: messages that keep
// trickling in cannot postpone it.
type timeoutManager struct {
	timeout  time.Duration
	timer    *time.Timer
	deadline time.Time // when the armed timer fires; zero when disarmed
}

func newTimeoutManager(timeout time.Duration) *timeoutManager {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &timeoutManager{timeout: timeout, timer: t}
}

// C delivers a value when the armed deadline has passed.
func (m *timeoutManager) C() <-chan time.Time { return m.timer.C }

// deadlineOf is when a batch whose first message arrived at oldest is due.
func (m *timeoutManager) deadlineOf(oldest time.Time) time.Time { return oldest.Add(m.timeout) }

// due reports whether a batch whose first message arrived at oldest is due at now.
func (m *timeoutManager) due(oldest, now time.Time) bool { return !now.Before(m.deadlineOf(oldest)) }

// arm makes the timer fire at the deadline of a batch whose first message arrived at oldest, unless it
// is already armed for that moment.
func (m *timeoutManager) arm(oldest time.Time) {
	d := m.deadlineOf(oldest)
	if d.Equal(m.deadline) {
		return
	}
	m.deadline = d
	m.timer.Reset(time.Until(d))
}

// disarm stops the timer; nothing is pending.
func (m *timeoutManager) disarm() {
	if m.deadline.IsZero() {
		return
	}
	m.deadline = time.Time{}
	m.timer.Stop()
}

// fired records that the timer's value was received.
func (m *timeoutManager) fired() { m.deadline = time.Time{} }

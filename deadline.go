package aioproducer

import (
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// deadlines give message.timeout.ms (delivery.timeout.ms) its meaning from Produce. librdkafka counts
// it from the moment it gets a message and has no timeout of its own per message, so time a message
// spends in the producer before the hand-off would come on top. Each record gets a deadline when it
// is accepted, accepted + message.timeout.ms, and the executor fails a record whose deadline passed
// before librdkafka took it, with librdkafka's own timeout error (never sent: not in the log). A
// record handed over in time has librdkafka's whole message.timeout.ms from then. So an outcome comes
// within message.timeout.ms of Produce plus the wait before the hand-off, which sizeQueue keeps to a
// worker's latency.
//
// A deadline is an int64: nanoseconds since the producer started, on the monotonic clock; 0 is none
// (message.timeout.ms=0, which librdkafka reads as infinite).
type deadlines struct {
	base    time.Time
	timeout time.Duration // message.timeout.ms; 0: none
}

func newDeadlines(timeout time.Duration) *deadlines {
	return &deadlines{base: time.Now(), timeout: max(timeout, 0)}
}

// at returns the deadline of a record accepted at now (a time.Now reading), or 0 for none.
func (d *deadlines) at(now time.Time) int64 {
	if d.timeout == 0 {
		return 0
	}
	return int64(now.Sub(d.base) + d.timeout)
}

// on reports whether records have deadlines.
func (d *deadlines) on() bool { return d.timeout > 0 }

// now is the time on the deadlines' clock.
func (d *deadlines) now() int64 { return int64(time.Since(d.base)) }

// until is how long from now until deadline dl, never negative.
func (d *deadlines) until(dl int64) time.Duration { return max(time.Duration(dl-d.now()), 0) }

// expiredAt reports whether rec's deadline has passed at now.
func (r *record) expiredAt(now int64) bool { return r.deadline != 0 && r.deadline <= now }

// firstExpired returns the index of the first of recs whose deadline has passed at now, or len(recs).
func firstExpired(recs []*record, now int64) int {
	for i, r := range recs {
		if r.expiredAt(now) {
			return i
		}
	}
	return len(recs)
}

// earliestDeadline returns the earliest deadline of recs, or 0 if none has one.
func earliestDeadline(recs []*record) int64 {
	var dl int64
	for _, r := range recs {
		if r.deadline != 0 && (dl == 0 || r.deadline < dl) {
			dl = r.deadline
		}
	}
	return dl
}

// errExpired is the outcome of a record whose deadline passed before librdkafka took it: the error
// librdkafka reports for a message that timed out (the same value, so errors.Is finds it either way).
var errExpired = kafka.NewError(kafka.ErrMsgTimedOut, "", false)

// expiredHint is what its DeliveryError adds.
const expiredHint = "message.timeout.ms passed while it waited in the producer, before librdkafka took it: it was never sent"

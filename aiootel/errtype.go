package aiootel

import (
	"context"
	"errors"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
)

// errorType returns the value of the error.type attribute for err: a short snake_case name from a
// bounded set (the same as aioprom.ErrorClass), so the attribute's cardinality stays bounded.
//
//   - the producer's own errors: "invalid_message", "buffer_full", "closed", "fatal",
//     "authentication", "not_in_transaction", "transaction_aborted";
//   - the caller's context: "canceled", "deadline_exceeded";
//   - a librdkafka or broker error (kafka.Error): its code's description in snake case, such as
//     "local_message_timed_out", "local_unknown_partition", "broker_message_size_too_large";
//   - anything else: "other".
func errorType(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, aioproducer.ErrFatal):
		return "fatal"
	case errors.Is(err, aioproducer.ErrAuthentication):
		return "authentication"
	case errors.Is(err, aioproducer.ErrInvalidMessage):
		return "invalid_message"
	case errors.Is(err, aioproducer.ErrBufferFull):
		return "buffer_full"
	case errors.Is(err, aioproducer.ErrTransactionAborted):
		return "transaction_aborted"
	case errors.Is(err, aioproducer.ErrNotInTransaction):
		return "not_in_transaction"
	case errors.Is(err, aioproducer.ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		return snake(ke.Code().String())
	}
	return "other"
}

// snake turns librdkafka's description of an error code ("Local: Message timed out") into
// "local_message_timed_out": lower-case letters and digits, runs of anything else one underscore.
func snake(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	sep := false
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		default:
			sep = b.Len() > 0
			continue
		}
		if sep {
			b.WriteByte('_')
			sep = false
		}
		b.WriteRune(c)
	}
	if b.Len() == 0 {
		return "other"
	}
	return b.String()
}

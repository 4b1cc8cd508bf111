package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
)

// ErrorClass names an error from a bounded set, whatever its text: the label metrics adapters use.
func TestErrorClass(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("%w: bad topic", ErrInvalidMessage), "invalid_message"},
		{ErrBufferFull, "buffer_full"},
		{ErrClosed, "closed"},
		{fmt.Errorf("x: %w", ErrTransactionAborted), "transaction_aborted"},
		{ErrNotInTransaction, "not_in_transaction"},
		{errors.Join(kafka.NewError(kafka.ErrPurgeQueue, "", false), ErrPurged), "purged"},
		{ErrNotTransactional, "not_transactional"},
		{errors.Join(ErrFatal, kafka.NewError(kafka.ErrFenced, "fenced", true)), "fatal"},
		{errors.Join(ErrAuthentication, kafka.NewError(kafka.ErrAuthentication, "x", false)), "authentication"},
		{context.Canceled, "canceled"},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), "deadline_exceeded"},
		{kafka.NewError(kafka.ErrMsgTimedOut, "timed out", false), "local_message_timed_out"},
		{fmt.Errorf("d: %w", kafka.NewError(kafka.ErrUnknownPartition, "", false)), "local_unknown_partition"},
		{kafka.NewError(kafka.ErrMsgSizeTooLarge, "", false), "broker_message_size_too_large"},
		{errors.New("something"), "other"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			assert.Equal(t, tc.want, ErrorClass(tc.err))
		})
	}
	assert.Equal(t, "other", snake(" : "))
	assert.Equal(t, "a_b1_c", snake("  A--b1 c!"))
}

package aioproducertest

import (
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/fakeengine"
)

// The errors below fail a Fake's message (FailWith, FailNext, FailAll) or transactional call
// (FailNextTxn) as librdkafka fails its own: a kafka.Error with code, plus what librdkafka says of it
// besides the code, which the producer's IsOutcomeUnknown, IsRetriable, TxnRequiresAbort and IsFatal
// read. The caller sees the kafka.Error (errors.As finds it), wrapped as the real producer wraps it: in
// a *aioproducer.DeliveryError for a message, in a *aioproducer.TxnError for a call.

// NotPersistedError fails a message as one that is not in the log: the broker refused it
// (kafka.ErrMsgSizeTooLarge, kafka.ErrTopicAuthorizationFailed, kafka.ErrNotEnoughReplicas once
// librdkafka stopped retrying), or it timed out before it was sent (kafka.ErrMsgTimedOut).
// IsOutcomeUnknown is false for it, whatever the code. Given to FailNextTxn, it fails the call with
// code and no flag.
func NotPersistedError(code kafka.ErrorCode) error {
	return &fakeengine.Fault{Err: kafka.NewError(code, "", false), Class: fakeengine.NotPersisted}
}

// OutcomeUnknownError fails a message as one that was sent and got no answer: it may be in the log,
// and IsOutcomeUnknown is true for it, as for librdkafka's kafka.ErrMsgTimedOut after the message was
// sent, or kafka.ErrPurgeInflight. Given to FailNextTxn, it fails the call with code and no flag.
func OutcomeUnknownError(code kafka.ErrorCode) error {
	return &fakeengine.Fault{Err: kafka.NewError(code, "", false), Class: fakeengine.PossiblyPersisted}
}

// FatalError is librdkafka's fatal error with code (for example kafka.ErrOutOfOrderSequenceNumber, or
// kafka.ErrFenced as FenceProducer gives it). It is raised on the producer as librdkafka raises its
// own, so the Fake then behaves as the real producer after a fatal error: the failed message or call,
// every message outstanding, and every later Produce fail with an error wrapping aioproducer.ErrFatal
// (IsFatal true); the producer must be closed. A message failed with it takes no offset.
func FatalError(code kafka.ErrorCode) error {
	return &fakeengine.Fault{Err: kafka.NewError(code, "", true), Class: fakeengine.Fatal}
}

// RetriableError fails a transactional call (FailNextTxn) with an error librdkafka marks retriable, as
// a coordinator that is loading or busy (kafka.ErrCoordinatorLoadInProgress,
// kafka.ErrConcurrentTransactions). The producer makes such a call again by itself, as it does with
// librdkafka, until it succeeds or its ctx ends: only then does the caller see it, with IsRetriable
// true (and the ctx's error). Given to a message, it fails it with code: IsRetriable is false for every
// message's outcome (see FailWith).
func RetriableError(code kafka.ErrorCode) error {
	return &fakeengine.Fault{Err: kafka.NewError(code, "", false), Class: fakeengine.Retriable}
}

// AbortableError fails a transactional call (FailNextTxn: CommitTransaction or
// SendOffsetsToTransaction) with an error for which TxnRequiresAbort is true, librdkafka's
// rd_kafka_error_txn_requires_abort (kafka.ErrInvalidTxnState, a message that failed inside the
// transaction). As in librdkafka, the transaction then takes no message (those produced fail with
// kafka.ErrState), and CommitTransaction and SendOffsetsToTransaction fail again with it, until
// AbortTransaction; the next transaction works. Given to a message, it fails it with code.
func AbortableError(code kafka.ErrorCode) error {
	return &fakeengine.Fault{Err: kafka.NewError(code, "", false), Class: fakeengine.Abortable}
}

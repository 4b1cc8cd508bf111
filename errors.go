package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Sentinel errors. Compare with errors.Is: the errors the producer returns wrap them with detail.
var (
	// ErrClosed is returned by Produce and its variants once Close has begun, and is wrapped by the
	// outcome of a message that a Close whose context ended failed before it was sent: never handed to
	// librdkafka, or purged from its queue (not in the log; safe to produce again).
	ErrClosed = errors.New("aioproducer: producer closed")

	// ErrBufferFull is returned by TryProduce when accepting the message would exceed the limits set
	// with WithMaxBuffered, and, with WithPartitioner, while the partition count of the message's topic
	// is not known yet (TryProduce asks for it without waiting: a retry a moment later gets past).
	// Produce waits instead.
	ErrBufferFull = errors.New("aioproducer: buffer full")

	// ErrInvalidMessage is returned by Produce and its variants for a message that can never be sent:
	// nil, an invalid topic name, a negative partition, a timestamp outside what can be sent (see
	// Message.Timestamp), a header key that is not UTF-8 or holds a NUL byte, a message larger than
	// the producer's byte buffer, or a partition a Partitioner chose outside the topic's partitions
	// (WithPartitioner). Only that call fails.
	ErrInvalidMessage = errors.New("aioproducer: invalid message")

	// ErrFatal marks a fatal librdkafka error, such as an idempotent producer that lost its
	// guarantees. Every message outstanding at that moment and every later Produce fails with an
	// error that wraps ErrFatal and the librdkafka kafka.Error. The producer must be closed and a new
	// one created.
	ErrFatal = errors.New("aioproducer: fatal error")

	// ErrInCallback is returned by Flush when it is called from a callback or a result-channel send
	// (ProduceFunc, ProduceChan): those run on the producer's callback goroutine, and Flush would wait
	// for outcomes only that goroutine can hand over. (The Java producer refuses flush from a callback
	// the same way.) Close from a callback does not fail: see Close.
	ErrInCallback = errors.New("aioproducer: Flush called from a callback would wait for itself")

	// ErrNotInTransaction is returned by Produce and its variants on a transactional producer
	// (transactional.id set) outside a transaction: before BeginTransaction, or once
	// CommitTransaction or AbortTransaction has begun. Nothing was accepted.
	ErrNotInTransaction = errors.New("aioproducer: not in a transaction")

	// ErrTransactionAborted is wrapped by the outcome of a message that AbortTransaction (or Close
	// during a transaction) failed before it was sent.
	ErrTransactionAborted = errors.New("aioproducer: transaction aborted")

	// ErrNotTransactional is wrapped by the *TxnError of a transactional call on a producer whose
	// configuration does not set transactional.id.
	ErrNotTransactional = errors.New("aioproducer: not a transactional producer (set transactional.id)")

	// ErrAuthentication is wrapped by the outcome of a message that failed because a broker refused
	// the producer's credentials (SASL) or its TLS certificate could not be verified. It is not
	// retriable: fix the configuration, or rotate the credentials (SetSaslCredentials).
	ErrAuthentication = errors.New("aioproducer: authentication failed")

	// ErrInvalidConfig is wrapped by the *ConfigError that New returns for a configuration it refuses.
	ErrInvalidConfig = errors.New("aioproducer: invalid configuration")

	// ErrPurged is wrapped by the outcome (a *DeliveryError) of a message that Purge failed while it
	// was still in the producer's buffer or in librdkafka's queue. Such a message is not in the log and
	// IsOutcomeUnknown is false for it, unless librdkafka had sent it once and queued it again for a
	// retry (rd_kafka_message_status says so, and IsOutcomeUnknown is then true).
	ErrPurged = errors.New("aioproducer: purged before it was sent")

	// ErrBrokersDown is wrapped by the error Health returns while librdkafka can reach no broker, and
	// by the outcome of a message that timed out meanwhile. The error says since when and names the
	// last connection error, whose kafka.Error errors.As finds.
	ErrBrokersDown = errors.New("aioproducer: no broker reachable")
)

// pkgPrefix begins the text of every error of the package, once: an error that wraps another of the
// package gives the inner one's text without it (detail, wrapf).
const pkgPrefix = "aioproducer: "

// detail is err's text without the package's prefix, for an error of the package that shows it after
// its own (so that "aioproducer:" reads once).
func detail(err error) string { return strings.TrimPrefix(err.Error(), pkgPrefix) }

// wrapped is an error with a text of its own that wraps err.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

// wrapf is fmt.Errorf(format+": %w", args..., err) for an err of the package: its text follows without
// the package's prefix. errors.Is and errors.As see err as with %w.
func wrapf(err error, format string, args ...any) error {
	return &wrapped{msg: fmt.Sprintf(format, args...) + ": " + detail(err), err: err}
}

// ConfigError is returned by New for an invalid configuration. Key names the librdkafka property or
// the option ("WithBatchSize") at fault. It unwraps to ErrInvalidConfig and, where librdkafka refused
// the configuration, to its kafka.Error.
type ConfigError struct {
	Key string
	Err error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("aioproducer: invalid configuration %q: %v", e.Key, e.Err)
}

// Unwrap returns ErrInvalidConfig and the underlying error.
func (e *ConfigError) Unwrap() []error { return []error{ErrInvalidConfig, e.Err} }

// DeliveryError is the outcome of a message that librdkafka or the broker did not deliver. Err is the
// librdkafka error; errors.As(err, &kafkaErr) finds it. A message failed because the producer hit a fatal
// error also matches ErrFatal; one that a Close whose context ended purged from librdkafka's queue before
// it was sent also matches ErrClosed (one purged in flight does not: IsOutcomeUnknown is true for it).
// Its text says whether the message may be in the log, where librdkafka knows it.
type DeliveryError struct {
	Topic  string
	Err    kafka.Error
	status msgStatus // whether the message may have reached the log
	hint   string    // what the user can do about Err, if the producer knows more than librdkafka says
	cause  error     // why the producer failed it, when it did: a fatal error, Close, unreachable brokers
}

// msgStatus is what librdkafka knows of whether a failed message reached the log
// (rd_kafka_message_status).
type msgStatus int8

const (
	statusUnknown           msgStatus = iota // the engine cannot tell (an error aioproducertest.Fake's FailWith chose)
	statusNotPersisted                       // never sent, or refused by the broker: not in the log
	statusPossiblyPersisted                  // sent without an answer: it may be in the log
)

func (e *DeliveryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "aioproducer: delivery to %q failed: %v", e.Topic, e.Err)
	switch e.status {
	case statusNotPersisted:
		b.WriteString(" (not persisted: the message is not in the log)")
	case statusPossiblyPersisted:
		b.WriteString(" (outcome unknown: the message was sent and may be in the log)")
	}
	if e.hint != "" {
		b.WriteString(": ")
		b.WriteString(e.hint)
	}
	if e.cause != nil {
		fmt.Fprintf(&b, " (%s)", detail(e.cause))
	}
	return b.String()
}

// Unwrap returns the librdkafka error and the cause, if any.
func (e *DeliveryError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Err, e.cause}
	}
	return []error{e.Err}
}

// TxnError is the error of a transactional call (InitTransactions, BeginTransaction,
// SendOffsetsToTransaction, CommitTransaction, AbortTransaction). Err is librdkafka's kafka.Error, or
// what the producer found (a failed message, a call in the wrong state, a context that ended). What to
// do next: IsRetriable(err) says the same call may be made again, TxnRequiresAbort(err) says the
// transaction must be aborted (then begun again), IsFatal(err) says the producer must be closed.
type TxnError struct {
	Op  string // the call that failed
	Err error

	retriable, requiresAbort, fatal bool
	ctxErr                          error // the ctx error, when ctx ended a call librdkafka had not finished
}

func (e *TxnError) Error() string {
	var hint string
	switch {
	case e.fatal:
		hint = " (fatal: close the producer)"
	case e.requiresAbort:
		hint = " (abort the transaction)"
	case e.retriable:
		hint = " (retriable: call it again)"
	}
	if e.ctxErr != nil {
		return fmt.Sprintf("%s%s: %s%s: %v", pkgPrefix, e.Op, detail(e.Err), hint, e.ctxErr)
	}
	return fmt.Sprintf("%s%s: %s%s", pkgPrefix, e.Op, detail(e.Err), hint)
}

// Unwrap returns the underlying error, and the context's error if ctx ended the call.
func (e *TxnError) Unwrap() []error {
	if e.ctxErr != nil {
		return []error{e.Err, e.ctxErr}
	}
	return []error{e.Err}
}

// TxnRequiresAbort reports whether err says the current transaction cannot commit and must be
// aborted with AbortTransaction (librdkafka's rd_kafka_error_txn_requires_abort, or a message of the
// transaction that failed).
func TxnRequiresAbort(err error) bool {
	var te *TxnError
	return errors.As(err, &te) && te.requiresAbort && !te.fatal
}

// SerializationError is returned by a TypedProducer's Produce and its variants when the key or value
// serializer fails. The message was not accepted and gets no outcome. It unwraps to the serializer's
// error. (The Python client's KeySerializationError and ValueSerializationError.)
type SerializationError struct {
	// Field is FieldKey or FieldValue: which serializer failed.
	Field Field
	// Topic is the message's topic.
	Topic string
	// Err is the serializer's error.
	Err error
}

// Error says which serializer failed, for which topic, and why.
func (e *SerializationError) Error() string {
	return fmt.Sprintf("aioproducer: serializing the %s for topic %q: %v", e.Field, e.Topic, e.Err)
}

// Unwrap returns the serializer's error.
func (e *SerializationError) Unwrap() error { return e.Err }

// IsKey reports whether the key serializer failed (Field is FieldKey).
func (e *SerializationError) IsKey() bool { return e.Field == FieldKey }

// fatalError is the error Produce returns, and outstanding messages fail with, after a fatal
// librdkafka error.
type fatalError struct{ err error }

func (e *fatalError) Error() string {
	// A fatal kafka.Error's text begins with "Fatal error: " already.
	return "aioproducer: fatal error: " + strings.TrimPrefix(e.err.Error(), "Fatal error: ")
}

func (e *fatalError) Unwrap() []error { return []error{ErrFatal, e.err} }

// IsRetriable reports whether err is a librdkafka error that librdkafka itself marks retriable: producing
// the message again may succeed. librdkafka has already retried it up to message.timeout.ms.
func IsRetriable(err error) bool {
	var te *TxnError
	if errors.As(err, &te) {
		return te.retriable && !te.fatal && !errors.Is(err, ErrFatal)
	}
	var ke kafka.Error
	return errors.As(err, &ke) && ke.IsRetriable() && !IsFatal(err)
}

// IsFatal reports whether err stems from a fatal producer error: the producer cannot be used any more.
func IsFatal(err error) bool {
	if errors.Is(err, ErrFatal) {
		return true
	}
	if te := (*TxnError)(nil); errors.As(err, &te) && te.fatal {
		return true
	}
	var ke kafka.Error
	return errors.As(err, &ke) && (ke.IsFatal() || ke.Code() == kafka.ErrFatal)
}

// IsOutcomeUnknown reports whether err leaves open whether the message was written: it was sent but no
// answer came, because it timed out (message.timeout.ms) or was purged while a request carrying it was
// in flight. Such a message may be in the log; producing it again may duplicate it. The producer asks
// librdkafka (rd_kafka_message_status), so a message that timed out before it was ever sent is not
// outcome unknown. For an error that does not say (a kafka.Error of a test's own), the code decides:
// a timeout or a purge in flight is outcome unknown.
func IsOutcomeUnknown(err error) bool {
	var de *DeliveryError
	if errors.As(err, &de) && de.status != statusUnknown {
		return de.status == statusPossiblyPersisted
	}
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke.Code() {
	case kafka.ErrMsgTimedOut, kafka.ErrTimedOut, kafka.ErrPurgeInflight:
		return true
	}
	return false
}

// ErrorClass returns a short snake_case name for err from a bounded set, for a metric label or a span
// attribute (the aioprom and aiootel modules use it) whose cardinality must stay bounded whatever the
// error's text says.
//
//   - the producer's own errors: "invalid_message", "buffer_full", "closed", "fatal",
//     "authentication", "not_in_transaction", "not_transactional", "transaction_aborted", "purged";
//   - the caller's context: "canceled", "deadline_exceeded";
//   - a librdkafka or broker error (kafka.Error): its code's description in snake case, such as
//     "local_message_timed_out", "local_unknown_partition", "broker_message_size_too_large";
//   - anything else: "other".
func ErrorClass(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrFatal):
		return "fatal"
	case errors.Is(err, ErrAuthentication):
		return "authentication"
	case errors.Is(err, ErrInvalidMessage):
		return "invalid_message"
	case errors.Is(err, ErrBufferFull):
		return "buffer_full"
	case errors.Is(err, ErrTransactionAborted):
		return "transaction_aborted"
	case errors.Is(err, ErrPurged):
		return "purged"
	case errors.Is(err, ErrNotInTransaction):
		return "not_in_transaction"
	case errors.Is(err, ErrNotTransactional):
		return "not_transactional"
	case errors.Is(err, ErrClosed):
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

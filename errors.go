package aioproducer

import (
	"errors"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Sentinel errors. Compare with errors.Is: the errors the producer returns wrap them with detail.
var (
	// ErrClosed is returned by Produce and its variants once Close has begun, and is the outcome of a
	// message that Close failed before it was ever handed to librdkafka (it was not delivered).
	ErrClosed = errors.New("aioproducer: producer closed")

	// ErrBufferFull is returned by TryProduce when accepting the message would exceed the limits set
	// with WithMaxBuffered. Produce waits for space instead.
	ErrBufferFull = errors.New("aioproducer: buffer full")

	// ErrInvalidMessage is returned by Produce and its variants for a message that can never be sent:
	// nil, an invalid topic name, a negative partition, a timestamp outside what can be sent (see
	// Message.Timestamp), a header key that is not UTF-8 or holds a NUL byte, or a message larger
	// than the producer's byte buffer. Only that call fails.
	ErrInvalidMessage = errors.New("aioproducer: invalid message")

	// ErrFatal marks a fatal librdkafka error, such as an idempotent producer that lost its
	// guarantees. Every message outstanding at that moment and every later Produce fails with an
	// error that wraps ErrFatal and the librdkafka kafka.Error. The producer must be closed and a new
	// one created.
	ErrFatal = errors.New("aioproducer: fatal error")

	// ErrInvalidConfig is wrapped by the *ConfigError that New returns for a configuration it refuses.
	ErrInvalidConfig = errors.New("aioproducer: invalid configuration")
)

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
// error also matches ErrFatal; one purged by a Close whose context ended also matches ErrClosed.
type DeliveryError struct {
	Topic string
	Err   kafka.Error
	cause error // why the producer failed it, when it did: a fatal error or Close
}

func (e *DeliveryError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("aioproducer: delivery to %q failed: %v (%v)", e.Topic, e.Err, e.cause)
	}
	return fmt.Sprintf("aioproducer: delivery to %q failed: %v", e.Topic, e.Err)
}

// Unwrap returns the librdkafka error and the cause, if any.
func (e *DeliveryError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Err, e.cause}
	}
	return []error{e.Err}
}

// fatalError is the error Produce returns, and outstanding messages fail with, after a fatal
// librdkafka error.
type fatalError struct{ err error }

func (e *fatalError) Error() string   { return fmt.Sprintf("aioproducer: fatal error: %v", e.err) }
func (e *fatalError) Unwrap() []error { return []error{ErrFatal, e.err} }

// IsRetriable reports whether err is a librdkafka error that librdkafka itself marks retriable: producing
// the message again may succeed. librdkafka has already retried it up to message.timeout.ms.
func IsRetriable(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && ke.IsRetriable() && !IsFatal(err)
}

// IsFatal reports whether err stems from a fatal producer error: the producer cannot be used any more.
func IsFatal(err error) bool {
	if errors.Is(err, ErrFatal) {
		return true
	}
	var ke kafka.Error
	return errors.As(err, &ke) && (ke.IsFatal() || ke.Code() == kafka.ErrFatal)
}

// IsOutcomeUnknown reports whether err leaves open whether the message was written: it timed out
// (message.timeout.ms) or was purged while a request carrying it was in flight. Such a message may be
// in the log; producing it again may duplicate it.
func IsOutcomeUnknown(err error) bool {
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

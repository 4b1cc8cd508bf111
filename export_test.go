package aioproducer

import "github.com/confluentinc/confluent-kafka-go/v2/kafka"

// What the aioproducer_test files (reliability_test.go) need of the package's insides: a fatal error
// raised on purpose, as librdkafka raises one, and the latest timestamp a message may carry.

// RaiseTestFatal makes p's engine raise librdkafka's fatal error code, as librdkafka would.
func RaiseTestFatal(p *Producer, code kafka.ErrorCode, reason string) {
	raiseTestFatal(p, code, reason)
}

// FatalRaised reports whether p has seen a fatal error.
func FatalRaised(p *Producer) bool { return p.state.fatal.Load() != nil }

// MaxTimestamp is the latest Message.Timestamp that can be sent (validateMessage's bound).
var MaxTimestamp = maxTimestamp

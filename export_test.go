package aioproducer

import "github.com/confluentinc/confluent-kafka-go/v2/kafka"

// What the aioproducer_test files (reliability_test.go) need of the package's insides: a fatal error
// raised on purpose, as librdkafka raises one, the latest timestamp a message may carry, and a buffer
// larger than a small librdkafka queue.

// RaiseTestFatal makes p's engine raise librdkafka's fatal error code, as librdkafka would.
func RaiseTestFatal(p *Producer, code kafka.ErrorCode, reason string) {
	raiseTestFatal(p, code, reason)
}

// FatalRaised reports whether p has seen a fatal error.
func FatalRaised(p *Producer) bool { return p.state.fatal.Load() != nil }

// MaxTimestamp is the latest Message.Timestamp that can be sent (validateMessage's bound).
var MaxTimestamp = maxTimestamp

// KeepBufferOverSmallQueue keeps WithMaxBuffered's limits when the configuration sets librdkafka's
// queue smaller (New lowers them to it otherwise), so that tests reach the workers' queue-full path.
var KeepBufferOverSmallQueue = withSmallQueue()

// withSmallQueue is KeepBufferOverSmallQueue for the package's own tests.
func withSmallQueue() Option { return func(c *config) { c.smallQueue = true } }

package aioproducer

import (
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Header is a Kafka record header: a string key and a byte value (nil for a null value).
type Header = kafka.Header

// Message is one record to produce.
//
// Ownership: the producer keeps the *Message and reads its Key, Value and Headers until the message's
// outcome is known (its Future is done, its callback has run or its Result was sent). Do not modify
// them before then; afterwards they are yours again. librdkafka copies the bytes when the message is
// enqueued, so the producer never holds them after the outcome.
type Message struct {
	// Topic is required: 1 to 249 characters of [a-zA-Z0-9._-], not "." or "..".
	Topic string
	// Key is the record key; nil is a null key. With the default partitioner, messages with the
	// same key go to the same partition, in produce order.
	Key []byte
	// Value is the record value; nil is a null value (a tombstone on compacted topics).
	Value []byte
	// Headers are sent in order; a nil Value is a null header value.
	Headers []Header
	// Timestamp is the record's CreateTime. The zero value means "now", taken when Produce accepts
	// the message (as the Java producer does). It must lie between 1970-01-01T00:00:00.001Z and
	// 2262-04-11 (librdkafka reads 0 as unset; confluent-kafka-go converts through UnixNano).
	Timestamp time.Time
	// Partition pins the message to one partition, set with ExplicitPartition. The zero value lets
	// the Partitioner of WithPartitioner choose, if the producer has one, else the "partitioner"
	// setting: by default a hash of the key (murmur2_random hashes keys as the Java client does). With the *_random partitioners
	// (the default consistent_random, murmur2_random, fnv1a_random) the producer picks the partition
	// of a message without a key (null, or empty with consistent_random): the same one for
	// sticky.partitioning.linger.ms, then a lightly loaded one, avoiding partitions that stopped
	// making progress.
	Partition Partition
}

// Partition is a message's partition choice. Its zero value means "any partition": the partitioner
// decides. Build an explicit one with ExplicitPartition.
type Partition struct {
	id  int32
	set bool
}

// ExplicitPartition pins a message to partition id. A partition the topic does not have fails that
// message with kafka.ErrUnknownPartition.
func ExplicitPartition(id int32) Partition { return Partition{id: id, set: true} }

// ID returns the explicit partition and true, or kafka.PartitionAny and false for the zero value.
func (p Partition) ID() (int32, bool) {
	if !p.set {
		return kafka.PartitionAny, false
	}
	return p.id, true
}

func (p Partition) String() string {
	if !p.set {
		return "any"
	}
	return strconv.Itoa(int(p.id))
}

// Delivery is where a message was written.
type Delivery struct {
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the record's timestamp in the log, in milliseconds: the CreateTime it was sent with
	// (Message.Timestamp, or the time Produce accepted it), or, on a topic with
	// message.timestamp.type=LogAppendTime, the broker's append time (confluent-kafka-go's
	// kafka.Producer does not pass that one on).
	Timestamp time.Time
}

// Result is what ProduceChan sends: the message, and its delivery or the error it failed with.
type Result struct {
	Message  *Message
	Delivery Delivery
	Err      error
}

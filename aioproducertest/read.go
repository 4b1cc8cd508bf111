package aioproducertest

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/internal/readback"
)

// Record is one record read back from a topic.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []aioproducer.Header
	Timestamp time.Time
	// TimestampType says whether Timestamp is the CreateTime or the broker's LogAppendTime.
	TimestampType kafka.TimestampType
}

// Header returns the value of the record's first header named key, and whether it has one.
func (r Record) Header(key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// String returns where the record is: topic[partition]@offset.
func (r Record) String() string { return fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset) }

// ReadTopic reads every record of every partition of topic, from the first to the high watermark as
// of the call, with a librdkafka consumer configured by cm ("bootstrap.servers" and any security
// settings; a "group.id" of its own is set, and no offset is committed), and returns them sorted by
// partition and offset. ctx bounds the whole read: a read that ctx ends fails with an error wrapping
// ctx.Err(), also when ctx's deadline passes during a librdkafka call. It works against any cluster, the mock one of
// Cluster as well as a real one. The consumer's isolation.level is librdkafka's default,
// read_committed, unless cm says otherwise: a transaction left open keeps the read waiting for ctx;
// the transaction markers that end a partition written in transactions count as read.
func ReadTopic(ctx context.Context, cm kafka.ConfigMap, topic string) ([]Record, error) {
	ms, err := readback.ReadTopic(ctx, cm, topic)
	return records(ms), err
}

// WaitRecords reads topic with ReadTopic until it holds at least n records (a topic that does not
// exist yet counts as empty), and returns them all. It fails with ctx's error, and what it read last,
// if ctx ends first.
func WaitRecords(ctx context.Context, cm kafka.ConfigMap, topic string, n int) ([]Record, error) {
	ms, err := readback.WaitTopic(ctx, cm, topic, n)
	return records(ms), err
}

func records(ms []*kafka.Message) []Record {
	out := make([]Record, len(ms))
	for i, m := range ms {
		out[i] = Record{
			Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset),
			Key: m.Key, Value: m.Value, Headers: m.Headers, Timestamp: m.Timestamp, TimestampType: m.TimestampType,
		}
	}
	return out
}

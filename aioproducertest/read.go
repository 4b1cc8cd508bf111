package aioproducertest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
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

// errNoTopic is ReadTopic's error for a topic the cluster does not have.
var errNoTopic = errors.New("no such topic")

// ReadTopic reads every record of every partition of topic, from the first to the high watermark as
// of the call, with a librdkafka consumer configured by cm ("bootstrap.servers" and any security
// settings; a "group.id" of its own is set, and no offset is committed), and returns them sorted by
// partition and offset. ctx bounds the whole read. It works against any cluster, the mock one of
// Cluster as well as a real one. The consumer's isolation.level is librdkafka's default,
// read_committed, unless cm says otherwise: a transaction left open keeps the read waiting for ctx.
func ReadTopic(ctx context.Context, cm kafka.ConfigMap, topic string) ([]Record, error) {
	conf := kafka.ConfigMap{
		"group.id":                 "aioproducertest-read",
		"enable.auto.commit":       false,
		"enable.auto.offset.store": false,
		"auto.offset.reset":        "earliest",
		"allow.auto.create.topics": false,
	}
	for k, v := range cm {
		conf[k] = v
	}
	c, err := kafka.NewConsumer(&conf)
	if err != nil {
		return nil, fmt.Errorf("aioproducertest: read %s: %w", topic, err)
	}
	defer func() { _ = c.Close() }()
	timeoutMs := func() int {
		if dl, ok := ctx.Deadline(); ok {
			return max(int(time.Until(dl)/time.Millisecond), 1)
		}
		return 30_000
	}
	md, err := c.GetMetadata(&topic, false, timeoutMs())
	if err != nil {
		return nil, fmt.Errorf("aioproducertest: read %s: metadata: %w", topic, err)
	}
	tm, ok := md.Topics[topic]
	if !ok || tm.Error.Code() != kafka.ErrNoError || len(tm.Partitions) == 0 {
		return nil, fmt.Errorf("aioproducertest: read %s: %w (%v)", topic, errNoTopic, tm.Error)
	}
	high := map[int32]int64{}
	next := map[int32]int64{}
	var assign []kafka.TopicPartition
	total := int64(0)
	for _, pm := range tm.Partitions {
		low, hi, err := c.QueryWatermarkOffsets(topic, pm.ID, timeoutMs())
		if err != nil {
			return nil, fmt.Errorf("aioproducertest: read %s[%d]: watermarks: %w", topic, pm.ID, err)
		}
		if hi > low {
			high[pm.ID], next[pm.ID] = hi, low
			total += hi - low
			assign = append(assign, kafka.TopicPartition{Topic: &topic, Partition: pm.ID, Offset: kafka.Offset(low)})
		}
	}
	out := make([]Record, 0, total)
	if len(assign) == 0 {
		return out, nil
	}
	if err := c.Assign(assign); err != nil {
		return nil, fmt.Errorf("aioproducertest: read %s: assign: %w", topic, err)
	}
	for pending := len(assign); pending > 0; {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("aioproducertest: read %s: %d of %d records (next/high per partition %v / %v): %w",
				topic, len(out), total, next, high, err)
		}
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error != nil {
				return out, fmt.Errorf("aioproducertest: read %s: %w", topic, ev.TopicPartition.Error)
			}
			p, off := ev.TopicPartition.Partition, int64(ev.TopicPartition.Offset)
			if off >= high[p] {
				continue // written after the watermarks were taken
			}
			out = append(out, Record{
				Topic: topic, Partition: p, Offset: off, Key: ev.Key, Value: ev.Value,
				Headers: ev.Headers, Timestamp: ev.Timestamp, TimestampType: ev.TimestampType,
			})
			if off >= next[p] {
				next[p] = off + 1
				if next[p] == high[p] {
					pending--
				}
			}
		case kafka.Error:
			if ev.IsFatal() {
				return out, fmt.Errorf("aioproducertest: read %s: %w", topic, ev)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out, nil
}

// WaitRecords reads topic with ReadTopic until it holds at least n records (a topic that does not
// exist yet counts as empty), and returns them all. It fails with ctx's error, and what it read last,
// if ctx ends first.
func WaitRecords(ctx context.Context, cm kafka.ConfigMap, topic string, n int) ([]Record, error) {
	for {
		recs, err := ReadTopic(ctx, cm, topic)
		if err == nil && len(recs) >= n {
			return recs, nil
		}
		if err != nil && !errors.Is(err, errNoTopic) && ctx.Err() == nil {
			return recs, err
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return recs, fmt.Errorf("aioproducertest: %d of %d records in %s: %w", len(recs), n, topic, ctx.Err())
		case <-t.C:
		}
	}
}

// Package readback reads a topic back with a librdkafka consumer, for the module's tests and for
// package aioproducertest, which presents it as Records. It deals only in confluent-kafka-go's types,
// so the root package's own tests, which cannot import aioproducertest (it imports aioproducer), use it
// as well.
package readback

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ErrNoTopic is what ReadTopic's error wraps for a topic the cluster does not have.
var ErrNoTopic = errors.New("no such topic")

// ReadTopic reads every record of every partition of topic, from the first to the high watermark as
// of the call, with a consumer configured by cm, and returns them sorted by partition and offset (see
// aioproducertest.ReadTopic).
func ReadTopic(ctx context.Context, cm kafka.ConfigMap, topic string) ([]*kafka.Message, error) {
	conf := kafka.ConfigMap{
		"group.id":                 "aioproducertest-read",
		"enable.auto.commit":       false,
		"enable.auto.offset.store": false,
		"auto.offset.reset":        "earliest",
		"allow.auto.create.topics": false,
		// The end of a partition whose last offsets are transaction markers (control records, never
		// returned as messages) is known by this event.
		"enable.partition.eof": true,
	}
	for k, v := range cm {
		conf[k] = v
	}
	c, err := kafka.NewConsumer(&conf)
	if err != nil {
		return nil, fmt.Errorf("aioproducer: read back %s: %w", topic, err)
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
		return nil, fmt.Errorf("aioproducer: read back %s: metadata: %w", topic, ctxCause(ctx, err))
	}
	tm, ok := md.Topics[topic]
	if !ok || tm.Error.Code() != kafka.ErrNoError || len(tm.Partitions) == 0 {
		return nil, fmt.Errorf("aioproducer: read back %s: %w (%v)", topic, ErrNoTopic, tm.Error)
	}
	high := map[int32]int64{}
	next := map[int32]int64{}
	var assign []kafka.TopicPartition
	total := int64(0)
	for _, pm := range tm.Partitions {
		low, hi, err := c.QueryWatermarkOffsets(topic, pm.ID, timeoutMs())
		if err != nil {
			return nil, fmt.Errorf("aioproducer: read back %s[%d]: watermarks: %w", topic, pm.ID, ctxCause(ctx, err))
		}
		if hi > low {
			high[pm.ID], next[pm.ID] = hi, low
			total += hi - low
			assign = append(assign, kafka.TopicPartition{Topic: &topic, Partition: pm.ID, Offset: kafka.Offset(low)})
		}
	}
	out := make([]*kafka.Message, 0, total)
	if len(assign) == 0 {
		return out, nil
	}
	if err := c.Assign(assign); err != nil {
		return nil, fmt.Errorf("aioproducer: read back %s: assign: %w", topic, err)
	}
	for pending := len(assign); pending > 0; {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("aioproducer: read back %s: %d of %d records (next/high per partition %v / %v): %w",
				topic, len(out), total, next, high, err)
		}
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error != nil {
				return out, fmt.Errorf("aioproducer: read back %s: %w", topic, ev.TopicPartition.Error)
			}
			p, off := ev.TopicPartition.Partition, int64(ev.TopicPartition.Offset)
			if off >= high[p] {
				continue // written after the watermarks were taken
			}
			out = append(out, ev)
			if off >= next[p] {
				next[p] = off + 1
				if next[p] == high[p] {
					pending--
				}
			}
		case kafka.PartitionEOF:
			// Past the last message, up to high: the rest were transaction markers.
			p := ev.Partition
			if int64(ev.Offset) >= high[p] && next[p] < high[p] {
				next[p] = high[p]
				pending--
			}
		case kafka.Error:
			if ev.IsFatal() {
				return out, fmt.Errorf("aioproducer: read back %s: %w", topic, ev)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].TopicPartition, out[j].TopicPartition
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	})
	return out, nil
}

// ctxCause is the error to return for err, the error of a librdkafka call whose timeout ctx's deadline
// bounded. A call that gives up at its timeout says "Local: Timed out", or for a request that timed
// out "Local: Broker transport failure", and librdkafka's timeout, counted in whole milliseconds, can
// end a moment before ctx's deadline timer fires. So an error that comes within deadlineSlack of the
// deadline waits for ctx to end, and wraps ctx's error as well as err; so does one that comes after ctx
// ended. Any other is err.
func ctxCause(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		dl, ok := ctx.Deadline()
		if !ok || time.Until(dl) > deadlineSlack {
			return err
		}
		t := time.NewTimer(time.Until(dl) + deadlineSlack)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
			return err
		}
	}
	return fmt.Errorf("%w (%w)", ctx.Err(), err)
}

// deadlineSlack is how close to ctx's deadline a librdkafka call's error counts as the deadline's.
const deadlineSlack = 20 * time.Millisecond

// WaitTopic reads topic with ReadTopic until it holds at least n records (a topic that does not exist
// yet counts as empty), and returns them all. It fails with ctx's error, and what it read last, if ctx
// ends first.
func WaitTopic(ctx context.Context, cm kafka.ConfigMap, topic string, n int) ([]*kafka.Message, error) {
	for {
		recs, err := ReadTopic(ctx, cm, topic)
		if err == nil && len(recs) >= n {
			return recs, nil
		}
		if err != nil && !errors.Is(err, ErrNoTopic) && ctx.Err() == nil {
			return recs, err
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return recs, fmt.Errorf("aioproducer: read back: %d of %d records in %s: %w", len(recs), n, topic, ctx.Err())
		case <-t.C:
		}
	}
}

package eos

import (
	"fmt"
	"slices"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

type partition struct {
	topic string
	p     int32
}

func keyOf(tp kafka.TopicPartition) partition { return partition{*tp.Topic, tp.Partition} }

// nextOffsets returns each partition's offset after the batch's last message there: the consumer
// offsets the transaction commits.
func nextOffsets(batch []*kafka.Message) []kafka.TopicPartition {
	return offsetsBy(batch, func(cur, off kafka.Offset) bool { return off+1 > cur }, 1)
}

// firstOffsets returns each partition's first offset in the batch.
func firstOffsets(batch []*kafka.Message) []kafka.TopicPartition {
	return offsetsBy(batch, func(cur, off kafka.Offset) bool { return off < cur }, 0)
}

// offsetsBy returns, per partition of the batch, the offset (+ add) of the message that better
// prefers over the others, sorted by topic and partition.
func offsetsBy(batch []*kafka.Message, better func(cur, off kafka.Offset) bool, add kafka.Offset) []kafka.TopicPartition {
	at := map[partition]int{}
	var out []kafka.TopicPartition
	for _, m := range batch {
		k := keyOf(m.TopicPartition)
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			topic := k.topic
			out = append(out, kafka.TopicPartition{Topic: &topic, Partition: k.p, Offset: m.TopicPartition.Offset + add})
			continue
		}
		if better(out[i].Offset, m.TopicPartition.Offset) {
			out[i].Offset = m.TopicPartition.Offset + add
		}
	}
	slices.SortFunc(out, func(a, b kafka.TopicPartition) int {
		if c := strings.Compare(*a.Topic, *b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// describe lists partitions and offsets as topic[partition]@offset.
func describe(tps []kafka.TopicPartition) string {
	parts := make([]string, len(tps))
	for i, tp := range tps {
		parts[i] = fmt.Sprintf("%s[%d]@%v", *tp.Topic, tp.Partition, tp.Offset)
	}
	return strings.Join(parts, " ")
}

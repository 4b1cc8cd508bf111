package aioproducer

import (
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// The partitioners the engine places keyed messages with itself are librdkafka's *_random ones; the
// others it leaves to librdkafka.
func TestPartitionerOfNamesTheOnesTheEngineCanCall(t *testing.T) {
	for name, want := range map[string]int{
		"consistent_random": rdk.PartitionerConsistentRandom,
		"murmur2_random":    rdk.PartitionerMurmur2Random,
		"fnv1a_random":      rdk.PartitionerFNV1aRandom,
		"random":            rdk.PartitionerNone,
		"consistent":        rdk.PartitionerNone,
		"murmur2":           rdk.PartitionerNone,
		"fnv1a":             rdk.PartitionerNone,
	} {
		assert.Equal(t, want, partitionerOf(kafka.ConfigMap{"partitioner": name}), name)
		assert.Equal(t, want, partitionerOf(kafka.ConfigMap{"default.topic.config": kafka.ConfigMap{"partitioner": name}}), name)
	}
	assert.Equal(t, rdk.PartitionerConsistentRandom, partitionerOf(kafka.ConfigMap{}), "the default")
}

// TestLibrdkafkaEngineGroupedPartitionsKeepOrder: messages that alternate between explicit partitions,
// through a librdkafka queue small enough to fill many times, and one message for a partition the
// topic lacks in the middle: every message gets its outcome, only that one fails, and each partition's
// offsets follow the produce order.
func TestLibrdkafkaEngineGroupedPartitionsKeepOrder(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("grp", 4, 1))
	p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"queue.buffering.max.messages": 50}, WithBatchSize(200), withSmallQueue())
	ctx := ctxTimeout(t, 60*time.Second)
	const n, bad = 3000, 1234
	msgs := make([]*Message, n)
	for i := range msgs {
		msgs[i] = &Message{Topic: "grp", Value: []byte(fmt.Sprint(i)), Partition: ExplicitPartition(int32(i % 4))}
	}
	msgs[bad].Partition = ExplicitPartition(7)
	futs, err := p.ProduceBatch(ctx, msgs)
	require.NoError(t, err)
	last := map[int32]int64{}
	for i, f := range futs {
		d, err := f.Wait(ctx)
		if i == bad {
			require.Error(t, err, "message %d to a partition the topic lacks", i)
			continue
		}
		require.NoError(t, err, "message %d", i)
		require.Equal(t, int32(i%4), d.Partition, "message %d", i)
		if l, ok := last[d.Partition]; ok {
			require.Greater(t, d.Offset, l, "message %d out of order in partition %d", i, d.Partition)
		}
		last[d.Partition] = d.Offset
	}
	assert.Positive(t, p.Stats().QueueFullWaits, "the small librdkafka queue filled")
}

// TestLibrdkafkaEngineKeyedMessagesGoWhereLibrdkafkaPutsThem: keyed messages the engine partitions itself
// land where librdkafka's partitioner puts them, each partition's offsets follow the produce order (so
// each key's do), null and empty keys still go where librdkafka decides, through a librdkafka queue
// that fills many times; for the default partitioner and murmur2_random.
func TestLibrdkafkaEngineKeyedMessagesGoWhereLibrdkafkaPutsThem(t *testing.T) {
	for _, name := range []string{"consistent_random", "murmur2_random"} {
		t.Run(name, func(t *testing.T) {
			mc := newMockCluster(t, 1)
			require.NoError(t, mc.CreateTopic("keyed", 6, 1))
			p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"queue.buffering.max.messages": 100, "partitioner": name}, WithBatchSize(300), withSmallQueue())
			kind := partitionerOf(kafka.ConfigMap{"partitioner": name})
			ctx := ctxTimeout(t, 60*time.Second)
			const n = 6000
			msgs := make([]*Message, n)
			for i := range msgs {
				msgs[i] = &Message{Topic: "keyed", Key: fmt.Appendf(nil, "key-%d", i%97), Value: []byte(fmt.Sprint(i))}
				switch i % 50 {
				case 7:
					msgs[i].Key = nil
				case 8:
					msgs[i].Key = []byte{}
				case 9:
					msgs[i].Partition = ExplicitPartition(int32(i % 6))
				}
			}
			var futs []*Future
			for i := 0; i < n; i += 1000 { // the first batches may go before librdkafka knows the partitions
				fs, err := p.ProduceBatch(ctx, msgs[i:i+1000])
				require.NoError(t, err)
				futs = append(futs, fs...)
			}
			last := map[int32]int64{}
			for i, f := range futs {
				d, err := f.Wait(ctx)
				require.NoError(t, err, "message %d", i)
				if id, ok := msgs[i].Partition.ID(); ok {
					require.Equal(t, id, d.Partition, "message %d", i)
				} else if len(msgs[i].Key) > 0 {
					require.Equal(t, rdk.Partition(kind, msgs[i].Key, 6), d.Partition, "message %d, key %q", i, msgs[i].Key)
				}
				if l, ok := last[d.Partition]; ok {
					require.Greater(t, d.Offset, l, "message %d out of order in partition %d", i, d.Partition)
				}
				last[d.Partition] = d.Offset
			}
			assert.Positive(t, p.eng.(*librdkafkaEngine).partitioned.Load(), "the engine partitioned keyed messages itself")
			assert.Positive(t, p.Stats().QueueFullWaits, "the small librdkafka queue filled")
		})
	}
}

// TestLibrdkafkaEngineKeyedMessagesOverManyTopicsInOneCall: one job carries keyed messages for many
// topics with different partition counts, interleaved: each lands where librdkafka's partitioner puts
// it for its own topic's count, and each partition's offsets follow the produce order.
func TestLibrdkafkaEngineKeyedMessagesOverManyTopicsInOneCall(t *testing.T) {
	mc := newMockCluster(t, 1)
	const topics = 12
	for i := range topics {
		require.NoError(t, mc.CreateTopic(fmt.Sprintf("mt-%d", i), 1+i%5, 1))
	}
	p := newTestProducer(t, mc.BootstrapServers(), nil, WithWorkers(1), WithBatchSize(5000))
	ctx := ctxTimeout(t, 60*time.Second)
	// One keyed message per topic first, so librdkafka knows every topic's partitions.
	var warm []*Message
	for i := range topics {
		warm = append(warm, &Message{Topic: fmt.Sprintf("mt-%d", i), Key: []byte("warm")})
	}
	fs, err := p.ProduceBatch(ctx, warm)
	require.NoError(t, err)
	for _, f := range fs {
		_, err := f.Wait(ctx)
		require.NoError(t, err)
	}
	const n = 4800
	msgs := make([]*Message, n)
	for i := range msgs {
		msgs[i] = &Message{Topic: fmt.Sprintf("mt-%d", i%topics), Key: fmt.Appendf(nil, "key-%d", i%89), Value: []byte(fmt.Sprint(i))}
	}
	before := p.Stats().Batches
	futs, err := p.ProduceBatch(ctx, msgs)
	require.NoError(t, err)
	type tp struct {
		topic string
		part  int32
	}
	last := map[tp]int64{}
	for i, f := range futs {
		d, err := f.Wait(ctx)
		require.NoError(t, err, "message %d", i)
		cnt := int32(1 + (i%topics)%5)
		require.Equal(t, rdk.Partition(rdk.PartitionerConsistentRandom, msgs[i].Key, cnt), d.Partition, "message %d", i)
		k := tp{d.Topic, d.Partition}
		if l, ok := last[k]; ok {
			require.Greater(t, d.Offset, l, "message %d out of order in %v", i, k)
		}
		last[k] = d.Offset
	}
	calls := p.Stats().Batches - before
	assert.LessOrEqual(t, calls, uint64(n/100), "%d messages over %d topics took %d engine calls", n, topics, calls)
	assert.Positive(t, p.eng.(*librdkafkaEngine).partitioned.Load(), "the engine partitioned keyed messages itself")
}

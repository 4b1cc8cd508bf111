package aioproducer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

func groupRecs(parts []int32, anyAt int) []*record {
	recs := make([]*record, len(parts))
	for i, p := range parts {
		m := &Message{Topic: "t", Value: []byte{byte(i), byte(i >> 8)}}
		if i != anyAt {
			m.Partition = ExplicitPartition(p)
		}
		recs[i] = &record{msg: m}
	}
	return recs
}

// TestGroupByPartition checks that groupByPartition makes each partition's records adjacent within
// each run between records without a partition, keeps their order within the partition, never moves a
// record without a partition, loses and duplicates nothing, and leaves alone runs of too many
// partitions and batches of several topics.
func TestGroupByPartition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var sc enqueueScratch
	for iter := range 3000 {
		n := 1 + rng.IntN(300)
		np := 1 + rng.IntN(10)
		if iter%50 == 0 {
			np = maxGroupedPartitions + 1 + rng.IntN(10)
		}
		parts := make([]int32, n)
		for i := range parts {
			parts[i] = int32(rng.IntN(np))
		}
		recs := groupRecs(parts, -1)
		for i := range recs {
			if iter%3 == 1 && rng.IntN(40) == 0 {
				recs[i].msg.Partition = Partition{} // a barrier
			}
		}
		orig := slices.Clone(recs)
		require.True(t, effectivePartitions(recs, nil, 0, &sc))
		origEff := slices.Clone(sc.eff)
		groupByPartition(recs, sc.eff, &sc)
		for i, r := range recs {
			id, ok := r.msg.Partition.ID()
			if !ok {
				id = -1
			}
			require.Equal(t, id, sc.eff[i], "iter %d: eff out of step with recs at %d", iter, i)
		}
		// Check run by run, between barriers, which must not move.
		for lo := 0; lo < n; {
			if origEff[lo] < 0 {
				require.Same(t, orig[lo], recs[lo], "iter %d: barrier %d moved", iter, lo)
				lo++
				continue
			}
			hi := lo + 1
			for hi < n && origEff[hi] >= 0 {
				hi++
			}
			distinct := map[int32]bool{}
			for _, p := range origEff[lo:hi] {
				distinct[p] = true
			}
			if len(distinct) > maxGroupedPartitions {
				require.Equal(t, orig[lo:hi], recs[lo:hi], "iter %d: run of too many partitions reordered", iter)
				lo = hi
				continue
			}
			want := map[int32][]*record{}
			for k, r := range orig[lo:hi] {
				want[origEff[lo+k]] = append(want[origEff[lo+k]], r)
			}
			got := map[int32][]*record{}
			seen := map[int32]bool{}
			last := int32(-1)
			for k, r := range recs[lo:hi] {
				id := sc.eff[lo+k]
				if id != last {
					require.False(t, seen[id], "iter %d: partition %d in two runs", iter, id)
					seen[id], last = true, id
				}
				got[id] = append(got[id], r)
			}
			require.Equal(t, len(want), len(got), "iter %d", iter)
			for id, w := range want {
				require.Equal(t, w, got[id], "iter %d: partition %d order changed", iter, id)
			}
			lo = hi
		}
	}

	// A batch of several topics is not grouped at all.
	recs := groupRecs([]int32{0, 1, 0, 1, 2, 0}, -1)
	recs[3].msg.Topic = "other"
	require.False(t, effectivePartitions(recs, nil, 0, &sc))
	if len(sc.recs) > 0 && sc.recs[0] != nil {
		t.Fatal("scratch keeps records reachable")
	}
}

// TestKeyHashesMatchLibrdkafka: the engine's Go copies of librdkafka's partitioners put every key where
// librdkafka's own code (rd_kafka_msg_partitioner_*) does, for many keys and partition counts.
func TestKeyHashesMatchLibrdkafka(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, name := range []string{"consistent_random", "murmur2_random", "fnv1a_random"} {
		hash, kind := keyHashOf(kafka.ConfigMap{"default.topic.config": kafka.ConfigMap{"partitioner": name}})
		require.NotNil(t, hash, name)
		for i := range 200000 {
			key := make([]byte, 1+rng.IntN(40))
			for k := range key {
				key[k] = byte(rng.IntN(256))
			}
			if i%4 == 0 {
				key = fmt.Appendf(nil, "user-%d", i)
			}
			cnt := int32(1 + rng.IntN(300))
			want := rdk.Partition(kind, key, cnt)
			if got := int32(hash(key) % uint32(cnt)); got != want {
				t.Fatalf("%s: key %q, %d partitions: %d, librdkafka %d", name, key, cnt, got, want)
			}
		}
	}
	for _, name := range []string{"random", "consistent", "murmur2", "fnv1a"} {
		hash, kind := keyHashOf(kafka.ConfigMap{"partitioner": name})
		require.Nil(t, hash, name)
		require.Equal(t, rdk.PartitionerNone, kind, name)
	}
	hash, kind := keyHashOf(kafka.ConfigMap{})
	require.NotNil(t, hash, "the default")
	require.Equal(t, rdk.PartitionerConsistentRandom, kind)
}

// TestBatchEngineGroupedPartitionsKeepOrder: messages that alternate between explicit partitions,
// through a librdkafka queue small enough to fill many times, and one message for a partition the
// topic lacks in the middle: every message gets its outcome, only that one fails, and each partition's
// offsets follow the produce order.
func TestBatchEngineGroupedPartitionsKeepOrder(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("grp", 4, 1))
	p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"queue.buffering.max.messages": 50}, WithBatchSize(200))
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

// TestBatchEngineKeyedMessagesGoWhereLibrdkafkaPutsThem: keyed messages the engine partitions itself
// land where librdkafka's partitioner puts them, each partition's offsets follow the produce order (so
// each key's do), null and empty keys still go where librdkafka decides, through a librdkafka queue
// that fills many times; for the default partitioner and murmur2_random.
func TestBatchEngineKeyedMessagesGoWhereLibrdkafkaPutsThem(t *testing.T) {
	for _, name := range []string{"consistent_random", "murmur2_random"} {
		t.Run(name, func(t *testing.T) {
			mc := newMockCluster(t, 1)
			require.NoError(t, mc.CreateTopic("keyed", 6, 1))
			p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"queue.buffering.max.messages": 100, "partitioner": name}, WithBatchSize(300))
			_, kind := keyHashOf(kafka.ConfigMap{"partitioner": name})
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

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

// TestGroupByPartition checks that groupByPartition makes each partition's records adjacent, keeps
// their order within the partition, loses and duplicates nothing, and leaves alone the batches it
// must not touch.
func TestGroupByPartition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var sc enqueueScratch
	for iter := range 2000 {
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
		orig := slices.Clone(recs)
		groupByPartition(recs, &sc)
		distinct := map[int32]bool{}
		for _, p := range parts {
			distinct[p] = true
		}
		if len(distinct) > maxGroupedPartitions {
			if !slices.Equal(recs, orig) {
				t.Fatalf("iter %d: more than %d partitions, but reordered", iter, maxGroupedPartitions)
			}
			continue
		}
		// Same records, each partition's in the original order, each partition one run.
		want := map[int32][]*record{}
		for _, r := range orig {
			id, _ := r.msg.Partition.ID()
			want[id] = append(want[id], r)
		}
		got := map[int32][]*record{}
		seen := map[int32]bool{}
		var last int32 = -1
		for _, r := range recs {
			id, _ := r.msg.Partition.ID()
			if id != last {
				if seen[id] {
					t.Fatalf("iter %d: partition %d in two runs: %v", iter, id, parts)
				}
				seen[id], last = true, id
			}
			got[id] = append(got[id], r)
		}
		for id, w := range want {
			if !slices.Equal(got[id], w) {
				t.Fatalf("iter %d: partition %d order changed", iter, id)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("iter %d: partitions %d, want %d", iter, len(got), len(want))
		}
	}

	// A record without a partition, or of another topic, keeps the batch as it is.
	parts := []int32{0, 1, 0, 1, 2, 0}
	for at := range parts {
		recs := groupRecs(parts, at)
		orig := slices.Clone(recs)
		groupByPartition(recs, &sc)
		if !slices.Equal(recs, orig) {
			t.Fatalf("record %d without a partition, but the batch was reordered", at)
		}
		recs[at].msg.Partition = ExplicitPartition(parts[at])
		recs[at].msg.Topic = "other"
		groupByPartition(recs, &sc)
		if !slices.Equal(recs, orig) {
			t.Fatalf("record %d of another topic, but the batch was reordered", at)
		}
	}
	if len(sc.recs) > 0 && sc.recs[0] != nil {
		t.Fatal("scratch keeps records reachable")
	}
}

// TestBatchEngineGroupedPartitionsKeepOrder: messages that alternate between explicit partitions,
// through a librdkafka queue small enough to fill many times, and one message for a partition the
// topic lacks in the middle: every message gets its outcome, only that one fails, and each partition's
// offsets follow the produce order.
func TestBatchEngineGroupedPartitionsKeepOrder(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("grp", 4, 1))
	p := newBatchTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"queue.buffering.max.messages": 50}, WithBatchSize(200))
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

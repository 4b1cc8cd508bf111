package rdk

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"
)

func TestVersionAndABI(t *testing.T) {
	if err := CheckVersion(); err != nil {
		t.Fatal(err)
	}
	v, s := Version()
	t.Logf("librdkafka %s (%#x)", s, v)
}

func TestProduceAndPoll(t *testing.T) {
	mc, err := kafka.NewMockCluster(1)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	if err := mc.CreateTopic("t", 2, 1); err != nil {
		t.Fatal(err)
	}
	p, err := New([][2]string{{"bootstrap.servers", mc.BootstrapServers()}, {"linger.ms", "1"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	topic, err := p.Topic("t")
	if err != nil {
		t.Fatal(err)
	}
	defer p.DestroyTopic(topic)
	var b Batch
	b.Reset()
	const n = 1000
	for i := range n {
		b.Add(topic, nil, []byte("value"), []kafka.Header{{Key: "h", Value: []byte("v")}, {Key: "null"}}, kafka.PartitionAny, 1764200000123, uint64(i))
	}
	got, err := p.Produce(&b)
	if err != nil || got != n {
		t.Fatalf("Produce = %d, %v", got, err)
	}
	b.Reset()
	b.Add(topic, []byte("k"), nil, nil, 7, 0, n)
	want := n + 1
	if got, err := p.Produce(&b); got != 1 {
		// Refused at once when librdkafka knows the partition count already.
		if ke, ok := err.(kafka.Error); got != 0 || !ok || ke.Code() != kafka.ErrUnknownPartition {
			t.Fatalf("unknown partition Produce = %d, %v", got, err)
		}
		want = n
	}
	out := make([]Report, 300)
	seen := map[uint64]int32{}
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < want && time.Now().Before(deadline) {
		k, ev := p.Poll(100, out)
		for _, r := range out[:k] {
			seen[r.Opaque] = r.Err
			if r.Opaque < n && (r.Err != 0 || r.TsType == 1 && r.Timestamp != 1764200000123) {
				t.Fatalf("report %+v", r)
			}
		}
		if ev != nil {
			t.Logf("event %+v", ev)
		}
	}
	if len(seen) != want {
		t.Fatalf("%d reports", len(seen))
	}
	if want == n+1 && seen[n] != int32(kafka.ErrUnknownPartition) {
		t.Fatalf("unknown partition: %v", kafka.ErrorCode(seen[n]))
	}
}

func TestConfigErrorNamesTheKey(t *testing.T) {
	_, err := New([][2]string{{"bootstrap.servers", "x:1"}, {"no.such", "1"}}, Options{})
	ce, ok := err.(*ConfigError)
	if !ok || ce.Key != "no.such" {
		t.Fatalf("err = %v", err)
	}
}

// rssBytes is the process's resident set, from /proc/self/statm.
func rssBytes(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/statm")
	require.NoError(t, err)
	f := strings.Fields(string(b))
	pages, err := strconv.Atoi(f[1])
	require.NoError(t, err)
	return pages * os.Getpagesize()
}

// keptAfterBurst is how much more resident memory the process has after C mallocs 32 MiB in 1 KiB
// blocks and frees them all. 32 MiB fits in one heap of a thread's arena (glibc caps those at 64 MiB):
// memory freed in a lower heap of an arena is never trimmed, whatever the threshold, which would make
// the defaults look like the tuning.
func keptAfterBurst(t *testing.T) int {
	before := rssBytes(t)
	require.NoError(t, mallocBurst(32<<10, 1<<10))
	return rssBytes(t) - before
}

func TestTuneMallocKeepsFreedMemoryAndGlibcDefaultsReturnIt(t *testing.T) {
	if _, err := os.Stat("/proc/self/statm"); err != nil {
		t.Skip("no /proc/self/statm:", err)
	}
	// Both bursts on this thread, so in the same malloc arena: the second reuses what the first kept.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := TuneMalloc(256<<20, 64<<20)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("not glibc:", err)
	}
	require.NoError(t, err)
	kept := keptAfterBurst(t)
	require.Greater(t, kept, 24<<20, "with a 256 MiB trim threshold, the 32 MiB freed stays resident")

	// glibc's default values back (128 KiB each) for the rest of this test binary; its dynamic mmap
	// threshold stays off, as after any mallopt of these two.
	require.NoError(t, TuneMalloc(128<<10, 128<<10))
	kept = keptAfterBurst(t)
	require.Less(t, kept, 8<<20, "with glibc's 128 KiB trim threshold, the 32 MiB freed goes back")
}

func TestTuneMallocRejectsValuesMalloptCannotTake(t *testing.T) {
	for _, v := range [][2]int{{-1, 0}, {0, -1}, {1 << 31, 0}, {0, 1 << 31}} {
		err := TuneMalloc(v[0], v[1])
		require.Error(t, err, "TuneMalloc(%d, %d)", v[0], v[1])
		require.Contains(t, err.Error(), "must be in [0, 2147483647]")
	}
}

// GroupMetadataBytes is the one place that reads confluent-kafka-go by reflection: the serialized
// consumer group metadata it keeps in an unexported field. This pins that layout: the bytes it reads
// are what librdkafka's rd_kafka_consumer_group_metadata_read takes, and a layout it does not know
// fails with an error instead of a guess.
func TestGroupMetadataBytesReadsWhatLibrdkafkaWrote(t *testing.T) {
	cgm, err := kafka.NewTestConsumerGroupMetadata("pinned-group")
	require.NoError(t, err)
	md, err := GroupMetadataBytes(cgm)
	require.NoError(t, err, "confluent-kafka-go's ConsumerGroupMetadata no longer keeps its bytes in field serialized")
	require.Contains(t, string(md), "pinned-group")

	p, err := New([][2]string{{"bootstrap.servers", "127.0.0.1:1"}}, Options{})
	require.NoError(t, err)
	defer p.Close()
	topic := "t"
	offsets := []kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: 1}}
	// librdkafka reads the metadata, then refuses the call: the producer is not transactional.
	te := p.SendOffsets(offsets, cgm, 100)
	require.NotNil(t, te)
	require.NotEqual(t, kafka.ErrBadMsg, te.Code, "librdkafka could not read the metadata: %v", te)
	t.Logf("refused as expected: %v (%v)", te.Code, te)

	// GroupID reads the group id back from those bytes (the in-memory engine records it).
	id, err := GroupID(cgm)
	require.NoError(t, err)
	require.Equal(t, "pinned-group", id)
	empty, err := kafka.NewTestConsumerGroupMetadata("")
	require.NoError(t, err)
	id, err = GroupID(empty)
	require.NoError(t, err)
	require.Empty(t, id)

	// A zero ConsumerGroupMetadata is refused before librdkafka is called.
	_, err = GroupMetadataBytes(&kafka.ConsumerGroupMetadata{})
	require.ErrorContains(t, err, "empty")
	_, err = GroupMetadataBytes(nil)
	require.Error(t, err)
}

// Produce groups each topic run's records by partition, placing keyed ones with librdkafka's own
// partitioner: no record leaves its topic's run, each partition's records keep their order, a record
// without a partition (null key) is crossed by none, and every keyed record lands where librdkafka's
// partitioner puts it.
func TestProduceGroupsEachTopicRunByPartition(t *testing.T) {
	mc, err := kafka.NewMockCluster(1)
	require.NoError(t, err)
	defer mc.Close()
	parts := map[string]int32{"ga": 6, "gb": 3}
	for name, n := range parts {
		require.NoError(t, mc.CreateTopic(name, int(n), 1))
	}
	p, err := New([][2]string{{"bootstrap.servers", mc.BootstrapServers()}, {"linger.ms", "1"}},
		Options{Partitioner: PartitionerConsistentRandom})
	require.NoError(t, err)
	defer p.Close()
	topics := map[string]Topic{}
	for name := range parts {
		tp, err := p.Topic(name)
		require.NoError(t, err)
		defer p.DestroyTopic(tp)
		topics[name] = tp
	}
	out := make([]Report, 100)
	poll := func(want int) map[uint64]Report {
		got := map[uint64]Report{}
		deadline := time.Now().Add(20 * time.Second)
		for len(got) < want && time.Now().Before(deadline) {
			k, _ := p.Poll(100, out)
			for _, r := range out[:k] {
				got[r.Opaque] = r
			}
		}
		require.Len(t, got, want)
		return got
	}
	// librdkafka learns both topics' partitions first.
	var b Batch
	b.Reset()
	b.Add(topics["ga"], []byte("warm"), nil, nil, kafka.PartitionAny, 0, 1<<40)
	b.Add(topics["gb"], []byte("warm"), nil, nil, kafka.PartitionAny, 0, 1<<40+1)
	_, err = p.Produce(&b)
	require.NoError(t, err)
	poll(2)

	type spec struct {
		topic string
		key   []byte
		part  int32 // explicit, or -1
	}
	var specs []spec
	runs := []struct {
		topic string
		n     int
	}{{"ga", 200}, {"gb", 100}, {"ga", 60}}
	for _, r := range runs {
		for i := range r.n {
			s := spec{topic: r.topic, key: fmt.Appendf(nil, "k%d", i%37), part: -1}
			switch i % 23 {
			case 5:
				s.key = nil // librdkafka's sticky partitioner decides
			case 6:
				s.part = int32(i) % parts[r.topic]
			}
			specs = append(specs, s)
		}
	}
	b.Reset()
	for i, s := range specs {
		b.Add(topics[s.topic], s.key, []byte("v"), nil, s.part, 0, uint64(i))
	}
	n, err := p.Produce(&b)
	require.NoError(t, err)
	require.Equal(t, len(specs), n)
	require.Positive(t, b.Partitioned())
	order := b.Order()
	moved := 0
	for k, i := range order {
		if int(i) != k {
			moved++
		}
	}
	require.Positive(t, moved, "nothing was grouped")
	want := func(i int) int32 { // the partition record i must land in, -1: any
		s := specs[i]
		if s.part >= 0 {
			return s.part
		}
		if s.key == nil {
			return -1
		}
		return Partition(PartitionerConsistentRandom, s.key, parts[s.topic])
	}
	lo := 0
	seen := make([]bool, len(specs))
	for _, r := range runs {
		hi := lo + r.n
		last := map[int32]int{}
		for k := lo; k < hi; k++ {
			i := int(order[k])
			require.True(t, i >= lo && i < hi, "record %d left its topic run [%d,%d)", i, lo, hi)
			require.False(t, seen[i], "record %d twice", i)
			seen[i] = true
			pt := want(i)
			if l, ok := last[pt]; ok && pt >= 0 {
				require.Greater(t, i, l, "partition %d out of order", pt)
			}
			last[pt] = i
			if pt < 0 {
				require.Equal(t, i, k, "a record without a partition moved, or was crossed")
			}
		}
		lo = hi
	}
	reps := poll(len(specs))
	for i := range specs {
		if pt := want(i); pt >= 0 {
			require.Equal(t, pt, reps[uint64(i)].Partition, "record %d", i)
		}
		require.Zero(t, reps[uint64(i)].Err, "record %d", i)
	}
}

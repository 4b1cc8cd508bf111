package aioproducer

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// javaMurmur2 is the Java client's org.apache.kafka.common.utils.Utils.murmur2, to the letter: 32-bit
// arithmetic (int overflow wraps in Java too), >>> an unsigned shift, the tail's switch falling through.
func javaMurmur2(data []byte) int32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	length := len(data)
	h := uint32(seed) ^ uint32(length)
	for i := 0; i < length/4; i++ {
		i4 := i * 4
		k := uint32(data[i4]) | uint32(data[i4+1])<<8 | uint32(data[i4+2])<<16 | uint32(data[i4+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// javaPartition is where the Java client's default partitioner (BuiltInPartitioner.partitionForKey)
// puts a keyed record: toPositive(murmur2(key)) % numPartitions, toPositive being x & 0x7fffffff.
func javaPartition(key []byte, partitions int32) int32 {
	return (javaMurmur2(key) & 0x7fffffff) % partitions
}

// TestJavaMurmur2MatchesKafkasTestVectors checks the test's Java murmur2 against Kafka's own
// UtilsTest.testMurmur2, so the tests below compare with the Java client and not with a typo.
func TestJavaMurmur2MatchesKafkasTestVectors(t *testing.T) {
	for in, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		assert.Equal(t, want, javaMurmur2([]byte(in)), "murmur2(%q)", in)
	}
}

// javaKeys returns n distinct keys whose lengths modulo 4 take every value, so that every tail of
// murmur2 is used.
func javaKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user-%d%s", i, "xyz"[:i%4])
	}
	return keys
}

// produceKeys produces one message per key to topic and returns each one's delivered partition.
func produceKeys(t *testing.T, p *Producer, topic string, keys [][]byte) []int32 {
	t.Helper()
	ctx := ctxTimeout(t, 60*time.Second)
	msgs := make([]*Message, len(keys))
	for i, k := range keys {
		msgs[i] = &Message{Topic: topic, Key: k, Value: []byte(strconv.Itoa(i))}
	}
	futs, err := p.ProduceBatch(ctx, msgs)
	require.NoError(t, err)
	parts := make([]int32, len(keys))
	for i, f := range futs {
		d, err := f.Wait(ctx)
		require.NoError(t, err, "key %q", keys[i])
		parts[i] = d.Partition
	}
	return parts
}

// TestMurmur2RandomPlacesKeysAsTheJavaClient: with partitioner=murmur2_random, every keyed message
// lands where the Java client's default partitioner puts its key (and so franz-go's, whose default
// hashes keys with the same murmur2).
func TestMurmur2RandomPlacesKeysAsTheJavaClient(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("java", 7, 1))
	p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"partitioner": "murmur2_random"})
	keys := javaKeys(1000)
	used := map[int32]bool{}
	for i, got := range produceKeys(t, p, "java", keys) {
		require.Equal(t, javaPartition(keys[i], 7), got, "key %q", keys[i])
		used[got] = true
	}
	assert.Len(t, used, 7, "the keys spread over every partition")
}

// TestPartitionerWithJavasMurmur2PlacesKeysAsMurmur2Random: a Partitioner computing the Java client's
// placement puts every key where librdkafka's murmur2_random does, whatever the "partitioner" setting.
func TestPartitionerWithJavasMurmur2PlacesKeysAsMurmur2Random(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("java", 7, 1))
	var calls atomic.Int64
	javaLike := func(msg *Message, partitions int32) int32 {
		calls.Add(1)
		return javaPartition(msg.Key, partitions)
	}
	p := newTestProducer(t, mc.BootstrapServers(), nil, WithPartitioner(javaLike)) // consistent_random configured
	keys := javaKeys(1000)
	for i, got := range produceKeys(t, p, "java", keys) {
		require.Equal(t, rdk.Partition(rdk.PartitionerMurmur2Random, keys[i], 7), got, "key %q", keys[i])
	}
	assert.EqualValues(t, len(keys), calls.Load(), "called once per message")
}

// TestPartitionerPlacesEveryMessageWithoutAnExplicitPartition: the Partitioner is called, with the
// topic's partition count, for keyed and unkeyed messages that set no partition, through every way to
// produce, and never for a message with an explicit partition; each lands on the partition it chose.
func TestPartitionerPlacesEveryMessageWithoutAnExplicitPartition(t *testing.T) {
	const parts = 5
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("placed", parts, 1))
	var mu sync.Mutex
	called := map[*Message]int32{} // the message, and the count it was called with
	byValue := func(msg *Message, partitions int32) int32 {
		mu.Lock()
		called[msg] = partitions
		mu.Unlock()
		i, _ := strconv.Atoi(string(msg.Value))
		return int32(i) % partitions
	}
	p := newTestProducer(t, mc.BootstrapServers(), nil, WithPartitioner(byValue))
	ctx := ctxTimeout(t, 30*time.Second)

	type sent struct {
		msg  *Message
		want int32
		got  func() (Delivery, error)
	}
	var all []sent
	n := 0
	next := func(key []byte, explicit bool) *Message {
		n++
		m := &Message{Topic: "placed", Key: key, Value: []byte(strconv.Itoa(n))}
		if explicit {
			m.Partition = ExplicitPartition(int32(n+1) % parts) // not where the Partitioner would put it
		}
		return m
	}
	want := func(m *Message) int32 {
		if id, ok := m.Partition.ID(); ok {
			return id
		}
		i, _ := strconv.Atoi(string(m.Value))
		return int32(i) % parts
	}
	future := func(m *Message, f *Future, err error) {
		require.NoError(t, err)
		all = append(all, sent{m, want(m), func() (Delivery, error) { return f.Wait(ctx) }})
	}
	for _, key := range [][]byte{nil, []byte("key")} {
		for _, explicit := range []bool{false, true} {
			m := next(key, explicit)
			f, err := p.Produce(ctx, m)
			future(m, f, err)

			m = next(key, explicit)
			f, err = p.TryProduce(m) // the count is known by now
			future(m, f, err)

			m = next(key, explicit)
			res := make(chan Result, 1)
			require.NoError(t, p.ProduceFunc(ctx, m, func(d Delivery, err error) { res <- Result{Delivery: d, Err: err} }))
			all = append(all, sent{m, want(m), func() (Delivery, error) { r := <-res; return r.Delivery, r.Err }})

			m = next(key, explicit)
			ch := make(chan Result, 1)
			require.NoError(t, p.ProduceChan(ctx, m, ch))
			all = append(all, sent{m, want(m), func() (Delivery, error) { r := <-ch; return r.Delivery, r.Err }})

			batch := []*Message{next(key, explicit), next(key, explicit), next(key, explicit)}
			futs, err := p.ProduceBatch(ctx, batch)
			require.NoError(t, err)
			for i, f := range futs {
				future(batch[i], f, nil)
			}

			tp := NewTyped(p, BytesSerializer{}, StringSerializer{})
			tm := next(key, explicit) // its fields only: the typed producer builds the Message
			f, err = tp.Produce(ctx, &TypedMessage[[]byte, string]{Topic: "placed", Key: tm.Key, Value: string(tm.Value), Partition: tm.Partition})
			require.NoError(t, err)
			future(f.Message(), f, nil)
		}
	}
	for _, s := range all {
		d, err := s.got()
		require.NoError(t, err, "message %s", s.msg.Value)
		assert.Equal(t, s.want, d.Partition, "message %s (key %q, partition %v)", s.msg.Value, s.msg.Key, s.msg.Partition)
		mu.Lock()
		count, ok := called[s.msg]
		mu.Unlock()
		_, explicit := s.msg.Partition.ID()
		if explicit {
			assert.False(t, ok, "the Partitioner was called for message %s, which has an explicit partition", s.msg.Value)
		} else {
			assert.True(t, ok, "the Partitioner was not called for message %s (key %q)", s.msg.Value, s.msg.Key)
			assert.EqualValues(t, parts, count, "the count the Partitioner got")
		}
	}
}

// TestPartitionerOutOfRangeFailsThatMessageAlone: a partition the topic does not have fails the call
// that produced the message, with an ErrInvalidMessage naming the topic, the result and the count;
// ProduceBatch accepts none of its messages, as for any invalid one; the producer goes on.
func TestPartitionerOutOfRangeFailsThatMessageAlone(t *testing.T) {
	me := newMemEngine(memConfig{Auto: true, Partitions: func(string) int32 { return 3 }})
	// The value's length less one: "" is -1, "abcd" 3, both out of range.
	byLen := func(msg *Message, _ int32) int32 { return int32(len(msg.Value)) - 1 }
	p := newFakeProducer(t, me, WithPartitioner(byLen))
	ctx := ctxTimeout(t, 10*time.Second)

	for _, bad := range []struct {
		value string
		part  string
	}{{"", "-1"}, {"abcd", "3"}} {
		_, err := p.Produce(ctx, &Message{Topic: "t", Value: []byte(bad.value)})
		require.ErrorIs(t, err, ErrInvalidMessage)
		assert.Contains(t, err.Error(), `topic "t"`)
		assert.Contains(t, err.Error(), "partition "+bad.part+",")
		assert.Contains(t, err.Error(), "3 partitions")

		_, err = p.TryProduce(&Message{Topic: "t", Value: []byte(bad.value)})
		require.ErrorIs(t, err, ErrInvalidMessage)
		require.ErrorIs(t, p.ProduceFunc(ctx, &Message{Topic: "t", Value: []byte(bad.value)}, func(Delivery, error) {}), ErrInvalidMessage)
	}
	futs, err := p.ProduceBatch(ctx, []*Message{{Topic: "t", Value: []byte("a")}, {Topic: "t", Value: []byte("abcd")}})
	require.ErrorIs(t, err, ErrInvalidMessage)
	assert.Contains(t, err.Error(), "message 1")
	assert.Empty(t, futs)

	f, err := p.Produce(ctx, &Message{Topic: "t", Value: []byte("abc")})
	require.NoError(t, err)
	d, err := f.Wait(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 2, d.Partition)
	require.NoError(t, p.Flush(ctx))
	assert.Len(t, me.History(), 1, "only the good message reached the engine")
	held, bytes := p.limit.Used()
	assert.Zero(t, held, "no buffer room kept by the refused messages")
	assert.Zero(t, bytes)
}

// TestPartitionsIsTheTopicsPartitionCount: on the mock cluster, Partitions reads a topic's count from
// the cluster (also through a TypedProducer), asks for a topic it does not know (which the mock
// cluster creates, with its default count); with allow.auto.create.topics=false a topic that does not
// exist fails Partitions, and Produce with a Partitioner, promptly with the metadata error naming it.
// After Close it returns ErrClosed.
func TestPartitionsIsTheTopicsPartitionCount(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("seven", 7, 1))
	ctx := ctxTimeout(t, 30*time.Second)
	p := newTestProducer(t, mc.BootstrapServers(), nil)
	n, err := p.Partitions(ctx, "seven")
	require.NoError(t, err)
	assert.EqualValues(t, 7, n)
	n, err = NewTyped(p, StringSerializer{}, StringSerializer{}).Partitions(ctx, "seven")
	require.NoError(t, err)
	assert.EqualValues(t, 7, n)
	n, err = p.Partitions(ctx, "made-on-first-use")
	require.NoError(t, err)
	assert.Positive(t, n, "the mock cluster created it")
	_, err = p.Partitions(ctx, "bad/name")
	require.ErrorIs(t, err, ErrInvalidMessage)

	// Not idempotent, so no pidKick: this test once found "missing" created (2 of 12 runs on a loaded
	// machine, not reproduced since). The suspect, not confirmed: pidKick's metadata request for
	// every topic librdkafka knows, which librdkafka may send allowing auto-creation.
	strict := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"allow.auto.create.topics": false, "enable.idempotence": false},
		WithPartitioner(func(*Message, int32) int32 { return 0 }))
	start := time.Now()
	_, err = strict.Partitions(ctx, "missing")
	require.Error(t, err)
	var ke kafka.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, kafka.ErrUnknownTopicOrPart, ke.Code())
	assert.Contains(t, err.Error(), `"missing"`)
	_, err = strict.Produce(ctx, &Message{Topic: "missing", Value: []byte("v")})
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, kafka.ErrUnknownTopicOrPart, ke.Code())
	assert.Contains(t, err.Error(), `"missing"`)
	assert.Less(t, time.Since(start), 10*time.Second, "an answer, not a wait for ctx")
	n, err = strict.Partitions(ctx, "seven")
	require.NoError(t, err)
	assert.EqualValues(t, 7, n)

	require.NoError(t, p.Close(ctx))
	_, err = p.Partitions(ctx, "seven")
	require.ErrorIs(t, err, ErrClosed)
}

// TestWaitingForAPartitionCountIsBoundedByCtx: with no broker to answer, Partitions and Produce with a
// Partitioner return when ctx ends, with its error; TryProduce does not wait at all (ErrBufferFull);
// nothing was accepted.
func TestWaitingForAPartitionCountIsBoundedByCtx(t *testing.T) {
	p := newTestProducer(t, "127.0.0.1:1", kafka.ConfigMap{"message.timeout.ms": 2000},
		WithPartitioner(func(*Message, int32) int32 { return 0 }))
	for _, call := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"Partitions", func(ctx context.Context) error { _, err := p.Partitions(ctx, "t"); return err }},
		{"Produce", func(ctx context.Context) error { _, err := p.Produce(ctx, &Message{Topic: "t"}); return err }},
		{"ProduceBatch", func(ctx context.Context) error {
			_, err := p.ProduceBatch(ctx, []*Message{{Topic: "t"}})
			return err
		}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err := call.do(ctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, call.name)
		assert.Less(t, time.Since(start), 2*time.Second, call.name)
	}
	start := time.Now()
	_, err := p.TryProduce(&Message{Topic: "t"})
	require.ErrorIs(t, err, ErrBufferFull)
	assert.Contains(t, err.Error(), `"t"`)
	assert.Less(t, time.Since(start), 100*time.Millisecond, "TryProduce does not wait")
	assert.Zero(t, p.Stats().HeldMessages)
}

// TestTryProduceAsksForAnUnknownPartitionCount: TryProduce to a topic whose count is not known fails
// at once, asking for it, and succeeds once it came.
func TestTryProduceAsksForAnUnknownPartitionCount(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("try", 3, 1))
	p := newTestProducer(t, mc.BootstrapServers(), nil, WithPartitioner(func(*Message, int32) int32 { return 2 }))
	_, err := p.TryProduce(&Message{Topic: "try"})
	require.ErrorIs(t, err, ErrBufferFull)
	var f *Future
	require.Eventually(t, func() bool {
		f, err = p.TryProduce(&Message{Topic: "try"})
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
	d, err := f.Wait(ctxTimeout(t, 10*time.Second))
	require.NoError(t, err)
	assert.EqualValues(t, 2, d.Partition)
}

func TestWithPartitionerNilIsAConfigError(t *testing.T) {
	_, err := New(kafka.ConfigMap{"bootstrap.servers": "localhost:9092"}, WithPartitioner(nil))
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "WithPartitioner", ce.Key)
}

// TestPartitionCountsAskOnceAndRetryWhatMayPass: callers waiting for one topic share one request; a
// failure that may pass (a timeout) is asked again while they wait; a topic that does not exist fails
// them at once; a count once known costs no request; close fails the waiting callers with ErrClosed.
func TestPartitionCountsAskOnceAndRetryWhatMayPass(t *testing.T) {
	var asked atomic.Int32
	release := make(chan error)
	c := newPartitionCounts(func(topic string) (int32, error) {
		asked.Add(1)
		if err := <-release; err != nil {
			return 0, err
		}
		return 6, nil
	})
	ctx := ctxTimeout(t, 10*time.Second)
	var wg sync.WaitGroup
	got := make([]int32, 8)
	for i := range got {
		wg.Go(func() {
			n, err := c.wait(ctx, "t")
			assert.NoError(t, err)
			got[i] = n
		})
	}
	release <- kafka.NewError(kafka.ErrTimedOut, "timed out", false)
	release <- nil
	wg.Wait()
	for _, n := range got {
		assert.EqualValues(t, 6, n)
	}
	assert.EqualValues(t, 2, asked.Load(), "one request at a time for every caller, asked again after the timeout")
	assert.EqualValues(t, 6, c.known("t"))
	assert.EqualValues(t, 2, asked.Load(), "a known count costs no request")

	go func() { release <- kafka.NewError(kafka.ErrUnknownTopicOrPart, "unknown", false) }()
	_, err := c.wait(ctx, "gone")
	var ke kafka.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, kafka.ErrUnknownTopicOrPart, ke.Code())

	done := make(chan error)
	go func() { _, err := c.wait(ctx, "stuck"); done <- err }()
	require.Eventually(t, func() bool { return asked.Load() == 4 }, 5*time.Second, time.Millisecond)
	go func() { release <- kafka.NewError(kafka.ErrTimedOut, "timed out", false) }()
	c.close()
	require.ErrorIs(t, <-done, ErrClosed)
	_, err = c.wait(ctx, "later")
	require.ErrorIs(t, err, ErrClosed)
}

// TestPartitionCountsAreKeptFresh: a count older than metaEvery is still answered at once, and asked
// for again, so that partitions added to a topic are seen; a count the engine's own refresh learned
// (store) is taken as it comes; a forgotten topic is asked for again.
func TestPartitionCountsAreKeptFresh(t *testing.T) {
	var count, asked atomic.Int32
	count.Store(3)
	c := newPartitionCounts(func(string) (int32, error) { asked.Add(1); return count.Load(), nil })
	defer c.close()
	ctx := ctxTimeout(t, 10*time.Second)
	n, err := c.wait(ctx, "t")
	require.NoError(t, err)
	require.EqualValues(t, 3, n)

	count.Store(5) // partitions were added
	c.entry("t").at.Store(time.Now().Add(-metaEvery - time.Second).UnixNano())
	n, err = c.wait(ctx, "t")
	require.NoError(t, err)
	assert.EqualValues(t, 3, n, "the old count, at once")
	require.Eventually(t, func() bool { return c.known("t") == 5 }, 5*time.Second, time.Millisecond, "asked for again")

	c.store("t", 8) // the engine's metadataLoop learned it
	assert.EqualValues(t, 8, c.known("t"))
	c.store("untracked", 8)
	assert.False(t, c.has("untracked"), "the engine's refresh follows only the topics asked for")

	c.forget([]string{"t"})
	before := asked.Load()
	n, err = c.wait(ctx, "t")
	require.NoError(t, err)
	assert.EqualValues(t, 5, n)
	assert.Equal(t, before+1, asked.Load(), "a forgotten topic is asked for again")
}

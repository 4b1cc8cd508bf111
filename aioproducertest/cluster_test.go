package aioproducertest_test

import (
	"context"
	"hash/crc32"
	"strconv"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

func TestClusterReadsBackWhatWasProduced(t *testing.T) {
	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic("orders", 2))
	p := c.NewProducer(t, nil)
	ctx := ctxFor(t, 30*time.Second)
	ts := time.UnixMilli(1_700_000_000_000)
	var ds []aioproducer.Delivery
	for i := range 4 {
		fut, err := p.Produce(ctx, &aioproducer.Message{
			Topic: "orders", Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i)),
			Headers: []aioproducer.Header{{Key: "i", Value: []byte(strconv.Itoa(i))}}, Timestamp: ts,
			Partition: aioproducer.ExplicitPartition(int32(i % 2)),
		})
		require.NoError(t, err)
		d, err := fut.Wait(ctx)
		require.NoError(t, err)
		ds = append(ds, d)
	}
	recs := c.Records(t, "orders", 4)
	// Sorted by partition, then offset: 0, 2 on partition 0; 1, 3 on partition 1.
	for j, i := range []int{0, 2, 1, 3} {
		r := recs[j]
		assert.Equal(t, "orders", r.Topic)
		assert.Equal(t, ds[i].Partition, r.Partition)
		assert.Equal(t, ds[i].Offset, r.Offset)
		assert.Equal(t, "k"+strconv.Itoa(i), string(r.Key))
		assert.Equal(t, "v"+strconv.Itoa(i), string(r.Value))
		h, ok := r.Header("i")
		assert.True(t, ok)
		assert.Equal(t, strconv.Itoa(i), string(h))
		_, ok = r.Header("missing")
		assert.False(t, ok)
		assert.True(t, ts.Equal(r.Timestamp), "CreateTime %v", r.Timestamp)
	}
	again, err := c.ReadTopic(ctx, "orders")
	require.NoError(t, err)
	assert.Equal(t, recs, again, "reading does not consume")
}

func TestClusterReadTopic(t *testing.T) {
	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic("empty", 3))
	ctx := ctxFor(t, 30*time.Second)
	recs, err := c.ReadTopic(ctx, "empty")
	require.NoError(t, err)
	assert.Empty(t, recs)

	_, err = c.ReadTopic(ctx, "no-such-topic")
	assert.Error(t, err)

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = c.WaitRecords(short, "empty", 1)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// A partition written in transactions ends with a transaction marker, a control record that no
// consumer returns: ReadTopic knows the end from the consumer's end-of-partition event instead.
func TestClusterReadTopicWrittenInTransactions(t *testing.T) {
	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic("txn", 1))
	p := c.NewProducer(t, kafka.ConfigMap{"transactional.id": "read-txn"})
	ctx := ctxFor(t, 30*time.Second)
	require.NoError(t, p.InitTransactions(ctx))
	for txn := range 2 {
		require.NoError(t, p.BeginTransaction())
		for i := range 3 {
			_, err := p.Produce(ctx, &aioproducer.Message{Topic: "txn", Value: []byte(strconv.Itoa(3*txn + i))})
			require.NoError(t, err)
		}
		require.NoError(t, p.CommitTransaction(ctx))
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	recs, err := c.ReadTopic(rctx, "txn") // offsets 0-2, a marker, 4-6, a marker
	require.NoError(t, err)
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Value))
	}
	assert.Equal(t, []string{"0", "1", "2", "3", "4", "5"}, got)
}

func TestClusterWaitRecordsWaitsForTheTopic(t *testing.T) {
	c := aioproducertest.NewCluster(t)
	p := c.NewProducer(t, nil)
	ctx := ctxFor(t, 30*time.Second)
	got := make(chan []aioproducertest.Record, 1)
	go func() {
		recs, err := c.WaitRecords(ctx, "late", 2)
		assert.NoError(t, err)
		got <- recs
	}()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, c.CreateTopic("late", 1))
	for i := range 2 {
		_, err := p.Produce(ctx, &aioproducer.Message{Topic: "late", Value: []byte(strconv.Itoa(i))})
		require.NoError(t, err)
	}
	require.NoError(t, p.Flush(ctx))
	recs := <-got
	require.Len(t, recs, 2)
	assert.Equal(t, "0", string(recs[0].Value))
}

func TestClusterBrokerDownAndUp(t *testing.T) {
	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic("t", 1))
	p := c.NewProducer(t, nil)
	ctx := ctxFor(t, 60*time.Second)
	fut, err := p.Produce(ctx, &aioproducer.Message{Topic: "t", Value: []byte("warm-up")})
	require.NoError(t, err)
	_, err = fut.Wait(ctx)
	require.NoError(t, err)

	require.NoError(t, c.SetBrokerDown(1))
	fut, err = p.Produce(ctx, &aioproducer.Message{Topic: "t", Value: []byte("while down")})
	require.NoError(t, err)
	select {
	case <-fut.Done():
		_, err := fut.Wait(ctx)
		t.Fatalf("delivered while the only broker was down: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	require.NoError(t, c.SetBrokerUp(1))
	d, err := fut.Wait(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, d.Offset)
}

func TestClusterRoundTripDelay(t *testing.T) {
	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic("t", 1))
	p := c.NewProducer(t, nil)
	ctx := ctxFor(t, 60*time.Second)
	produce := func() time.Duration {
		start := time.Now()
		fut, err := p.Produce(ctx, &aioproducer.Message{Topic: "t", Value: []byte("v")})
		require.NoError(t, err)
		_, err = fut.Wait(ctx)
		require.NoError(t, err)
		return time.Since(start)
	}
	produce() // connects
	const delay = 300 * time.Millisecond
	require.NoError(t, c.SetRoundTripDelay(1, delay))
	assert.GreaterOrEqual(t, produce(), delay)
	require.NoError(t, c.SetRoundTripDelay(1, 0))
}

func TestClusterConfigAndStartCluster(t *testing.T) {
	c, err := aioproducertest.StartCluster(aioproducertest.Brokers(3))
	require.NoError(t, err)
	defer c.Close()
	defer c.Close() // idempotent
	cm := c.Config(kafka.ConfigMap{"linger.ms": 1}, kafka.ConfigMap{"client.id": "x"})
	assert.Equal(t, kafka.ConfigMap{"bootstrap.servers": c.Bootstrap(), "linger.ms": 1, "client.id": "x"}, cm)
	assert.NotNil(t, c.MockCluster())
}

// The Fake assigns a keyed message the partition librdkafka's default partitioner gives it.
func TestFakePartitionsKeysAsLibrdkafka(t *testing.T) {
	const partitions = 5
	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic("t", partitions))
	p := c.NewProducer(t, nil)
	ctx := ctxFor(t, 30*time.Second)
	for i := range 40 {
		key := []byte("key-" + strconv.Itoa(i))
		fut, err := p.Produce(ctx, &aioproducer.Message{Topic: "t", Key: key})
		require.NoError(t, err)
		d, err := fut.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, int32(crc32.ChecksumIEEE(key)%partitions), d.Partition, "key %s", key)
	}
}

// A deadline that passes while ReadTopic or WaitRecords waits for the cluster ends them with an error
// wrapping context.DeadlineExceeded, not with librdkafka's "Local: Timed out" (its timeout, counted in
// whole milliseconds, can end just before ctx's deadline fires). The broker answers nothing for 5 s,
// so every read waits on it until the deadline.
func TestClusterReadEndsWithTheDeadlinesError(t *testing.T) {
	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic("slow", 1))
	require.NoError(t, c.SetRoundTripDelay(1, 5*time.Second))
	for i := range 10 {
		for name, read := range map[string]func(context.Context) error{
			"ReadTopic": func(ctx context.Context) error {
				_, err := c.ReadTopic(ctx, "slow")
				return err
			},
			"WaitRecords": func(ctx context.Context) error {
				_, err := c.WaitRecords(ctx, "slow", 1)
				return err
			},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			start := time.Now()
			err := read(ctx)
			cancel()
			require.ErrorIs(t, err, context.DeadlineExceeded, "%s, try %d", name, i)
			assert.Less(t, time.Since(start), 2*time.Second, "%s, try %d", name, i)
		}
	}
}

package aioproducertest_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func msg(topic, key, value string) *aioproducer.Message {
	m := &aioproducer.Message{Topic: topic, Value: []byte(value)}
	if key != "" {
		m.Key = []byte(key)
	}
	return m
}

func TestFakeDeliversEveryMessageAtTheNextOffset(t *testing.T) {
	f := aioproducertest.NewFake(t)
	ctx := ctxFor(t, 10*time.Second)
	for i := range 3 {
		fut, err := f.Produce(ctx, msg("orders", "k", "v"+strconv.Itoa(i)))
		require.NoError(t, err)
		d, err := fut.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, "orders", d.Topic)
		assert.EqualValues(t, 0, d.Partition)
		assert.EqualValues(t, i, d.Offset, "offsets count from 0 per partition")
		assert.False(t, d.Timestamp.IsZero(), "the CreateTime the producer took")
	}
	h := f.History()
	require.Len(t, h, 3)
	for i, s := range h {
		assert.Equal(t, "v"+strconv.Itoa(i), string(s.Message.Value))
		assert.True(t, s.Completed)
		assert.EqualValues(t, i, s.Offset)
		assert.NoError(t, s.Err)
	}
	assert.Len(t, f.Messages(), 3)
	assert.Zero(t, f.Outstanding())
}

func TestFakeAssignsPartitionsDeterministically(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.WithPartitions("t", 3))
	ctx := ctxFor(t, 10*time.Second)
	var futs []*aioproducer.Future
	produce := func(m *aioproducer.Message) {
		fut, err := f.Produce(ctx, m)
		require.NoError(t, err)
		futs = append(futs, fut)
	}
	for i := range 6 {
		produce(msg("t", "key-"+strconv.Itoa(i), "keyed"))
	}
	for range 4 {
		produce(msg("t", "", "null key"))
	}
	pinned := msg("t", "key-0", "pinned")
	pinned.Partition = aioproducer.ExplicitPartition(2)
	produce(pinned)
	produce(msg("other", "key-0", "a topic of 1 partition"))

	next := map[string]int64{}
	for i, fut := range futs {
		d, err := fut.Wait(ctx)
		require.NoError(t, err)
		var want int32
		switch {
		case i < 6:
			want = int32(crc32.ChecksumIEEE([]byte("key-"+strconv.Itoa(i))) % 3)
		case i < 10:
			want = int32((i - 6) % 3) // round robin
		case i == 10:
			want = 2
		default:
			want = 0
		}
		assert.Equal(t, want, d.Partition, "message %d", i)
		tp := d.Topic + "/" + strconv.Itoa(int(d.Partition))
		assert.Equal(t, next[tp], d.Offset, "message %d: offsets count per partition", i)
		next[tp]++
	}
}

// An empty (not nil) key is placed like a null one: librdkafka's default partitioner,
// consistent_random, hashes only non-empty keys and places the others at random, so the Fake takes
// them round robin, not to the CRC-32 of "" (partition 0).
func TestFakePlacesAnEmptyKeyLikeANullOne(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.WithPartitions("t", 3))
	ctx := ctxFor(t, 10*time.Second)
	var futs []*aioproducer.Future
	for i := range 6 {
		m := &aioproducer.Message{Topic: "t", Value: []byte(strconv.Itoa(i))}
		if i%2 == 1 {
			m.Key = []byte{}
		}
		fut, err := f.Produce(ctx, m)
		require.NoError(t, err)
		futs = append(futs, fut)
	}
	for i, fut := range futs {
		d, err := fut.Wait(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, i%3, d.Partition, "message %d (key nil: %v): round robin", i, i%2 == 0)
	}
	for i, s := range f.History() {
		assert.Equal(t, i%2 == 1, s.Message.Key != nil, "message %d keeps its key as given", i)
	}
}

func TestFakeFailsAMessageForAPartitionTheTopicDoesNotHave(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.WithPartitions("t", 2))
	ctx := ctxFor(t, 10*time.Second)
	m := msg("t", "", "v")
	m.Partition = aioproducer.ExplicitPartition(2)
	fut, err := f.Produce(ctx, m)
	require.NoError(t, err)
	_, err = fut.Wait(ctx)
	var de *aioproducer.DeliveryError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, kafka.ErrUnknownPartition, de.Err.Code())
}

func TestFakeFailWithChoosesTheOutcomeOfEachMessage(t *testing.T) {
	boom := errors.New("boom")
	f := aioproducertest.NewFake(t, aioproducertest.FailWith(func(m *aioproducer.Message) error {
		switch string(m.Key) {
		case "plain":
			return boom
		case "retriable":
			return kafka.NewError(kafka.ErrNotEnoughReplicas, "Broker: Not enough in-sync replicas", false)
		case "timeout":
			return kafka.NewError(kafka.ErrMsgTimedOut, "Local: Message timed out", false)
		}
		return nil
	}))
	ctx := ctxFor(t, 10*time.Second)
	outcome := func(key string) (aioproducer.Delivery, error) {
		fut, err := f.Produce(ctx, msg("t", key, "v"))
		require.NoError(t, err)
		return fut.Wait(ctx)
	}

	_, err := outcome("plain")
	assert.Same(t, boom, err, "an error that is no kafka.Error reaches the caller unchanged")

	_, err = outcome("retriable")
	var de *aioproducer.DeliveryError
	require.ErrorAs(t, err, &de, "a kafka.Error arrives as a *DeliveryError, as from librdkafka")
	assert.Equal(t, "t", de.Topic)
	assert.Equal(t, kafka.ErrNotEnoughReplicas, de.Err.Code())
	assert.False(t, aioproducer.IsOutcomeUnknown(err))

	_, err = outcome("timeout")
	assert.True(t, aioproducer.IsOutcomeUnknown(err))

	d, err := outcome("fine")
	require.NoError(t, err)
	assert.EqualValues(t, 0, d.Offset, "failed messages take no offset")

	st := f.Stats()
	assert.EqualValues(t, 1, st.Delivered)
	assert.EqualValues(t, 3, st.Failed)
	h := f.History()
	require.Len(t, h, 4)
	assert.Same(t, boom, h[0].Err)
	assert.EqualValues(t, -1, h[0].Offset)
}

func TestFakeManualCompletion(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.ManualCompletion())
	ctx := ctxFor(t, 10*time.Second)
	var futs []*aioproducer.Future
	for i := range 4 {
		fut, err := f.Produce(ctx, msg("t", "", strconv.Itoa(i)))
		require.NoError(t, err)
		futs = append(futs, fut)
	}
	require.Equal(t, 4, f.Outstanding())
	for _, fut := range futs {
		select {
		case <-fut.Done():
			t.Fatal("a future resolved before the test completed it")
		default:
		}
	}

	require.True(t, f.CompleteNext())
	d, err := futs[0].Wait(ctx) // resolved when CompleteNext returns
	require.NoError(t, err)
	assert.EqualValues(t, 0, d.Offset)

	boom := errors.New("boom")
	require.True(t, f.FailNext(boom))
	_, err = futs[1].Wait(ctx)
	assert.Same(t, boom, err)

	assert.Equal(t, 2, f.Complete(5), "Complete returns how many there were")
	for i, fut := range futs[2:] {
		d, err := fut.Wait(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, i+1, d.Offset, "the failed message took no offset")
	}
	assert.False(t, f.CompleteNext(), "nothing outstanding")
	assert.False(t, f.FailNext(boom))
	assert.Zero(t, f.CompleteAll())
	assert.Zero(t, f.Complete(0))
}

func TestFakeManualCompletionOfManyAtOnce(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.ManualCompletion(),
		aioproducertest.FailWith(func(m *aioproducer.Message) error {
			if string(m.Value) == "bad" {
				return kafka.NewError(kafka.ErrMsgSizeTooLarge, "Broker: Message size too large", false)
			}
			return nil
		}))
	ctx := ctxFor(t, 10*time.Second)
	futs, err := f.ProduceBatch(ctx, []*aioproducer.Message{msg("t", "", "ok"), msg("t", "", "bad"), msg("t", "", "ok")})
	require.NoError(t, err)
	assert.Equal(t, 3, f.CompleteAll())
	_, err = futs[0].Wait(ctx)
	assert.NoError(t, err)
	_, err = futs[1].Wait(ctx)
	assert.Error(t, err, "CompleteAll applies FailWith")
	_, err = futs[2].Wait(ctx)
	assert.NoError(t, err)

	futs, err = f.ProduceBatch(ctx, []*aioproducer.Message{msg("t", "", "ok"), msg("t", "", "ok")})
	require.NoError(t, err)
	boom := errors.New("boom")
	assert.Equal(t, 2, f.FailAll(boom))
	for _, fut := range futs {
		_, err := fut.Wait(ctx)
		assert.Same(t, boom, err)
	}
	assert.Panics(t, func() { f.FailAll(nil) })
	assert.Panics(t, func() { f.FailNext(nil) })
}

func TestFakeCallbacksChannelsAndFutures(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.FailWith(func(m *aioproducer.Message) error {
		if string(m.Value) == "fail" {
			return errors.New("chosen")
		}
		return nil
	}))
	ctx := ctxFor(t, 10*time.Second)

	var mu sync.Mutex
	var got []string
	record := func(what string) func(aioproducer.Delivery, error) {
		return func(d aioproducer.Delivery, err error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, fmt.Sprintf("%s %d %v", what, d.Offset, err))
		}
	}
	require.NoError(t, f.ProduceFunc(ctx, msg("t", "", "a"), record("func")))
	require.NoError(t, f.ProduceFunc(ctx, msg("t", "", "fail"), record("func")))
	ch := make(chan aioproducer.Result, 2)
	require.NoError(t, f.ProduceChan(ctx, msg("t", "", "b"), ch))
	fut, err := f.TryProduce(msg("t", "", "c"))
	require.NoError(t, err)

	require.NoError(t, f.Flush(ctx), "Flush returns once every callback has run")
	mu.Lock()
	assert.Equal(t, []string{"func 0 <nil>", "func 0 chosen"}, got)
	mu.Unlock()
	r := <-ch
	assert.Equal(t, "b", string(r.Message.Value))
	assert.EqualValues(t, 1, r.Delivery.Offset)
	assert.NoError(t, r.Err)
	d, err := fut.Wait(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 2, d.Offset)
}

func TestFakeFlushInManualModeWaitsForTheTest(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.ManualCompletion())
	ctx := ctxFor(t, 10*time.Second)
	_, err := f.Produce(ctx, msg("t", "", "v"))
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, f.Flush(short), context.DeadlineExceeded, "nothing completes the message")

	called := make(chan struct{})
	require.NoError(t, f.ProduceFunc(ctx, msg("t", "", "v"), func(aioproducer.Delivery, error) { close(called) }))
	flushed := make(chan error, 1)
	go func() { flushed <- f.Flush(ctx) }()
	select {
	case err := <-flushed:
		t.Fatalf("Flush returned %v before the messages were completed", err)
	case <-time.After(50 * time.Millisecond):
	}
	assert.Equal(t, 2, f.CompleteAll())
	require.NoError(t, <-flushed)
	select {
	case <-called:
	default:
		t.Fatal("Flush returned before the callback ran")
	}
}

func TestFakeCloseInManualModePurgesWhatIsOutstandingWhenCtxEnds(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.ManualCompletion())
	ctx := ctxFor(t, 10*time.Second)
	delivered, err := f.Produce(ctx, msg("t", "", "completed"))
	require.NoError(t, err)
	require.True(t, f.CompleteNext())
	var outcomes []error
	var mu sync.Mutex
	for range 3 {
		require.NoError(t, f.ProduceFunc(ctx, msg("t", "", "left"), func(_ aioproducer.Delivery, err error) {
			mu.Lock()
			outcomes = append(outcomes, err)
			mu.Unlock()
		}))
	}
	fut, err := f.Produce(ctx, msg("t", "", "left"))
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = f.Close(short)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "Close waited for the test, then its ctx ended")

	_, err = delivered.Wait(ctx)
	assert.NoError(t, err)
	_, err = fut.Wait(ctx)
	assert.ErrorIs(t, err, aioproducer.ErrClosed, "purged as the real producer purges what it never sent")
	assert.False(t, aioproducer.IsOutcomeUnknown(err))
	mu.Lock()
	require.Len(t, outcomes, 3, "exactly one outcome each, all handed over when Close returns")
	for _, err := range outcomes {
		assert.ErrorIs(t, err, aioproducer.ErrClosed)
	}
	mu.Unlock()

	_, err = f.Produce(ctx, msg("t", "", "late"))
	assert.ErrorIs(t, err, aioproducer.ErrClosed)
	assert.False(t, f.CompleteNext())
	assert.Equal(t, 5, len(f.History()))
}

func TestFakeCloseInManualModeWaitsForTheTest(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.ManualCompletion())
	ctx := ctxFor(t, 10*time.Second)
	fut, err := f.Produce(ctx, msg("t", "", "v"))
	require.NoError(t, err)
	closed := make(chan error, 1)
	go func() { closed <- f.Close(ctx) }()
	require.Eventually(t, func() bool { return f.Outstanding() == 1 }, 5*time.Second, time.Millisecond)
	assert.True(t, f.CompleteNext())
	require.NoError(t, <-closed)
	_, err = fut.Wait(ctx)
	assert.NoError(t, err)
}

func TestFakeClearForgetsTheHistory(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.ManualCompletion())
	ctx := ctxFor(t, 10*time.Second)
	_, err := f.Produce(ctx, msg("t", "", "a"))
	require.NoError(t, err)
	f.Clear()
	assert.Empty(t, f.History())
	assert.Equal(t, 1, f.Outstanding(), "outstanding messages stay outstanding")
	_, err = f.Produce(ctx, msg("t", "", "b"))
	require.NoError(t, err)
	assert.Equal(t, 2, f.CompleteAll())
	h := f.History()
	require.Len(t, h, 1)
	assert.Equal(t, "b", string(h[0].Message.Value))
	assert.EqualValues(t, 1, h[0].Offset)
}

func TestFakeBufferLimitsApply(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.ManualCompletion(),
		aioproducertest.WithProducerOptions(aioproducer.WithMaxBuffered(2, 1<<20)))
	ctx := ctxFor(t, 10*time.Second)
	for range 2 {
		_, err := f.TryProduce(msg("t", "", "v"))
		require.NoError(t, err)
	}
	_, err := f.TryProduce(msg("t", "", "v"))
	assert.ErrorIs(t, err, aioproducer.ErrBufferFull)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = f.Produce(short, msg("t", "", "v"))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	require.True(t, f.CompleteNext())
	require.Eventually(t, func() bool {
		fut, err := f.TryProduce(msg("t", "", "v"))
		return err == nil && fut != nil
	}, 5*time.Second, time.Millisecond, "room comes back once an outcome is handed over")
}

func TestFakeInvalidOptionIsAnError(t *testing.T) {
	_, err := aioproducertest.StartFake(aioproducertest.WithProducerOptions(aioproducer.WithBatchSize(0)))
	var ce *aioproducer.ConfigError
	assert.ErrorAs(t, err, &ce)
}

func TestFakeInvalidMessageIsRefusedAsByTheProducer(t *testing.T) {
	f := aioproducertest.NewFake(t)
	_, err := f.Produce(context.Background(), msg("", "", "no topic"))
	assert.ErrorIs(t, err, aioproducer.ErrInvalidMessage)
	assert.Empty(t, f.History())
}

func TestFakeConcurrentProducersKeepOrderPerKey(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.WithPartitions("t", 4))
	ctx := ctxFor(t, 30*time.Second)
	const producers, each = 8, 200
	var wg sync.WaitGroup
	for g := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "producer-" + strconv.Itoa(g)
			for i := range each {
				if _, err := f.Produce(ctx, msg("t", key, strconv.Itoa(i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, f.Flush(ctx))
	h := f.History()
	require.Len(t, h, producers*each)
	next := map[string]int{}
	lastOffset := map[int32]int64{0: -1, 1: -1, 2: -1, 3: -1}
	for _, s := range h {
		k := string(s.Message.Key)
		assert.Equal(t, strconv.Itoa(next[k]), string(s.Message.Value), "key %s out of order", k)
		next[k]++
		assert.Equal(t, lastOffset[s.Partition]+1, s.Offset, "history is in offset order per partition")
		lastOffset[s.Partition] = s.Offset
	}
	st := f.Stats()
	assert.EqualValues(t, producers*each, st.Delivered)
	assert.Zero(t, st.HeldMessages)
}

func TestFakeConcurrentManualCompletion(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.ManualCompletion())
	ctx := ctxFor(t, 30*time.Second)
	const n = 500
	var outcomes sync.Map
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			id := i
			if err := f.ProduceFunc(ctx, msg("t", "", strconv.Itoa(i)), func(_ aioproducer.Delivery, err error) {
				if _, dup := outcomes.LoadOrStore(id, err); dup {
					t.Errorf("message %d: second outcome", id)
				}
			}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	completed := 0
	for completed < n {
		if f.CompleteNext() {
			completed++
		}
		if completed%3 == 0 && f.FailNext(errors.New("every third")) {
			completed++
		}
	}
	wg.Wait()
	require.NoError(t, f.Flush(ctx))
	count := 0
	outcomes.Range(func(any, any) bool { count++; return true })
	assert.Equal(t, n, count, "exactly one outcome per message")
}

func TestFakeIsAClient(t *testing.T) {
	var c aioproducer.Client = aioproducertest.NewFake(t)
	fut, err := c.Produce(context.Background(), msg("t", "", "v"))
	require.NoError(t, err)
	_, err = fut.Wait(context.Background())
	require.NoError(t, err)
	require.NoError(t, c.Close(context.Background()))
	require.NoError(t, c.Close(context.Background()), "idempotent")
}

// On a Fake with ManualCompletion, the messages not yet completed are what Purge fails: a code path
// that drops a backlog (a tenant deleted) is tested without a cluster.
func TestFakePurgeFailsWhatIsNotCompleted(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.ManualCompletion())
	ctx := ctxFor(t, 10*time.Second)
	a, err := f.Produce(ctx, msg("t", "", "a"))
	require.NoError(t, err)
	require.True(t, f.CompleteNext(), "a is delivered")
	b, err := f.Produce(ctx, msg("t", "", "b"))
	require.NoError(t, err)
	require.NoError(t, f.Health())

	require.NoError(t, f.Purge(ctx))
	_, err = a.Wait(ctx)
	require.NoError(t, err)
	require.True(t, b.IsDone(), "resolved when Purge returns")
	_, err = b.Wait(ctx)
	require.ErrorIs(t, err, aioproducer.ErrPurged)
	assert.False(t, aioproducer.IsOutcomeUnknown(err))
	assert.Zero(t, f.Outstanding())

	c, err := f.Produce(ctx, msg("t", "", "c"))
	require.NoError(t, err, "the Fake stays open")
	require.True(t, f.CompleteNext())
	_, err = c.Wait(ctx)
	require.NoError(t, err)
}

func TestFakeBacksATypedProducer(t *testing.T) {
	f := aioproducertest.NewFake(t)
	tp := aioproducer.NewTyped(f.Producer, aioproducer.StringSerializer{}, aioproducer.StringSerializer{})
	ctx := ctxFor(t, 10*time.Second)
	fut, err := tp.Produce(ctx, &aioproducer.TypedMessage[string, string]{Topic: "t", Key: "k", Value: "v"})
	require.NoError(t, err)
	_, err = fut.Wait(ctx)
	require.NoError(t, err)
	require.Len(t, f.Messages(), 1)
	assert.Equal(t, "v", string(f.Messages()[0].Value))
}

// TestFakeAnswersPartitionsAndRunsThePartitioner: the Fake's Partitions is the count WithPartitions
// gave the topic, else 1; a Partitioner gets that count and the Fake takes its choice as the partition.
func TestFakeAnswersPartitionsAndRunsThePartitioner(t *testing.T) {
	last := func(m *aioproducer.Message, partitions int32) int32 { return partitions - 1 }
	f := aioproducertest.NewFake(t, aioproducertest.WithPartitions("t", 3),
		aioproducertest.WithProducerOptions(aioproducer.WithPartitioner(last)))
	ctx := ctxFor(t, 10*time.Second)
	for topic, want := range map[string]int32{"t": 3, "other": 1} {
		n, err := f.Partitions(ctx, topic)
		require.NoError(t, err)
		assert.Equal(t, want, n, topic)
	}
	for _, m := range []*aioproducer.Message{msg("t", "k", "v"), msg("t", "", "v"), msg("other", "k", "v")} {
		fut, err := f.Produce(ctx, m)
		require.NoError(t, err)
		d, err := fut.Wait(ctx)
		require.NoError(t, err)
		n, _ := f.Partitions(ctx, m.Topic)
		assert.Equal(t, n-1, d.Partition, "%s key %q", m.Topic, m.Key)
	}
	require.NoError(t, f.Close(ctx))
	_, err := f.Partitions(ctx, "t")
	require.ErrorIs(t, err, aioproducer.ErrClosed)
}

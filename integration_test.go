package aioproducer_test

// Integration tests against librdkafka's in-process mock cluster: they use only the public API, produce
// through a real librdkafka producer and read every message back with a confluent-kafka-go consumer.
// Goroutine leaks are checked by the package's TestMain (main_test.go), which this binary shares.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
)

// itLogger keeps the producer's and librdkafka's log lines out of the test output.
var itLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// itCluster starts a mock cluster of brokers brokers (ids 1..brokers) holding topics (name → partition
// count), closed at cleanup.
func itCluster(t *testing.T, brokers int, topics map[string]int) *kafka.MockCluster {
	t.Helper()
	mc, err := kafka.NewMockCluster(brokers)
	require.NoError(t, err)
	t.Cleanup(mc.Close)
	for name, partitions := range topics {
		require.NoError(t, mc.CreateTopic(name, partitions, 1))
	}
	return mc
}

// itSetBrokers takes every broker of a mock cluster of brokers brokers down, or up again.
func itSetBrokers(t *testing.T, mc *kafka.MockCluster, brokers int, up bool) {
	t.Helper()
	for id := 1; id <= brokers; id++ {
		if up {
			require.NoError(t, mc.SetBrokerUp(id))
		} else {
			require.NoError(t, mc.SetBrokerDown(id))
		}
	}
}

// itNew creates a producer for bootstrap with the extra librdkafka settings and a quiet logger.
func itNew(t *testing.T, bootstrap string, extra kafka.ConfigMap, opts ...aioproducer.Option) *aioproducer.Producer {
	t.Helper()
	cm := kafka.ConfigMap{"bootstrap.servers": bootstrap}
	for k, v := range extra {
		cm[k] = v
	}
	p, err := aioproducer.New(cm, append([]aioproducer.Option{aioproducer.WithLogger(itLogger)}, opts...)...)
	require.NoError(t, err)
	return p
}

// itProducer is itNew for a producer that the test expects to close cleanly: at cleanup Close must
// return nil (Close is idempotent, so a test may close it itself first).
func itProducer(t *testing.T, bootstrap string, extra kafka.ConfigMap, opts ...aioproducer.Option) *aioproducer.Producer {
	t.Helper()
	p := itNew(t, bootstrap, extra, opts...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, p.Close(ctx), "Close at cleanup")
	})
	return p
}

// itCtx is a context for one test, cancelled at cleanup.
func itCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// itRecord is a message read back from the mock cluster.
type itRecord struct {
	Topic         string
	Partition     int32
	Offset        int64
	Key, Value    []byte
	Headers       []kafka.Header
	Timestamp     time.Time
	TimestampType kafka.TimestampType
}

func (r itRecord) loc() itLoc { return itLoc{r.Topic, r.Partition, r.Offset} }

// itLoc is where a message is in the log.
type itLoc struct {
	Topic     string
	Partition int32
	Offset    int64
}

func (l itLoc) String() string { return fmt.Sprintf("%s[%d]@%d", l.Topic, l.Partition, l.Offset) }

func itDeliveryLoc(d aioproducer.Delivery) itLoc { return itLoc{d.Topic, d.Partition, d.Offset} }

// itConsume reads back everything in topic's partitions (0..partitions-1) from the beginning, assigning
// them explicitly (no group join), and returns it sorted by partition and offset. It requires exactly n
// messages: the partitions' watermarks must add up to n, and n messages must arrive within 8 s.
func itConsume(t *testing.T, bootstrap, topic string, partitions, n int) []itRecord {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"group.id":           "it-" + topic + "-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"enable.auto.commit": false,
		"auto.offset.reset":  "earliest",
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()

	var total int64
	tps := make([]kafka.TopicPartition, partitions)
	for p := range partitions {
		low, high, err := c.QueryWatermarkOffsets(topic, int32(p), 5000)
		require.NoError(t, err, "watermarks of %s[%d]", topic, p)
		require.Zero(t, low, "low watermark of %s[%d]", topic, p)
		total += high - low
		tps[p] = kafka.TopicPartition{Topic: &topic, Partition: int32(p), Offset: kafka.OffsetBeginning}
	}
	require.EqualValues(t, n, total, "messages in %s by its watermarks", topic)
	require.NoError(t, c.Assign(tps))

	out := make([]itRecord, 0, n)
	for deadline := time.Now().Add(8 * time.Second); len(out) < n && time.Now().Before(deadline); {
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			require.NoError(t, e.TopicPartition.Error)
			out = append(out, itRecord{
				Topic: *e.TopicPartition.Topic, Partition: e.TopicPartition.Partition,
				Offset: int64(e.TopicPartition.Offset), Key: e.Key, Value: e.Value, Headers: e.Headers,
				Timestamp: e.Timestamp, TimestampType: e.TimestampType,
			})
		case kafka.Error:
			require.False(t, e.IsFatal(), "consumer: %v", e)
		}
	}
	require.Len(t, out, n, "messages read back from %s", topic)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out
}

// itWaitAll waits for every future and requires each to be delivered.
func itWaitAll(t *testing.T, ctx context.Context, futs []*aioproducer.Future) []aioproducer.Delivery {
	t.Helper()
	ds := make([]aioproducer.Delivery, len(futs))
	for i, f := range futs {
		d, err := f.Wait(ctx)
		require.NoError(t, err, "future %d", i)
		ds[i] = d
	}
	return ds
}

// itRequireReadBack requires that recs, read back from the log, are exactly the messages msgs with
// their deliveries ds: each delivery names a distinct place, and the record found there has the
// message's key, value and headers (nil and empty header values told apart).
func itRequireReadBack(t *testing.T, msgs []*aioproducer.Message, ds []aioproducer.Delivery, recs []itRecord) {
	t.Helper()
	require.Len(t, ds, len(msgs))
	require.Len(t, recs, len(msgs), "records read back")
	byLoc := make(map[itLoc]itRecord, len(recs))
	for _, r := range recs {
		byLoc[r.loc()] = r
	}
	seen := make(map[itLoc]int, len(ds))
	for i, m := range msgs {
		loc := itDeliveryLoc(ds[i])
		if j, dup := seen[loc]; dup {
			require.Failf(t, "two deliveries at one place", "messages %d and %d both delivered to %v", j, i, loc)
		}
		seen[loc] = i
		r, ok := byLoc[loc]
		require.True(t, ok, "message %d: nothing read back at its delivery %v", i, loc)
		require.Equal(t, m.Key, r.Key, "message %d key at %v", i, loc)
		require.Equal(t, m.Value, r.Value, "message %d value at %v", i, loc)
		require.Equal(t, m.Headers, r.Headers, "message %d headers at %v", i, loc)
	}
}

func TestProduceDeliversEveryMessageIntactInKeyOrderWhereItsFutureSays(t *testing.T) {
	topics := []string{"rt-a", "rt-b", "rt-c"}
	const partitions = 4
	mc := itCluster(t, 1, map[string]int{topics[0]: partitions, topics[1]: partitions, topics[2]: partitions})
	p := itProducer(t, mc.BootstrapServers(), nil, aioproducer.WithWorkers(4))
	ctx := itCtx(t, 30*time.Second)

	const goroutines, perGoroutine, keysPerGoroutine = 4, 1500, 20
	base := time.Date(2024, 5, 17, 9, 30, 0, 0, time.UTC)
	type sent struct {
		msg           *aioproducer.Message
		fut           *aioproducer.Future
		seq           int
		before, after time.Time // around the Produce call
	}
	sents := make([][]sent, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perGoroutine {
				k, seq := i%keysPerGoroutine, i/keysPerGoroutine
				key := fmt.Sprintf("g%d-k%02d", g, k)
				m := &aioproducer.Message{
					Topic: topics[(g*keysPerGoroutine+k)%len(topics)], // a key always goes to one topic
					Key:   []byte(key),
					Value: fmt.Appendf(nil, "%s#%03d", key, seq),
					Headers: []aioproducer.Header{
						{Key: "seq", Value: []byte(strconv.Itoa(seq))},
						{Key: "null", Value: nil},
					},
				}
				if seq%2 == 0 { // explicit timestamps on half, alternating per key
					m.Timestamp = base.Add(time.Duration(g*perGoroutine+i) * time.Millisecond)
				}
				before := time.Now()
				f, err := p.Produce(ctx, m)
				after := time.Now()
				if err != nil {
					errs[g] = fmt.Errorf("goroutine %d message %d: %w", g, i, err)
					return
				}
				sents[g] = append(sents[g], sent{msg: m, fut: f, seq: seq, before: before, after: after})
			}
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))

	perTopic := make(map[string]int)
	bySeq := make(map[string]sent) // "topic/key#seq" → message
	byLoc := make(map[itLoc]sent)
	deliveries := make(map[*aioproducer.Future]aioproducer.Delivery)
	for _, ss := range sents {
		require.Len(t, ss, perGoroutine)
		for _, s := range ss {
			d, err := s.fut.Wait(ctx)
			require.NoError(t, err, "%s", s.msg.Value)
			require.Same(t, s.msg, s.fut.Message())
			require.Equal(t, s.msg.Topic, d.Topic)
			require.GreaterOrEqual(t, d.Partition, int32(0))
			require.Less(t, d.Partition, int32(partitions))
			if s.msg.Timestamp.IsZero() {
				// The time Produce accepted the message, in the milliseconds Kafka keeps.
				require.False(t, d.Timestamp.Before(s.before.Truncate(time.Millisecond)), "%s: delivery timestamp %v before Produce was called at %v", s.msg.Value, d.Timestamp, s.before)
				require.False(t, d.Timestamp.After(s.after), "%s: delivery timestamp %v after Produce returned at %v", s.msg.Value, d.Timestamp, s.after)
			} else {
				require.True(t, d.Timestamp.Equal(s.msg.Timestamp), "%s: delivery timestamp %v, want %v", s.msg.Value, d.Timestamp, s.msg.Timestamp)
			}
			loc := itDeliveryLoc(d)
			if other, dup := byLoc[loc]; dup {
				require.Failf(t, "two deliveries at one place", "%s and %s both at %v", other.msg.Value, s.msg.Value, loc)
			}
			byLoc[loc] = s
			bySeq[s.msg.Topic+"/"+string(s.msg.Value)] = s
			deliveries[s.fut] = d
			perTopic[s.msg.Topic]++
		}
	}
	require.Len(t, bySeq, goroutines*perGoroutine)

	total := 0
	for _, topic := range topics {
		recs := itConsume(t, mc.BootstrapServers(), topic, partitions, perTopic[topic])
		total += len(recs)
		type keyState struct {
			partition int32
			next      int // the sequence number the next record must carry
		}
		keys := make(map[string]*keyState)
		values := make(map[string]bool, len(recs))
		for _, r := range recs {
			require.False(t, values[string(r.Value)], "%s read back twice", r.Value)
			values[string(r.Value)] = true

			s, ok := byLoc[r.loc()]
			require.True(t, ok, "record %s at %v: no future was delivered there", r.Value, r.loc())
			require.Equal(t, s.msg.Key, r.Key, "key at %v", r.loc())
			require.Equal(t, s.msg.Value, r.Value, "value at %v", r.loc())
			require.Equal(t, s.msg.Headers, r.Headers, "headers at %v (a nil header value must stay nil)", r.loc())
			require.Nil(t, r.Headers[1].Value, "null header at %v", r.loc())
			require.Equal(t, kafka.TimestampCreateTime, r.TimestampType, "timestamp type at %v", r.loc())
			want := s.msg.Timestamp
			if want.IsZero() {
				want = time.UnixMilli(deliveries[s.fut].Timestamp.UnixMilli())
			}
			require.True(t, want.Equal(r.Timestamp), "timestamp at %v: got %v, want %v", r.loc(), r.Timestamp, want)

			// Per key: one partition, sequence numbers 0, 1, 2, ... in offset order.
			ks := keys[string(r.Key)]
			if ks == nil {
				ks = &keyState{partition: r.Partition}
				keys[string(r.Key)] = ks
			}
			require.Equal(t, ks.partition, r.Partition, "key %s in two partitions", r.Key)
			require.Equal(t, ks.next, s.seq, "key %s: sequence at %v out of order", r.Key, r.loc())
			ks.next++
		}
		for key, ks := range keys {
			require.Equal(t, perGoroutine/keysPerGoroutine, ks.next, "messages of key %s", key)
		}
	}
	require.Equal(t, goroutines*perGoroutine, total)
	st := p.Stats()
	require.EqualValues(t, goroutines*perGoroutine, st.Delivered)
	require.Zero(t, st.Failed)
}

func TestProduceKeepsNullAndEmptyKeysValuesAndHeaderValuesApart(t *testing.T) {
	const topic = "nulls"
	mc := itCluster(t, 1, map[string]int{topic: 1})
	p := itProducer(t, mc.BootstrapServers(), nil)
	ctx := itCtx(t, 10*time.Second)

	msgs := []*aioproducer.Message{
		{Topic: topic, Key: nil, Value: nil},
		{Topic: topic, Key: []byte{}, Value: []byte{}},
		{Topic: topic, Key: []byte("k"), Value: []byte("v"), Headers: []aioproducer.Header{
			{Key: "null", Value: nil}, {Key: "empty", Value: []byte{}}, {Key: "dup", Value: []byte("1")}, {Key: "dup", Value: []byte("2")},
		}},
	}
	futs, err := p.ProduceBatch(ctx, msgs)
	require.NoError(t, err)
	ds := itWaitAll(t, ctx, futs)
	recs := itConsume(t, mc.BootstrapServers(), topic, 1, len(msgs))
	itRequireReadBack(t, msgs, ds, recs)
	for i, r := range recs {
		require.EqualValues(t, i, r.Offset)
	}
	// require.Equal treats nil and empty []byte as equal: tell them apart explicitly.
	require.Nil(t, recs[0].Key, "null key")
	require.Nil(t, recs[0].Value, "null value")
	require.NotNil(t, recs[1].Key, "empty key")
	require.Empty(t, recs[1].Key)
	require.NotNil(t, recs[1].Value, "empty value")
	require.Empty(t, recs[1].Value)
	require.Nil(t, recs[2].Headers[0].Value, "null header value")
	require.NotNil(t, recs[2].Headers[1].Value, "empty header value")
	require.Empty(t, recs[2].Headers[1].Value)
}

// Values from a few bytes to 100 KB arrive byte for byte, in order, whichever way the engine passes
// them to librdkafka (the engine copies small values into its arena and pins large ones).
func TestProduceDeliversSmallAndLargeValuesByteForByte(t *testing.T) {
	const topic = "sizes"
	mc := itCluster(t, 1, map[string]int{topic: 1})
	p := itProducer(t, mc.BootstrapServers(), nil)
	ctx := itCtx(t, 30*time.Second)

	var msgs []*aioproducer.Message
	for i, size := range []int{1, 100, 4095, 4096, 4097, 10_000, 100_000, 7, 65_536, 4096} {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(i*31 + j*7)
		}
		msgs = append(msgs, &aioproducer.Message{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: v})
	}
	futs, err := p.ProduceBatch(ctx, msgs)
	require.NoError(t, err)
	ds := itWaitAll(t, ctx, futs)
	recs := itConsume(t, mc.BootstrapServers(), topic, 1, len(msgs))
	itRequireReadBack(t, msgs, ds, recs)
	for i, r := range recs {
		require.Equal(t, msgs[i].Value, r.Value, "value %d (%d bytes)", i, len(msgs[i].Value))
	}
}

func TestProduceLetsThePartitionerChooseUnlessThePartitionIsExplicit(t *testing.T) {
	const topic, partitions = "parts", 4
	mc := itCluster(t, 1, map[string]int{topic: partitions})
	p := itProducer(t, mc.BootstrapServers(), nil)
	ctx := itCtx(t, 10*time.Second)

	const keys, rounds = 40, 3
	var msgs []*aioproducer.Message
	for r := range rounds {
		for k := range keys {
			msgs = append(msgs, &aioproducer.Message{
				Topic: topic, Key: fmt.Appendf(nil, "key-%02d", k), Value: fmt.Appendf(nil, "any %d/%d", k, r),
			})
		}
	}
	chosen := len(msgs)
	for k := range 10 {
		msgs = append(msgs,
			&aioproducer.Message{Topic: topic, Key: fmt.Appendf(nil, "key-%02d", k), Value: fmt.Appendf(nil, "two %d", k), Partition: aioproducer.ExplicitPartition(2)},
			&aioproducer.Message{Topic: topic, Key: fmt.Appendf(nil, "key-%02d", k), Value: fmt.Appendf(nil, "zero %d", k), Partition: aioproducer.ExplicitPartition(0)},
		)
	}
	futs := make([]*aioproducer.Future, len(msgs))
	for i, m := range msgs {
		f, err := p.Produce(ctx, m)
		require.NoError(t, err)
		futs[i] = f
	}
	ds := itWaitAll(t, ctx, futs)

	keyPart := make(map[string]int32)
	used := make(map[int32]int)
	for i, d := range ds[:chosen] {
		key := string(msgs[i].Key)
		if p, ok := keyPart[key]; ok {
			require.Equal(t, p, d.Partition, "key %s went to two partitions", key)
		}
		keyPart[key] = d.Partition
		used[d.Partition]++
	}
	require.Len(t, used, partitions, "40 keys over a 4-partition topic: partitions used %v", used)
	for i, d := range ds[chosen:] {
		want := int32(2)
		if i%2 == 1 {
			want = 0
		}
		require.Equal(t, want, d.Partition, "%s", msgs[chosen+i].Value)
	}
	itRequireReadBack(t, msgs, ds, itConsume(t, mc.BootstrapServers(), topic, partitions, len(msgs)))
}

func TestMessageLibrdkafkaRefusesFailsAloneAndItsNeighboursAreDelivered(t *testing.T) {
	mc := itCluster(t, 1, map[string]int{"refuse-size": 1, "refuse-partition": 3})
	p := itProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"message.max.bytes": 10000})

	// produce sends a batch of five whose middle message is bad, and checks that the middle one fails
	// with want while its neighbours land in partition part at offsets 0..3, in order.
	produce := func(t *testing.T, topic string, partitions int, part int32, bad *aioproducer.Message, want kafka.ErrorCode) {
		ctx := itCtx(t, 10*time.Second)
		var msgs []*aioproducer.Message
		for i := range 4 {
			msgs = append(msgs, &aioproducer.Message{Topic: topic, Value: fmt.Appendf(nil, "neighbour %d", i), Partition: aioproducer.ExplicitPartition(part)})
		}
		msgs = append(msgs[:2], append([]*aioproducer.Message{bad}, msgs[2:]...)...)
		futs, err := p.ProduceBatch(ctx, msgs)
		require.NoError(t, err)
		require.Len(t, futs, len(msgs))

		_, err = futs[2].Wait(ctx)
		require.Error(t, err)
		var ke kafka.Error
		require.ErrorAs(t, err, &ke)
		require.Equal(t, want, ke.Code(), "%v", err)
		var de *aioproducer.DeliveryError
		require.ErrorAs(t, err, &de)
		require.Equal(t, topic, de.Topic)
		require.Equal(t, want, de.Err.Code())
		require.False(t, aioproducer.IsFatal(err), "%v", err)
		require.False(t, aioproducer.IsRetriable(err), "%v", err)
		require.False(t, aioproducer.IsOutcomeUnknown(err), "%v", err)
		require.NotErrorIs(t, err, aioproducer.ErrClosed)

		good := append(append([]*aioproducer.Message{}, msgs[:2]...), msgs[3:]...)
		ds := itWaitAll(t, ctx, append(append([]*aioproducer.Future{}, futs[:2]...), futs[3:]...))
		for i, d := range ds {
			require.Equal(t, itLoc{topic, part, int64(i)}, itDeliveryLoc(d), "%s", good[i].Value)
		}
		itRequireReadBack(t, good, ds, itConsume(t, mc.BootstrapServers(), topic, partitions, len(good)))
	}

	t.Run("message larger than message.max.bytes with librdkafka's framing", func(t *testing.T) {
		// 9990 bytes of value fit message.max.bytes (Produce refuses more at once), but not with the
		// record's framing: librdkafka refuses it when it is handed over.
		produce(t, "refuse-size", 1, 0,
			&aioproducer.Message{Topic: "refuse-size", Value: make([]byte, 9990), Partition: aioproducer.ExplicitPartition(0)},
			kafka.ErrMsgSizeTooLarge)
	})
	t.Run("partition the topic does not have", func(t *testing.T) {
		produce(t, "refuse-partition", 3, 1,
			&aioproducer.Message{Topic: "refuse-partition", Value: []byte("nowhere"), Partition: aioproducer.ExplicitPartition(99)},
			kafka.ErrUnknownPartition)
	})
	st := p.Stats()
	require.EqualValues(t, 8, st.Delivered)
	require.EqualValues(t, 2, st.Failed)
}

func TestFullLibrdkafkaQueueIsWaitedOutInsideInProduceOrder(t *testing.T) {
	const topic, n = "queue-full", 3000
	mc := itCluster(t, 1, map[string]int{topic: 1})
	// The buffer keeps its 100 000 messages (as before New sized it down to the queue), so that the
	// workers meet the full queue, as they may for a moment when librdkafka frees room late.
	p := itProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"queue.buffering.max.messages": 20}, aioproducer.KeepBufferOverSmallQueue)
	ctx := itCtx(t, 20*time.Second)

	msgs := make([]*aioproducer.Message, n)
	futs := make([]*aioproducer.Future, n)
	for i := range n {
		msgs[i] = &aioproducer.Message{Topic: topic, Key: []byte("k"), Value: []byte(strconv.Itoa(i))}
		f, err := p.Produce(ctx, msgs[i])
		require.NoError(t, err)
		futs[i] = f
	}
	ds := itWaitAll(t, ctx, futs)
	for i, d := range ds {
		require.EqualValues(t, i, d.Offset, "message %d overtaken", i)
	}
	st := p.Stats()
	require.EqualValues(t, n, st.Delivered)
	require.Zero(t, st.Failed)
	require.Positive(t, st.QueueFullWaits, "librdkafka's queue of 20 never filled: %+v", st)
	itRequireReadBack(t, msgs, ds, itConsume(t, mc.BootstrapServers(), topic, 1, n))
}

func TestFuturesResolveWithoutTheCallerPollingOrFlushing(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []aioproducer.Option
	}{
		{"default options", nil},
		// A free worker takes what waits at once, so large jobs strand nothing.
		{"jobs of 10 000", []aioproducer.Option{aioproducer.WithBatchSize(10_000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const topic, n = "no-poll", 200
			mc := itCluster(t, 1, map[string]int{topic: 2})
			p := itProducer(t, mc.BootstrapServers(), nil, tc.opts...)
			ctx := itCtx(t, 5*time.Second)

			f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("lone")})
			require.NoError(t, err)
			_, err = f.Wait(ctx)
			require.NoError(t, err, "a lone message")

			futs := make([]*aioproducer.Future, n)
			for i := range futs {
				futs[i], err = p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte(strconv.Itoa(i))})
				require.NoError(t, err)
			}
			itWaitAll(t, ctx, futs)
		})
	}
}

func TestMessagesTimeOutWhileTheBrokerIsDownAndFlowAgainOnceItIsUp(t *testing.T) {
	const topic, brokers = "timeout", 1
	mc := itCluster(t, brokers, map[string]int{topic: 1})
	// Long enough for the first message's connection and InitProducerId on a loaded machine.
	p := itProducer(t, mc.BootstrapServers(), kafka.ConfigMap{
		"message.timeout.ms":       2500,
		"reconnect.backoff.ms":     20,
		"reconnect.backoff.max.ms": 200,
	})
	ctx := itCtx(t, 20*time.Second)
	produce := func(value string) *aioproducer.Future {
		f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte(value)})
		require.NoError(t, err)
		return f
	}

	_, err := produce("before").Wait(ctx)
	require.NoError(t, err)

	itSetBrokers(t, mc, brokers, false)
	start := time.Now()
	futs := make([]*aioproducer.Future, 20)
	for i := range futs {
		futs[i] = produce("lost " + strconv.Itoa(i))
	}
	wctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	for i, f := range futs {
		_, err := f.Wait(wctx)
		require.Error(t, err, "message %d with the broker down", i)
		require.NotErrorIs(t, err, context.DeadlineExceeded, "message %d did not time out within 8 s", i)
		var ke kafka.Error
		require.ErrorAs(t, err, &ke)
		require.Equal(t, kafka.ErrMsgTimedOut, ke.Code(), "message %d: %v", i, err)
		var de *aioproducer.DeliveryError
		require.ErrorAs(t, err, &de)
		// Never sent: the producer knows it is not in the log.
		require.Contains(t, err.Error(), "not persisted")
		require.False(t, aioproducer.IsOutcomeUnknown(err), "%v", err)
		require.Contains(t, err.Error(), "no broker was reachable")
		require.False(t, aioproducer.IsFatal(err), "%v", err)
	}
	t.Logf("20 messages timed out after %v", time.Since(start))

	itSetBrokers(t, mc, brokers, true)
	after := produce("after")
	d, err := after.Wait(ctx)
	require.NoError(t, err, "a message produced once the broker is up again")
	require.EqualValues(t, 1, d.Offset)

	recs := itConsume(t, mc.BootstrapServers(), topic, 1, 2)
	require.Equal(t, "before", string(recs[0].Value))
	require.Equal(t, "after", string(recs[1].Value))
	st := p.Stats()
	require.EqualValues(t, 2, st.Delivered)
	require.EqualValues(t, 20, st.Failed)
}

func TestCloseWhoseContextEndsFailsEveryOutstandingMessageAndReturnsTheContextError(t *testing.T) {
	const topic, brokers, n = "close", 1, 50
	mc := itCluster(t, brokers, map[string]int{topic: 1})
	p := itNew(t, mc.BootstrapServers(), nil)
	t.Cleanup(func() { _ = p.Close(context.Background()) }) // only if the test stops before its Close
	ctx := itCtx(t, 10*time.Second)

	f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("warm-up")})
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)

	itSetBrokers(t, mc, brokers, false)
	futs := make([]*aioproducer.Future, n)
	for i := range futs {
		futs[i], err = p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte(strconv.Itoa(i))})
		require.NoError(t, err)
	}

	cctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	closeErr := p.Close(cctx)
	elapsed := time.Since(start)
	require.ErrorIs(t, closeErr, context.DeadlineExceeded)
	require.Less(t, elapsed, 2*time.Second, "Close with a 300ms context")
	t.Logf("Close returned after %v: %v", elapsed, closeErr)

	purged := 0
	for i, f := range futs {
		select {
		case <-f.Done():
		default:
			require.Failf(t, "future not done when Close returned", "message %d", i)
		}
		_, err := f.Wait(ctx)
		require.Error(t, err, "message %d", i)
		require.ErrorIs(t, err, aioproducer.ErrClosed, "message %d: %v", i, err)
		require.Contains(t, err.Error(), "not sent", "message %d", i)
		var de *aioproducer.DeliveryError
		if errors.As(err, &de) {
			require.Equal(t, kafka.ErrPurgeQueue, de.Err.Code(), "message %d, never sent with the broker down: %v", i, err)
			purged++
		} else {
			var ke kafka.Error
			require.False(t, errors.As(err, &ke), "message %d: a kafka.Error outside a DeliveryError: %v", i, err)
		}
	}
	t.Logf("%d of %d messages purged from librdkafka, the rest failed before reaching it", purged, n)
	st := p.Stats()
	require.EqualValues(t, 1, st.Delivered)
	require.EqualValues(t, n, st.Failed)
	require.Zero(t, st.HeldMessages)

	msg := &aioproducer.Message{Topic: topic, Value: []byte("too late")}
	_, err = p.Produce(ctx, msg)
	require.ErrorIs(t, err, aioproducer.ErrClosed, "Produce after Close")
	_, err = p.TryProduce(msg)
	require.ErrorIs(t, err, aioproducer.ErrClosed, "TryProduce after Close")
	require.ErrorIs(t, p.ProduceFunc(ctx, msg, func(aioproducer.Delivery, error) { t.Error("callback of a refused message") }), aioproducer.ErrClosed)
	require.ErrorIs(t, p.ProduceChan(ctx, msg, make(chan aioproducer.Result, 1)), aioproducer.ErrClosed)
	futs, err = p.ProduceBatch(ctx, []*aioproducer.Message{msg})
	require.ErrorIs(t, err, aioproducer.ErrClosed, "ProduceBatch after Close")
	require.Empty(t, futs)
	require.ErrorIs(t, p.Flush(ctx), aioproducer.ErrClosed, "Flush after Close")

	again := p.Close(context.Background())
	require.Equal(t, closeErr, again, "a second Close")
}

func TestFlushReturnsOnceEveryEarlierMessageHasItsOutcome(t *testing.T) {
	mc := itCluster(t, 1, map[string]int{"flush-a": 2, "flush-b": 2})
	// Big jobs and a linger.ms far beyond the test's deadline: Flush itself must send what is buffered.
	p := itProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"linger.ms": 60000}, aioproducer.WithBatchSize(10_000))
	ctx := itCtx(t, 10*time.Second)

	const n = 500
	futs := make([]*aioproducer.Future, n)
	for i := range futs {
		var err error
		futs[i], err = p.Produce(ctx, &aioproducer.Message{Topic: []string{"flush-a", "flush-b"}[i%2], Value: []byte(strconv.Itoa(i))})
		require.NoError(t, err)
	}
	require.NoError(t, p.Flush(ctx))
	notDone := 0
	for _, f := range futs {
		select {
		case <-f.Done():
		default:
			notDone++
		}
	}
	require.Zero(t, notDone, "futures not done when Flush returned")
	for i, f := range futs {
		_, err := f.Wait(ctx)
		require.NoError(t, err, "message %d", i)
	}
	require.EqualValues(t, n, p.Stats().Delivered)

	start := time.Now()
	require.NoError(t, p.Flush(ctx), "Flush with nothing outstanding")
	require.Less(t, time.Since(start), time.Second)
}

func TestProduceChanAndProduceFuncHandEachOutcomeOverExactlyOnceInOrder(t *testing.T) {
	const topic, n = "callbacks", 300
	mc := itCluster(t, 1, map[string]int{topic: 1})
	p := itProducer(t, mc.BootstrapServers(), nil)
	ctx := itCtx(t, 10*time.Second)

	results := make(chan aioproducer.Result, n) // room for every result: sends never block
	var (
		calls     [n]atomic.Int32
		running   atomic.Int32
		overlaps  atomic.Int32
		mu        sync.Mutex
		outcomes  []int   // message index, in the order outcomes were handed over
		funcFails []error // callback errors
	)
	msgs := make([]*aioproducer.Message, n)
	for i := range n {
		msgs[i] = &aioproducer.Message{Topic: topic, Key: []byte("k"), Value: []byte(strconv.Itoa(i))}
		if i%2 == 0 {
			require.NoError(t, p.ProduceChan(ctx, msgs[i], results))
			continue
		}
		require.NoError(t, p.ProduceFunc(ctx, msgs[i], func(d aioproducer.Delivery, err error) {
			if running.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer running.Add(-1)
			calls[i].Add(1)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				funcFails = append(funcFails, fmt.Errorf("message %d: %w", i, err))
			} else if d.Offset != int64(i) || d.Topic != topic || d.Partition != 0 {
				funcFails = append(funcFails, fmt.Errorf("message %d delivered to %v", i, itDeliveryLoc(d)))
			}
			outcomes = append(outcomes, i)
		}))
	}
	require.NoError(t, p.Flush(ctx))
	require.Len(t, results, n/2, "results on the channel when Flush returned")
	require.NoError(t, p.Close(ctx))
	require.Len(t, results, n/2, "results on the channel after Close")
	close(results)

	index := make(map[*aioproducer.Message]int, n)
	for i, m := range msgs {
		index[m] = i
	}
	got := make(map[int]bool)
	last := -1
	for r := range results {
		i, ok := index[r.Message]
		require.True(t, ok, "a Result naming a message never produced: %+v", r)
		require.Zero(t, i%2, "a Result for message %d, produced with ProduceFunc", i)
		require.False(t, got[i], "two Results for message %d", i)
		got[i] = true
		require.NoError(t, r.Err, "message %d", i)
		require.Equal(t, itLoc{topic, 0, int64(i)}, itDeliveryLoc(r.Delivery), "message %d", i)
		require.Greater(t, i, last, "Results out of delivery order")
		last = i
	}
	for i := 1; i < n; i += 2 {
		require.EqualValues(t, 1, calls[i].Load(), "callback of message %d", i)
	}
	mu.Lock()
	defer mu.Unlock()
	require.NoError(t, errors.Join(funcFails...))
	require.Len(t, outcomes, n/2)
	require.True(t, sort.IntsAreSorted(outcomes), "callbacks out of delivery order: %v", outcomes)
	require.Zero(t, overlaps.Load(), "callbacks ran concurrently")
}

// Flush returns once every earlier message has its outcome, and WithMaxBuffered counts a message only
// until its outcome is known: so after Flush nothing is held, and a one-message buffer takes the next
// message at once.
func TestFlushLeavesNothingHeldSoTryProduceFitsAtOnce(t *testing.T) {
	const topic = "held"
	mc := itCluster(t, 1, map[string]int{topic: 1})
	p := itProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"linger.ms": 0}, aioproducer.WithMaxBuffered(1, 1<<20))
	ctx := itCtx(t, 10*time.Second)

	// The window is short: try for up to 2 s.
	n := 0
	for start := time.Now(); time.Since(start) < 2*time.Second; n++ {
		_, err := p.TryProduce(&aioproducer.Message{Topic: topic, Value: []byte(strconv.Itoa(n))})
		require.NoError(t, err, "TryProduce %d, right after a Flush returned", n)
		require.NoError(t, p.Flush(ctx))
		st := p.Stats()
		require.Zero(t, st.HeldMessages, "held after Flush %d: %+v", n, st)
		require.Zero(t, st.InFlight, "in flight after Flush %d: %+v", n, st)
	}
	require.EqualValues(t, n, p.Stats().Delivered)
}

// TestEveryOutcomeComesWithinMessageTimeoutOfProduceWhileTheBrokerIsDown is issue 21's scenario:
// message.timeout.ms 1 s, librdkafka's queue 10 messages, the broker down, producers on 4 goroutines
// for 3 s. Every accepted message must have its outcome, librdkafka's timeout error, within
// message.timeout.ms plus a stated slack of its Produce returning, though librdkafka holds only 10 at a
// time: New makes the buffer no larger than librdkafka's queue, and a message not handed over by its
// deadline fails in the producer.
func TestEveryOutcomeComesWithinMessageTimeoutOfProduceWhileTheBrokerIsDown(t *testing.T) {
	const (
		topic      = "deadline"
		timeout    = time.Second
		slack      = 500 * time.Millisecond // librdkafka's timeout scan, the worker's latency, a loaded machine
		producers  = 4
		produceFor = 3 * timeout
	)
	mc := itCluster(t, 1, map[string]int{topic: 2})
	p := itProducer(t, mc.BootstrapServers(), kafka.ConfigMap{
		"message.timeout.ms":           int(timeout.Milliseconds()),
		"queue.buffering.max.messages": 10,
		"reconnect.backoff.ms":         20,
		"reconnect.backoff.max.ms":     200,
	})
	ctx := itCtx(t, 30*time.Second)
	warm, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("warm-up")})
	require.NoError(t, err)
	_, err = warm.Wait(ctx)
	require.NoError(t, err, "the broker up")
	itSetBrokers(t, mc, 1, false)

	type outcome struct {
		returned, got time.Time
		err           error
	}
	var (
		mu       sync.Mutex
		outcomes []*outcome
		pending  sync.WaitGroup
	)
	pctx, cancel := context.WithTimeout(ctx, produceFor)
	defer cancel()
	var wg sync.WaitGroup
	for g := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				o := &outcome{}
				pending.Add(1)
				err := p.ProduceFunc(pctx, &aioproducer.Message{Topic: topic, Key: []byte(strconv.Itoa(g)), Value: []byte(strconv.Itoa(i))},
					func(_ aioproducer.Delivery, err error) {
						o.got, o.err = time.Now(), err
						pending.Done()
					})
				if err != nil {
					pending.Done()
					require.ErrorIs(t, err, context.DeadlineExceeded)
					return
				}
				o.returned = time.Now()
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { pending.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout + 5*time.Second):
		t.Fatalf("outcomes missing %v after the last Produce", timeout+5*time.Second)
	}

	mu.Lock()
	defer mu.Unlock()
	require.Greater(t, len(outcomes), 10, "more messages accepted than librdkafka's queue holds")
	var worst time.Duration
	for i, o := range outcomes {
		var ke kafka.Error
		require.ErrorAs(t, o.err, &ke, "message %d", i)
		require.Equal(t, kafka.ErrMsgTimedOut, ke.Code(), "message %d: %v", i, o.err)
		require.False(t, aioproducer.IsOutcomeUnknown(o.err), "message %d was never sent: %v", i, o.err)
		took := o.got.Sub(o.returned)
		worst = max(worst, took)
		require.LessOrEqual(t, took, timeout+slack, "message %d's outcome came %v after Produce returned", i, took)
	}
	t.Logf("%d messages accepted in %v with the broker down; the latest outcome came %v after its Produce returned",
		len(outcomes), produceFor, worst)
	itSetBrokers(t, mc, 1, true)
}

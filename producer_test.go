package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func msg(topic, key string) *Message {
	return &Message{Topic: topic, Key: []byte(key), Value: []byte("v-" + key)}
}

func TestLoneMessageOnIdleProducerIsSentAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{Auto: true})
		p := newFakeProducer(t, fe)
		start := time.Now()
		f, err := p.Produce(t.Context(), msg("t", "a"))
		require.NoError(t, err)
		d, err := f.Wait(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "t", d.Topic)
		assert.Zero(t, d.Offset)
		assert.True(t, d.Timestamp.Equal(start.Truncate(time.Millisecond)), "timestamp %v, accepted at %v", d.Timestamp, start)
		// In a bubble time only moves when every goroutine waits: any wait on a timer shows here.
		assert.Zero(t, time.Since(start), "a lone message waited")
	})
}

// While its worker hands a job to librdkafka, messages wait in the producer; the worker takes all of
// them as soon as it is free, in one job, however they trickled in: no timer, and no call smaller than
// what is waiting.
func TestMessagesWaitingForABusyWorkerGoInItsNextJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{Auto: true})
		p := newFakeProducer(t, fe, WithBatchSize(100), WithWorkers(1))
		gate := make(chan struct{})
		fe.setGate(gate)
		var futs []*Future
		produce := func(key string) {
			f, err := p.Produce(t.Context(), msg("t", key))
			require.NoError(t, err)
			futs = append(futs, f)
		}
		produce("a") // the worker takes it and waits in enqueue: from now on the worker is busy
		synctest.Wait()
		for _, k := range []string{"b1", "b2", "b3", "b4"} {
			produce(k)
			time.Sleep(4 * time.Millisecond)
		}
		start := time.Now()
		close(gate)
		for _, f := range futs {
			_, err := f.Wait(t.Context())
			require.NoError(t, err)
		}
		assert.Equal(t, []int{1, 4}, fe.callSizes())
		assert.Zero(t, time.Since(start), "nothing waited once the worker was free")
	})
}

func TestAJobHoldsAtMostBatchSizeMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{Auto: true})
		p := newFakeProducer(t, fe, WithBatchSize(3), WithWorkers(1))
		gate := make(chan struct{})
		fe.setGate(gate)
		var futs []*Future
		for i := range 8 {
			f, err := p.Produce(t.Context(), msg("t", fmt.Sprint(i)))
			require.NoError(t, err)
			futs = append(futs, f)
			synctest.Wait()
		}
		start := time.Now()
		close(gate)
		for _, f := range futs {
			_, err := f.Wait(t.Context())
			require.NoError(t, err)
		}
		// The first goes alone (idle worker), then jobs of at most 3, one after the other.
		assert.Equal(t, []int{1, 3, 3, 1}, fe.callSizes())
		assert.Zero(t, time.Since(start))
	})
}

// A job spans topics: the engine gets every waiting topic's messages in one call, each topic's in
// produce order, the topic that waited longest first.
func TestAJobSpansTopicsGroupedByTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{Auto: true})
		p := newFakeProducer(t, fe, WithWorkers(1))
		gate := make(chan struct{})
		fe.setGate(gate)
		var futs []*Future
		for _, m := range []*Message{msg("x", "0"), msg("a", "1"), msg("b", "2"), msg("a", "3"), msg("b", "4"), msg("a", "5")} {
			f, err := p.Produce(t.Context(), m)
			require.NoError(t, err)
			futs = append(futs, f)
			synctest.Wait()
		}
		close(gate)
		for _, f := range futs {
			_, err := f.Wait(t.Context())
			require.NoError(t, err)
		}
		var got [][]string
		for _, c := range fe.callMessages() {
			var keys []string
			for _, m := range c {
				keys = append(keys, m.Topic+string(m.Key))
			}
			got = append(got, keys)
		}
		// x0 went alone; then a's messages and b's (each in produce order) in one call, oldest first.
		assert.Equal(t, [][]string{{"x0"}, {"a1", "a3", "a5", "b2", "b4"}}, got)
	})
}

// Spread over a thousand topics, the engine still gets few large calls: a call carries every topic
// that waited, not one topic's handful of messages.
func TestEngineCallsStayLargeWhenTheLoadSpreadsOverManyTopics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{Auto: true})
		p := newFakeProducer(t, fe, WithWorkers(1), WithBatchSize(1000))
		gate := make(chan struct{})
		fe.setGate(gate)
		const topics, rounds = 1000, 3
		msgs := make([]*Message, 0, topics*rounds)
		for r := range rounds {
			for tp := range topics {
				msgs = append(msgs, &Message{Topic: fmt.Sprintf("t%d", tp), Value: []byte(fmt.Sprint(r))})
			}
		}
		for i, m := range msgs {
			_, err := p.Produce(t.Context(), m)
			require.NoError(t, err)
			if i == 0 {
				synctest.Wait() // the worker takes the first message and waits in the engine
			}
		}
		close(gate)
		require.NoError(t, p.Flush(t.Context()))
		sizes := fe.callSizes()
		assert.Equal(t, 1, sizes[0], "the first message went alone")
		assert.Len(t, sizes, 1+(topics*rounds-1+999)/1000, "full calls of WithBatchSize messages: %v", sizes)
		// Each topic's messages in produce order.
		next := map[string]int{}
		for _, m := range fe.enqueued() {
			require.Equal(t, fmt.Sprint(next[m.Topic]), string(m.Value), "topic %s out of order", m.Topic)
			next[m.Topic]++
		}
	})
}

// A producer that wrote to many topics once lets go of them: after a while idle, neither the
// dispatcher nor the engine keeps an entry per topic it ever used.
func TestIdleTopicsAreForgotten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{Auto: true})
		p := newFakeProducer(t, fe, WithWorkers(2))
		for i := range 500 {
			_, err := p.Produce(t.Context(), &Message{Topic: fmt.Sprintf("short-lived-%d", i)})
			require.NoError(t, err)
		}
		require.NoError(t, p.Flush(t.Context()))
		assert.Equal(t, 500, p.disp.topics())
		time.Sleep(topicIdleAfter / 2)
		_, err := p.Produce(t.Context(), &Message{Topic: "short-lived-0"}) // one stays in use
		require.NoError(t, err)
		require.NoError(t, p.Flush(t.Context()))
		time.Sleep(topicIdleAfter)
		synctest.Wait()
		assert.Equal(t, 1, p.disp.topics(), "only the topic used within topicIdleAfter is kept")
		assert.Equal(t, 499, fe.forgotten(), "the engine was told to forget the others")
	})
}

// Goroutines that wait for room in a full buffer are served in the order they came: a message that
// waited longest is accepted first, so no producer starves and latency stays fair under contention.
func TestProduceCallsWaitingForRoomAreServedInArrivalOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{})
		p := newFakeProducer(t, fe, WithMaxBuffered(1, 1<<20))
		_, err := p.Produce(t.Context(), msg("t", "held"))
		require.NoError(t, err)
		var mu sync.Mutex
		var order []int
		const waiters = 20
		for i := range waiters {
			go func() {
				_, err := p.Produce(t.Context(), msg("t", fmt.Sprint(i)))
				assert.NoError(t, err)
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
			}()
			synctest.Wait() // goroutine i waits before goroutine i+1 comes
		}
		for range waiters {
			fe.deliver(1)
			synctest.Wait()
		}
		fe.deliver(-1)
		require.NoError(t, p.Flush(t.Context()))
		want := make([]int, waiters)
		for i := range want {
			want[i] = i
		}
		assert.Equal(t, want, order)
	})
}

func TestOrderPerKeyHoldsWithManyWorkersAndConcurrentProducers(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe, WithWorkers(8), WithBatchSize(7))
	const producers, perProducer, topics = 6, 2000, 16
	var wg sync.WaitGroup
	for g := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perProducer {
				m := &Message{
					Topic: fmt.Sprintf("t%d", i%topics),
					Key:   []byte(fmt.Sprintf("g%d-k%d", g, i%5)),
					Value: []byte(fmt.Sprint(i)),
				}
				_, err := p.Produce(context.Background(), m)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, p.Flush(ctxTimeout(t, 10*time.Second)))
	last := map[string]int{}
	got := fe.enqueued()
	require.Len(t, got, producers*perProducer)
	for _, m := range got {
		k := m.Topic + "/" + string(m.Key)
		var seq int
		fmt.Sscan(string(m.Value), &seq)
		if prev, ok := last[k]; ok {
			require.Greater(t, seq, prev, "key %s out of order", k)
		}
		last[k] = seq
	}
}

func TestProduceBlocksWhileTheBufferIsFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{})
		p := newFakeProducer(t, fe, WithMaxBuffered(2, 1<<20))
		for i := range 2 {
			_, err := p.Produce(t.Context(), msg("t", fmt.Sprint(i)))
			require.NoError(t, err)
		}

		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := p.Produce(ctx, msg("t", "late"))
		require.ErrorIs(t, err, context.DeadlineExceeded, "Produce returns ctx's error when the buffer stays full")

		_, err = p.TryProduce(msg("t", "try"))
		require.ErrorIs(t, err, ErrBufferFull)

		var accepted atomic.Bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err := p.Produce(t.Context(), msg("t", "waits"))
			assert.NoError(t, err)
			accepted.Store(true)
		}()
		synctest.Wait()
		assert.False(t, accepted.Load(), "Produce returned while the buffer was full")
		synctest.Wait()
		fe.deliver(1) // one outcome frees one place
		<-done
		assert.True(t, accepted.Load())
		assert.EqualValues(t, 2, p.Stats().HeldMessages)
		synctest.Wait() // "waits" reaches the engine
		fe.deliver(-1)
		require.NoError(t, p.Flush(t.Context()))
	})
}

func TestByteLimitBoundsTheBufferAndRefusesWhatCanNeverFit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{})
		p := newFakeProducer(t, fe, WithMaxBuffered(100, 10))
		_, err := p.Produce(t.Context(), &Message{Topic: "t", Value: make([]byte, 11)})
		require.ErrorIs(t, err, ErrInvalidMessage)

		_, err = p.Produce(t.Context(), &Message{Topic: "t", Value: make([]byte, 6)})
		require.NoError(t, err)
		_, err = p.TryProduce(&Message{Topic: "t", Value: make([]byte, 6)})
		require.ErrorIs(t, err, ErrBufferFull)
		_, err = p.TryProduce(&Message{Topic: "t", Value: make([]byte, 4)})
		require.NoError(t, err)
		fe.deliver(-1)
	})
}

func TestFullLibrdkafkaQueueWaitsForDeliveriesAndKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{})
		fe.setCapacity(5)
		p := newFakeProducer(t, fe, WithBatchSize(50))
		var msgs []*Message
		for i := range 23 {
			msgs = append(msgs, msg("t", fmt.Sprint(i)))
		}
		futs, err := p.ProduceBatch(t.Context(), msgs)
		require.NoError(t, err)
		for fe.pendingCount() > 0 || len(fe.enqueued()) < len(msgs) {
			synctest.Wait()
			fe.deliver(2)
		}
		for i, f := range futs {
			d, err := f.Wait(t.Context())
			require.NoError(t, err, "message %d", i)
			assert.EqualValues(t, i, d.Offset)
		}
		assert.Equal(t, msgs, fe.enqueued(), "enqueue order is produce order")
		assert.Positive(t, p.Stats().QueueFullWaits)
		assert.Zero(t, p.Stats().Failed)
	})
}

// withMessageTimeout sets message.timeout.ms, as a configuration read by New would.
func withMessageTimeout(d time.Duration) Option {
	return func(c *config) { c.kafka.messageTimeout = d }
}

// TestRecordNotHandedOverByItsDeadlineFailsAsTimedOutAndTheNextStillGoes: with message.timeout.ms T,
// a record that librdkafka had no room for until T after it was accepted fails then, in the producer,
// with librdkafka's timeout error, known not to be in the log; a record of the same partition produced
// after it is handed over once room comes, and delivered after the one before.
func TestRecordNotHandedOverByItsDeadlineFailsAsTimedOutAndTheNextStillGoes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = time.Second
		fe := newMemEngine(memConfig{})
		fe.setCapacity(1)
		p := newFakeProducer(t, fe, withMessageTimeout(timeout))
		ctx := t.Context()
		produce := func(m *Message) *Future {
			f, err := p.Produce(ctx, m)
			require.NoError(t, err)
			return f
		}
		first, stuck, next := msg("t", "first"), msg("t", "stuck"), msg("t", "next")
		firstF := produce(first) // takes librdkafka's one place
		stuckF := produce(stuck) // no room
		accepted := time.Now()
		time.Sleep(timeout / 2)
		nextF := produce(next)
		time.Sleep(timeout/2 - time.Nanosecond)
		synctest.Wait()
		require.False(t, isDone(stuckF), "failed before its deadline")

		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.True(t, isDone(stuckF), "no outcome at its deadline")
		_, err := stuckF.Wait(ctx)
		assert.Equal(t, timeout, time.Since(accepted))
		var ke kafka.Error
		require.ErrorAs(t, err, &ke)
		assert.Equal(t, kafka.ErrMsgTimedOut, ke.Code())
		assert.ErrorIs(t, err, kafka.NewError(kafka.ErrMsgTimedOut, "", false), "the error librdkafka reports for a timeout")
		var de *DeliveryError
		require.ErrorAs(t, err, &de)
		assert.False(t, IsOutcomeUnknown(err), "never sent: %v", err)
		assert.Contains(t, err.Error(), "not persisted")
		assert.Contains(t, err.Error(), "never sent")
		require.False(t, isDone(nextF), "the next record waits for room")

		fe.deliver(1) // room for the next
		synctest.Wait()
		fe.deliver(-1)
		d, err := firstF.Wait(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, 0, d.Offset)
		d, err = nextF.Wait(ctx)
		require.NoError(t, err, "the record behind the one that timed out")
		assert.EqualValues(t, 1, d.Offset)
		assert.Equal(t, []*Message{first, next}, fe.enqueued(), "the record that timed out never reached librdkafka")
		st := p.Stats()
		assert.EqualValues(t, 2, st.Delivered)
		assert.EqualValues(t, 1, st.Failed)
	})
}

func TestMessageRefusedByLibrdkafkaFailsAloneInItsBatch(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	var msgs []*Message
	for i := range 6 {
		msgs = append(msgs, msg("t", fmt.Sprint(i)))
	}
	fe.refuseWith(msgs[3], kafka.NewError(kafka.ErrMsgSizeTooLarge, "too large", false))
	futs, err := p.ProduceBatch(ctxTimeout(t, 5*time.Second), msgs)
	require.NoError(t, err)
	for i, f := range futs {
		_, err := f.Wait(ctxTimeout(t, 5*time.Second))
		if i != 3 {
			assert.NoError(t, err, "neighbour %d", i)
			continue
		}
		var de *DeliveryError
		require.ErrorAs(t, err, &de)
		assert.Equal(t, "t", de.Topic)
		var ke kafka.Error
		require.ErrorAs(t, err, &ke)
		assert.Equal(t, kafka.ErrMsgSizeTooLarge, ke.Code())
	}
	assert.EqualValues(t, 1, p.Stats().Failed)
	assert.EqualValues(t, 5, p.Stats().Delivered)
}

func TestFlushWaitsForMessagesAcceptedBeforeItOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{})
		p := newFakeProducer(t, fe)
		before, err := p.Produce(t.Context(), msg("t", "before"))
		require.NoError(t, err)
		flushed := make(chan error, 1)
		go func() { flushed <- p.Flush(t.Context()) }()
		synctest.Wait()
		after, err := p.Produce(t.Context(), msg("t", "after"))
		require.NoError(t, err)
		synctest.Wait()
		select {
		case <-flushed:
			t.Fatal("Flush returned before the earlier message had its outcome")
		default:
		}
		fe.deliver(1)
		require.NoError(t, <-flushed)
		select {
		case <-before.Done():
		default:
			t.Fatal("the earlier message has no outcome after Flush")
		}
		select {
		case <-after.Done():
			t.Fatal("the later message was delivered too early by the fake")
		default:
		}
		fe.deliver(-1)
	})
}

func TestFlushWaitsForNoTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{Auto: true})
		p := newFakeProducer(t, fe, WithWorkers(1))
		gate := make(chan struct{})
		fe.setGate(gate)
		for i := range 3 {
			_, err := p.Produce(t.Context(), msg("t", fmt.Sprint(i)))
			require.NoError(t, err)
		}
		synctest.Wait()
		start := time.Now()
		close(gate)
		require.NoError(t, p.Flush(t.Context()))
		assert.Zero(t, time.Since(start))
	})
}

func TestCloseWhoseContextEndsFailsEveryMessageWithAClearError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{})
		p := newFakeProducer(t, fe, WithWorkers(1))
		gate := make(chan struct{})
		fe.setGate(gate)
		var futs []*Future
		for i := range 4 {
			f, err := p.Produce(t.Context(), msg("t", fmt.Sprint(i)))
			require.NoError(t, err)
			futs = append(futs, f)
			synctest.Wait() // "0" goes alone and stays inside enqueue; the rest wait in the producer
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		go func() {
			<-p.exec.aborted // then enqueue returns, as librdkafka's does: it never blocks
			close(gate)
		}()
		err := p.Close(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		for i, f := range futs {
			_, err := f.Wait(t.Context())
			require.ErrorIs(t, err, ErrClosed, "message %d", i)
		}
		// "0" reached librdkafka and was purged; the others never left the producer.
		var ke kafka.Error
		_, err = futs[0].Wait(t.Context())
		require.ErrorAs(t, err, &ke)
		assert.Equal(t, kafka.ErrPurgeQueue, ke.Code())
		_, err = futs[1].Wait(t.Context())
		assert.False(t, errors.As(err, &ke), "never sent, so no librdkafka error: %v", err)
		assert.Equal(t, 1, fe.purgeCount())

		again := p.Close(t.Context())
		require.ErrorIs(t, again, context.DeadlineExceeded, "Close is idempotent: a second call returns the first one's result")
	})
}

func TestProduceAfterCloseFailsWithErrClosed(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	require.NoError(t, p.Close(ctxTimeout(t, 5*time.Second)))
	require.NoError(t, p.Close(ctxTimeout(t, 5*time.Second)))
	ctx := ctxTimeout(t, 5*time.Second)
	_, err := p.Produce(ctx, msg("t", "a"))
	assert.ErrorIs(t, err, ErrClosed)
	_, err = p.TryProduce(msg("t", "a"))
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, p.ProduceFunc(ctx, msg("t", "a"), func(Delivery, error) {}), ErrClosed)
	assert.ErrorIs(t, p.ProduceChan(ctx, msg("t", "a"), make(chan Result, 1)), ErrClosed)
	_, err = p.ProduceBatch(ctx, []*Message{msg("t", "a")})
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, p.Flush(ctx), ErrClosed)
}

func TestCloseWakesProduceCallsBlockedOnAFullBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{})
		p := newFakeProducer(t, fe, WithMaxBuffered(1, 1<<20))
		_, err := p.Produce(t.Context(), msg("t", "held"))
		require.NoError(t, err)
		blocked := make(chan error, 1)
		go func() {
			_, err := p.Produce(t.Context(), msg("t", "blocked"))
			blocked <- err
		}()
		synctest.Wait()
		closed := make(chan error, 1)
		go func() { closed <- p.Close(t.Context()) }()
		require.ErrorIs(t, <-blocked, ErrClosed)
		fe.deliver(-1)
		require.NoError(t, <-closed)
	})
}

func TestFatalErrorFailsOutstandingAndLaterMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{})
		p := newFakeProducer(t, fe, WithWorkers(1))
		var futs []*Future
		for i := range 3 {
			f, err := p.Produce(t.Context(), msg("t", fmt.Sprint(i)))
			require.NoError(t, err)
			futs = append(futs, f)
		}
		synctest.Wait()
		fe.raiseFatal(kafka.NewError(kafka.ErrOutOfOrderSequenceNumber, "broker lost sequence", true))
		for i, f := range futs {
			_, err := f.Wait(t.Context())
			require.ErrorIs(t, err, ErrFatal, "message %d", i)
			assert.True(t, IsFatal(err))
		}
		_, err := p.Produce(t.Context(), msg("t", "later"))
		require.ErrorIs(t, err, ErrFatal)
		var ke kafka.Error
		require.ErrorAs(t, err, &ke)
		assert.Equal(t, kafka.ErrOutOfOrderSequenceNumber, ke.Code())
		require.NoError(t, p.Close(t.Context()))
	})
}

func TestCallbacksRunOneAtATimeInOutcomeOrder(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe, WithWorkers(4))
	var active, maxActive atomic.Int32
	var mu sync.Mutex
	var order []int
	const n = 300
	for i := range n {
		err := p.ProduceFunc(context.Background(), msg("t", fmt.Sprint(i)), func(d Delivery, err error) {
			a := active.Add(1)
			if a > maxActive.Load() {
				maxActive.Store(a)
			}
			assert.NoError(t, err)
			mu.Lock()
			order = append(order, int(d.Offset))
			mu.Unlock()
			time.Sleep(10 * time.Microsecond)
			active.Add(-1)
		})
		require.NoError(t, err)
	}
	require.NoError(t, p.Flush(ctxTimeout(t, 10*time.Second)))
	assert.EqualValues(t, 1, maxActive.Load(), "callbacks ran concurrently")
	require.Len(t, order, n, "Flush returned before every callback ran")
	for i, off := range order {
		require.Equal(t, i, off, "callbacks out of outcome order")
	}
}

func TestPanickingCallbackCostsNoOtherOutcome(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	var called atomic.Int32
	ctx := ctxTimeout(t, 10*time.Second)
	for i := range 10 {
		err := p.ProduceFunc(ctx, msg("t", fmt.Sprint(i)), func(Delivery, error) {
			called.Add(1)
			if i%3 == 0 {
				panic("user bug")
			}
		})
		require.NoError(t, err)
	}
	require.NoError(t, p.Flush(ctx))
	assert.EqualValues(t, 10, called.Load())
	assert.EqualValues(t, 4, p.Stats().CallbackPanics)
	f, err := p.Produce(ctx, msg("t", "after"))
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err, "the producer works after a callback panicked")
}

func TestBlockedCallbackDoesNotDelayFutures(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	ctx := ctxTimeout(t, 10*time.Second)
	release := make(chan struct{})
	require.NoError(t, p.ProduceFunc(ctx, msg("t", "slow"), func(Delivery, error) { <-release }))
	f, err := p.Produce(ctx, msg("t", "fast"))
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err, "a future waited for a blocked callback")
	close(release)
	require.NoError(t, p.Flush(ctx))
}

func TestProduceChanSendsAResultNamingItsMessage(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	ctx := ctxTimeout(t, 10*time.Second)
	ch := make(chan Result, 3)
	var msgs []*Message
	for i := range 3 {
		m := msg("t", fmt.Sprint(i))
		msgs = append(msgs, m)
		require.NoError(t, p.ProduceChan(ctx, m, ch))
	}
	for i := range 3 {
		r := <-ch
		require.NoError(t, r.Err)
		assert.Same(t, msgs[i], r.Message)
		assert.EqualValues(t, i, r.Delivery.Offset)
	}
}

func TestProduceBatchAcceptsMoreThanTheBufferHoldsAsRoomFrees(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe, WithMaxBuffered(10, 1<<20), WithBatchSize(4))
	var msgs []*Message
	for i := range 95 {
		msgs = append(msgs, msg("t", fmt.Sprint(i)))
	}
	ctx := ctxTimeout(t, 10*time.Second)
	futs, err := p.ProduceBatch(ctx, msgs)
	require.NoError(t, err)
	require.Len(t, futs, len(msgs))
	for i, f := range futs {
		d, err := f.Wait(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, i, d.Offset)
		assert.Same(t, msgs[i], f.Message())
	}
}

func TestProduceBatchWithAnInvalidMessageAcceptsNone(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	futs, err := p.ProduceBatch(ctxTimeout(t, 5*time.Second), []*Message{msg("t", "a"), {Topic: "bad topic"}})
	require.ErrorIs(t, err, ErrInvalidMessage)
	assert.ErrorContains(t, err, "message 1")
	assert.Empty(t, futs)
	assert.Zero(t, p.Stats().HeldMessages)
}

func TestProduceBatchReturnsTheAcceptedPrefixWhenItsContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{})
		p := newFakeProducer(t, fe, WithMaxBuffered(3, 1<<20), WithBatchSize(2))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		msgs := []*Message{msg("t", "0"), msg("t", "1"), msg("t", "2"), msg("t", "3"), msg("t", "4")}
		futs, err := p.ProduceBatch(ctx, msgs)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Len(t, futs, 2, "the first chunk of 2 fits; the next chunk of 2 does not")
		fe.deliver(-1)
		for _, f := range futs {
			_, err := f.Wait(t.Context())
			require.NoError(t, err)
		}
	})
}

func TestInvalidMessageFailsItsOwnCallOnly(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	ctx := ctxTimeout(t, 5*time.Second)
	_, err := p.Produce(ctx, nil)
	require.ErrorIs(t, err, ErrInvalidMessage)
	_, err = p.Produce(ctx, &Message{Topic: ""})
	require.ErrorIs(t, err, ErrInvalidMessage)
	_, err = p.Produce(ctx, &Message{Topic: "t", Value: make([]byte, defaultMessageMaxBytes+1)})
	require.ErrorIs(t, err, ErrInvalidMessage)
	f, err := p.Produce(ctx, msg("t", "ok"))
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)
	assert.Zero(t, p.Stats().Failed)
}

func TestStatsCountOutcomesAndBatches(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	ctx := ctxTimeout(t, 5*time.Second)
	futs, err := p.ProduceBatch(ctx, []*Message{msg("t", "a"), msg("t", "b"), msg("u", "c")})
	require.NoError(t, err)
	for _, f := range futs {
		_, err := f.Wait(ctx)
		require.NoError(t, err)
	}
	// Flush: a Future resolves before its room in the buffer is given back.
	require.NoError(t, p.Flush(ctx))
	s := p.Stats()
	assert.EqualValues(t, 3, s.Delivered)
	assert.Zero(t, s.Buffered)
	assert.Zero(t, s.InFlight)
	assert.Zero(t, s.HeldMessages)
	assert.Zero(t, s.HeldBytes)
	assert.Positive(t, s.Batches)
	assert.InDelta(t, 3/float64(s.Batches), s.MeanBatchSize, 1e-9)
}

package aioproducer

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a hook of every kind that keeps what it is told. With traceHeader set, OnProduce adds a
// "trace" header naming the message's value (its first 8 bytes), as a tracing hook injects its context.
type recorder struct {
	traceHeader bool
	// inCallback, if set, is asked from the events that run on the callback goroutine.
	inCallback func() bool

	mu        sync.Mutex
	produced  map[*Message]int
	delivered map[*Message][]DeliveryEvent
	batches   []BatchEvent
	errs      []error
	stats     []*LibrdkafkaStats
	offGor    []string // events that ran off the callback goroutine although they should not
	order     []*Message
	gotStats  chan struct{} // closed at the first statistics report
	statsOnce sync.Once
}

func newRecorder() *recorder {
	return &recorder{produced: map[*Message]int{}, delivered: map[*Message][]DeliveryEvent{}, gotStats: make(chan struct{})}
}

func (r *recorder) OnProduce(_ context.Context, m *Message) {
	if r.traceHeader {
		m.Headers = append(m.Headers, Header{Key: "trace", Value: append([]byte("t-"), m.Value[:min(8, len(m.Value))]...)})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.produced[m]++
}

func (r *recorder) OnDelivery(e DeliveryEvent) {
	if !e.Refused {
		r.checkCallback("OnDelivery")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delivered[e.Message] = append(r.delivered[e.Message], e)
	r.order = append(r.order, e.Message)
}

func (r *recorder) OnBatch(e BatchEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, e)
}

func (r *recorder) OnError(err error) {
	r.checkCallback("OnError")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *recorder) OnStats(s *LibrdkafkaStats) {
	r.checkCallback("OnStats")
	r.mu.Lock()
	r.stats = append(r.stats, s)
	r.mu.Unlock()
	r.statsOnce.Do(func() { close(r.gotStats) })
}

func (r *recorder) checkCallback(method string) {
	if r.inCallback != nil && !r.inCallback() {
		r.mu.Lock()
		r.offGor = append(r.offGor, method)
		r.mu.Unlock()
	}
}

// events returns the delivery events of m.
func (r *recorder) events(m *Message) []DeliveryEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]DeliveryEvent(nil), r.delivered[m]...)
}

func (r *recorder) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func (r *recorder) lastStats() *LibrdkafkaStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.stats) == 0 {
		return nil
	}
	return r.stats[len(r.stats)-1]
}

// requireOneEvent checks that m was seen by OnProduce once and has exactly one delivery event, and
// returns it.
func (r *recorder) requireOneEvent(t *testing.T, m *Message, what string) DeliveryEvent {
	t.Helper()
	r.mu.Lock()
	produced := r.produced[m]
	r.mu.Unlock()
	require.Equal(t, 1, produced, "%s: OnProduce calls", what)
	evs := r.events(m)
	require.Len(t, evs, 1, "%s: delivery events", what)
	require.Same(t, m, evs[0].Message, what)
	return evs[0]
}

func TestWithHooksRefusesAHookThatImplementsNoHookInterface(t *testing.T) {
	for name, h := range map[string]Hook{"nil": nil, "struct": struct{}{}, "func": func() {}} {
		t.Run(name, func(t *testing.T) {
			_, err := New(kafka.ConfigMap{"bootstrap.servers": "localhost:9092"}, WithLogger(quietLogger), WithHooks(newRecorder(), h))
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, "WithHooks", ce.Key)
			require.Contains(t, err.Error(), "hook 1")
		})
	}
}

// TestEveryProducedMessageHasExactlyOneDeliveryEvent produces messages that are delivered, that fail
// and that Produce refuses, through every Produce variant, and checks that each had one OnProduce and
// one OnDelivery, with its outcome, and that a header OnProduce added reached the broker.
func TestEveryProducedMessageHasExactlyOneDeliveryEvent(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("hooked", 1, 1))
	rec := newRecorder()
	rec.traceHeader = true
	p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"message.max.bytes": 10000}, WithHooks(rec))
	rec.inCallback = p.callbacks.inCallback
	ctx := ctxTimeout(t, 30*time.Second)
	m := func(v string) *Message { return &Message{Topic: "hooked", Value: []byte(v)} }

	// Delivered, through each variant.
	var good []*Message
	var futs []*Future
	for _, v := range []string{"produce-1", "produce-2"} {
		mm := m(v)
		f, err := p.Produce(ctx, mm)
		require.NoError(t, err)
		good, futs = append(good, mm), append(futs, f)
	}
	mm := m("try")
	f, err := p.TryProduce(mm)
	require.NoError(t, err)
	good, futs = append(good, mm), append(futs, f)
	fnDone := make(chan error, 1)
	mm = m("func")
	require.NoError(t, p.ProduceFunc(ctx, mm, func(_ Delivery, err error) { fnDone <- err }))
	good = append(good, mm)
	results := make(chan Result, 1)
	mm = m("chan")
	require.NoError(t, p.ProduceChan(ctx, mm, results))
	good = append(good, mm)
	batch := []*Message{m("batch-1"), m("batch-2"), m("batch-3")}
	fs, err := p.ProduceBatch(ctx, batch)
	require.NoError(t, err)
	good, futs = append(good, batch...), append(futs, fs...)

	// Failed: librdkafka refuses a message too large with its framing, and, once it knows the topic
	// (after the deliveries Flush waits for), one for a partition the topic does not have.
	require.NoError(t, p.Flush(ctx))
	// 9975 bytes and the trace header fit message.max.bytes, not with librdkafka's framing.
	tooLarge := &Message{Topic: "hooked", Value: make([]byte, 9975)}
	noPartition := &Message{Topic: "hooked", Value: []byte("nowhere"), Partition: ExplicitPartition(7)}
	var failed []*Future
	for _, bad := range []*Message{tooLarge, noPartition} {
		f, err := p.Produce(ctx, bad)
		require.NoError(t, err)
		failed = append(failed, f)
	}

	// Refused by Produce.
	invalid := &Message{Topic: "", Value: []byte("no topic")}
	_, invalidErr := p.Produce(ctx, invalid)
	require.ErrorIs(t, invalidErr, ErrInvalidMessage)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	late := m("cancelled")
	ctxErr := p.ProduceFunc(cancelled, late, func(Delivery, error) {})
	require.ErrorIs(t, ctxErr, context.Canceled)
	badBatch := []*Message{m("refused-1"), {Topic: "bad topic"}, m("refused-3")}
	_, batchErr := p.ProduceBatch(ctx, badBatch)
	require.ErrorIs(t, batchErr, ErrInvalidMessage)
	_, nilErr := p.Produce(ctx, nil) // no hook for a nil message
	require.ErrorIs(t, nilErr, ErrInvalidMessage)

	require.NoError(t, p.Flush(ctx))
	// Flush has returned: every event of the messages it waited for has run.
	for _, f := range futs {
		require.True(t, isDone(f), "future not done after Flush")
	}
	require.NoError(t, <-fnDone)
	require.NoError(t, (<-results).Err)
	for _, mm := range good {
		e := rec.requireOneEvent(t, mm, string(mm.Value))
		require.NoError(t, e.Err, string(mm.Value))
		require.False(t, e.Refused)
		require.Equal(t, "hooked", e.Delivery.Topic)
		require.Positive(t, e.Latency, string(mm.Value))
	}
	for i, bad := range []*Message{tooLarge, noPartition} {
		e := rec.requireOneEvent(t, bad, "failed")
		_, ferr := failed[i].Wait(ctx)
		require.Error(t, ferr)
		require.Equal(t, ferr, e.Err, "the event's error is the Future's")
		require.False(t, e.Refused)
		require.Positive(t, e.Latency)
	}
	refused := map[*Message]error{invalid: invalidErr, late: ctxErr, badBatch[0]: batchErr, badBatch[1]: batchErr, badBatch[2]: batchErr}
	for mm, want := range refused {
		e := rec.requireOneEvent(t, mm, "refused")
		require.True(t, e.Refused)
		require.Equal(t, want, e.Err)
	}

	// After Close: refused with ErrClosed.
	require.NoError(t, p.Close(ctx))
	closed := m("after close")
	_, err = p.Produce(ctx, closed)
	require.ErrorIs(t, err, ErrClosed)
	require.True(t, rec.requireOneEvent(t, closed, "after close").Refused)

	rec.mu.Lock()
	assert.Empty(t, rec.offGor, "events that ran off the callback goroutine")
	assert.Len(t, rec.delivered, len(good)+2+len(refused)+1)
	var batched int
	var bytes int64
	for _, b := range rec.batches {
		require.Equal(t, "hooked", b.Topic)
		require.Positive(t, b.Took)
		batched += b.Messages
		bytes += b.Bytes
	}
	rec.mu.Unlock()
	// OnBatch counts what librdkafka took: the delivered messages, not the two it refused.
	assert.Equal(t, len(good), batched, "messages in OnBatch events")
	var wantBytes int64
	for _, mm := range good {
		s, err := validateMessage(mm)
		require.NoError(t, err)
		wantBytes += s
	}
	assert.Equal(t, wantBytes, bytes, "bytes in OnBatch events")

	// The header OnProduce added was sent.
	read := consumeAll(t, mc.BootstrapServers(), "hooked", len(good))
	for _, c := range read {
		require.Len(t, c.Headers, 1, "%s", c.Value)
		require.Equal(t, "trace", c.Headers[0].Key)
		require.Equal(t, "t-"+string(c.Value[:min(8, len(c.Value))]), string(c.Headers[0].Value))
	}
}

func isDone(f *Future) bool {
	select {
	case <-f.Done():
		return true
	default:
		return false
	}
}

// TestProduceBatchCutShortGivesTheMessagesItRefusedTheirEvents: a ProduceBatch whose ctx ends part way
// returns the Futures of the messages it accepted; the rest are refused, each with one event at once,
// and the accepted ones get theirs when delivered. A TryProduce that finds the buffer full too.
func TestProduceBatchCutShortGivesTheMessagesItRefusedTheirEvents(t *testing.T) {
	fe := newMemEngine(memConfig{})
	rec := newRecorder()
	p := newFakeProducer(t, fe, WithHooks(rec), WithMaxBuffered(2, 1<<20))
	msgs := make([]*Message, 5)
	for i := range msgs {
		msgs[i] = &Message{Topic: "t", Value: fmt.Appendf(nil, "%d", i)}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	futs, err := p.ProduceBatch(ctx, msgs)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, futs, 2, "the buffer holds two")
	for i, m := range msgs[2:] {
		e := rec.requireOneEvent(t, m, fmt.Sprint(i+2))
		require.True(t, e.Refused)
		require.Equal(t, err, e.Err)
	}
	full := &Message{Topic: "t", Value: []byte("full")}
	_, err = p.TryProduce(full)
	require.ErrorIs(t, err, ErrBufferFull)
	require.Equal(t, ErrBufferFull, rec.requireOneEvent(t, full, "TryProduce").Err)
	for _, m := range msgs[:2] {
		require.Empty(t, rec.events(m), "no outcome yet")
	}

	require.Eventually(t, func() bool { return fe.pendingCount() == 2 }, 10*time.Second, time.Millisecond)
	fe.deliver(-1)
	require.NoError(t, p.Flush(ctxTimeout(t, 10*time.Second)))
	for i, m := range msgs[:2] {
		e := rec.requireOneEvent(t, m, fmt.Sprint(i))
		require.False(t, e.Refused)
		require.NoError(t, e.Err)
		require.EqualValues(t, i, e.Delivery.Offset)
	}
}

// TestMessagesPurgedByAnAbortedCloseHaveOneDeliveryEventEach: Close whose context ends fails what
// librdkafka holds; each message still gets one event, before Close returns.
func TestMessagesPurgedByAnAbortedCloseHaveOneDeliveryEventEach(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("purged", 1, 1))
	rec := newRecorder()
	p, err := New(kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers()}, WithLogger(quietLogger), WithHooks(rec))
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	ctx := ctxTimeout(t, 30*time.Second)
	f, err := p.Produce(ctx, &Message{Topic: "purged", Value: []byte("warm-up")})
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)

	require.NoError(t, mc.SetBrokerDown(1))
	msgs := make([]*Message, 30)
	for i := range msgs {
		msgs[i] = &Message{Topic: "purged", Value: fmt.Appendf(nil, "%d", i)}
		_, err := p.Produce(ctx, msgs[i])
		require.NoError(t, err)
	}
	cctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Close(cctx), context.DeadlineExceeded)
	for i, m := range msgs {
		e := rec.requireOneEvent(t, m, fmt.Sprint(i))
		require.Error(t, e.Err, "message %d", i)
		require.False(t, e.Refused)
	}
	require.NoError(t, mc.SetBrokerUp(1))
}

// panicker panics in every hook method.
type panicker struct{}

func (panicker) OnProduce(context.Context, *Message) { panic("OnProduce") }
func (panicker) OnDelivery(DeliveryEvent)            { panic("OnDelivery") }
func (panicker) OnBatch(BatchEvent)                  { panic("OnBatch") }
func (panicker) OnError(error)                       { panic("OnError") }
func (panicker) OnStats(*LibrdkafkaStats)            { panic("OnStats") }

// TestPanickingHooksAreRecoveredAndCostNoOtherEventOrOutcome registers a hook that panics in every
// method before and after one that records: the recorder still gets every event, every message its
// outcome, and Stats.HookPanics counts the panics.
func TestPanickingHooksAreRecoveredAndCostNoOtherEventOrOutcome(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("panics", 1, 1))
	rec := newRecorder()
	p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{
		"statistics.interval.ms": 100, "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 50,
	}, WithHooks(panicker{}, rec, panicker{}))
	ctx := ctxTimeout(t, 30*time.Second)

	const n = 10
	var futs []*Future
	var msgs []*Message
	called := make(chan struct{}, n)
	for i := range n {
		m := &Message{Topic: "panics", Value: fmt.Appendf(nil, "%d", i)}
		msgs = append(msgs, m)
		if i%2 == 0 {
			f, err := p.Produce(ctx, m)
			require.NoError(t, err)
			futs = append(futs, f)
		} else {
			require.NoError(t, p.ProduceFunc(ctx, m, func(_ Delivery, err error) {
				assert.NoError(t, err)
				called <- struct{}{}
			}))
		}
	}
	_, err := p.Produce(ctx, &Message{}) // refused: one more OnProduce and OnDelivery each
	require.ErrorIs(t, err, ErrInvalidMessage)
	for _, f := range futs {
		_, err := f.Wait(ctx)
		require.NoError(t, err)
	}
	require.NoError(t, p.Flush(ctx))
	require.Len(t, called, n/2)
	for i, m := range msgs {
		require.NoError(t, rec.requireOneEvent(t, m, fmt.Sprint(i)).Err)
	}

	select {
	case <-rec.gotStats:
	case <-ctx.Done():
		t.Fatal("no statistics report")
	}
	require.NoError(t, mc.SetBrokerDown(1)) // error events
	require.Eventually(t, func() bool { return len(rec.errors()) > 0 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, mc.SetBrokerUp(1))

	st := p.Stats()
	rec.mu.Lock()
	batches, errs, stats := len(rec.batches), len(rec.errs), len(rec.stats)
	rec.mu.Unlock()
	require.Positive(t, batches)
	// Two panickers, each panicking at every produce and delivery event (n+1 each: those are over);
	// the first one also at every other event the recorder saw, since it runs before the recorder.
	// Events may have come since the recorder's counts were read.
	least := uint64(2*2*(n+1) + batches + errs + stats)
	require.GreaterOrEqual(t, st.HookPanics, least)
	require.Zero(t, st.CallbackPanics)
	require.EqualValues(t, n, st.Delivered)
}

// blockingHook blocks in OnDelivery of an accepted message until release is closed.
type blockingHook struct {
	entered chan struct{} // gets a value each time OnDelivery blocks
	release chan struct{}
	events  atomic.Int64
}

func (h *blockingHook) OnDelivery(e DeliveryEvent) {
	h.events.Add(1)
	if e.Refused {
		return
	}
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-h.release
}

// TestSlowDeliveryHookDelaysNoFutureAndMakesProduceWaitForRoom: while a HookDelivery is blocked, the
// Futures of later messages still resolve, their messages keep their room in the buffer, and once it
// is full Produce waits (TryProduce refuses) instead of a queue growing.
func TestSlowDeliveryHookDelaysNoFutureAndMakesProduceWaitForRoom(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("slow", 1, 1))
	h := &blockingHook{entered: make(chan struct{}, 1), release: make(chan struct{})}
	const limit = 8
	p := newTestProducer(t, mc.BootstrapServers(), nil, WithHooks(h), WithMaxBuffered(limit, 1<<20))
	ctx := ctxTimeout(t, 30*time.Second)

	first, err := p.Produce(ctx, &Message{Topic: "slow", Value: []byte("first")})
	require.NoError(t, err)
	_, err = first.Wait(ctx)
	require.NoError(t, err)
	select {
	case <-h.entered: // the hook holds the first message's event
	case <-ctx.Done():
		t.Fatal("OnDelivery not called")
	}

	var futs []*Future
	for i := 1; i < limit; i++ {
		f, err := p.Produce(ctx, &Message{Topic: "slow", Value: fmt.Appendf(nil, "%d", i)})
		require.NoError(t, err)
		futs = append(futs, f)
	}
	for i, f := range futs {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := f.Wait(wctx)
		cancel()
		require.NoError(t, err, "message %d: its Future must resolve while the hook blocks", i+1)
	}
	st := p.Stats()
	require.EqualValues(t, limit, st.HeldMessages, "outcomes whose hook has not run keep their room")
	// Counted right after the Futures are resolved.
	require.Eventually(t, func() bool { return p.Stats().Delivered == limit }, 10*time.Second, time.Millisecond)

	// The buffer is full: Produce waits, TryProduce refuses.
	_, err = p.TryProduce(&Message{Topic: "slow", Value: []byte("no room")})
	require.ErrorIs(t, err, ErrBufferFull)
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = p.Produce(wctx, &Message{Topic: "slow", Value: []byte("waits")})
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)

	close(h.release)
	require.NoError(t, p.Flush(ctx))
	f, err := p.Produce(ctx, &Message{Topic: "slow", Value: []byte("after")})
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Flush(ctx))
	require.EqualValues(t, limit+1+2, h.events.Load(), "delivered, and the two refused")
}

// TestHookStatsGetsLibrdkafkasStatisticsParsed: with statistics.interval.ms set,
// HookStats gets parsed reports that name the topic's partitions and the broker.
func TestHookStatsGetsLibrdkafkasStatisticsParsed(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("stats", 2, 1))
	rec := newRecorder()
	p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"statistics.interval.ms": 100, "client.id": "hooks-test"},
		WithHooks(rec))
	rec.inCallback = p.callbacks.inCallback
	ctx := ctxTimeout(t, 30*time.Second)
	const n = 20
	for i := range n {
		_, err := p.Produce(ctx, &Message{Topic: "stats", Value: []byte("hello"), Partition: ExplicitPartition(int32(i % 2))})
		require.NoError(t, err)
	}
	require.NoError(t, p.Flush(ctx))
	var s *LibrdkafkaStats
	require.Eventually(t, func() bool {
		s = rec.lastStats()
		if s == nil {
			return false
		}
		ts, ok := s.Topics["stats"]
		return ok && ts.Partitions[0].TxMessages+ts.Partitions[1].TxMessages == n && s.TxMessages == n
	}, 20*time.Second, 20*time.Millisecond, "a report with both partitions' messages sent")
	require.Equal(t, "hooks-test", s.ClientID)
	require.NotEmpty(t, s.Name)
	require.NotEmpty(t, s.Raw)
	require.WithinDuration(t, time.Now(), s.Time, time.Minute)
	require.EqualValues(t, n, s.TxMessages)
	ts := s.Topics["stats"]
	require.Equal(t, "stats", ts.Topic)
	require.Len(t, ts.Partitions, 2, "the two partitions; the empty UA partition is left out")
	for id, ps := range ts.Partitions {
		require.Equal(t, id, ps.Partition)
		require.EqualValues(t, 1, ps.Leader)
		require.EqualValues(t, n/2, ps.TxMessages)
		require.EqualValues(t, n/2*len("hello"), ps.TxBytes)
	}
	var up *BrokerStats
	for name, b := range s.Brokers {
		require.Equal(t, name, b.Name)
		if b.NodeID == 1 {
			up = &b
		}
	}
	require.NotNil(t, up, "broker 1 in %v", s.Brokers)
	require.Equal(t, "UP", up.State)
	require.Positive(t, up.Requests)
	require.Positive(t, up.Connects)
	rec.mu.Lock()
	assert.Empty(t, rec.offGor, "OnStats ran off the callback goroutine")
	rec.mu.Unlock()
}

// TestHookErrorGetsErrorEventsBoundedAndTheFatalError: error events reach HookError on the callback
// goroutine; while it is busy, at most maxErrorEvents wait and the rest are dropped; the fatal error
// comes once, as the error messages fail with.
func TestHookErrorGetsErrorEventsBoundedAndTheFatalError(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	rec := newRecorder()
	p := newFakeProducer(t, fe, WithHooks(rec))
	rec.inCallback = p.callbacks.inCallback
	ctx := ctxTimeout(t, 10*time.Second)

	// A callback holds the callback goroutine while a burst of error events comes.
	entered, release := make(chan struct{}), make(chan struct{})
	require.NoError(t, p.ProduceFunc(ctx, &Message{Topic: "t", Value: []byte("v")}, func(Delivery, error) {
		close(entered)
		<-release
	}))
	<-entered
	transport := kafka.NewError(kafka.ErrTransport, "connection refused", false)
	for range 3 * maxErrorEvents {
		fe.sink.onError(transport) // as the engine's report goroutine does
	}
	close(release)
	require.Eventually(t, func() bool { return len(rec.errors()) == maxErrorEvents }, 10*time.Second, 5*time.Millisecond)

	fe.raiseFatal(kafka.NewError(kafka.ErrFenced, "fenced", true))
	require.Eventually(t, func() bool { return len(rec.errors()) == maxErrorEvents+1 }, 10*time.Second, 5*time.Millisecond)
	errs := rec.errors()
	var ke kafka.Error
	require.ErrorAs(t, errs[0], &ke)
	require.Equal(t, kafka.ErrTransport, ke.Code())
	require.False(t, IsFatal(errs[0]))
	fatal := errs[len(errs)-1]
	require.ErrorIs(t, fatal, ErrFatal)
	require.ErrorAs(t, fatal, &ke)
	require.Equal(t, kafka.ErrFenced, ke.Code())
	rec.mu.Lock()
	assert.Empty(t, rec.offGor, "OnError ran off the callback goroutine")
	rec.mu.Unlock()
}

func TestParseLibrdkafkaStatsFromACapturedReport(t *testing.T) {
	// Captured from the batch engine on librdkafka 2.15.1's mock cluster, with statistics.interval.ms
	// 100, under load: the latency windows have samples.
	raw, err := os.ReadFile("testdata/librdkafka_stats.json")
	require.NoError(t, err)
	s, err := parseLibrdkafkaStats(raw)
	require.NoError(t, err)
	us := time.Microsecond
	want := &LibrdkafkaStats{
		Name: "capture#producer-2", ClientID: "capture", Time: time.Unix(1796113239, 0),
		Messages: 50, MessageBytes: 250, MaxMessages: 100000, MaxMessageBytes: 1073741824,
		TxMessages: 6601, TxMessageBytes: 33005, Requests: 55, RequestBytes: 93558,
		Brokers: map[string]BrokerStats{"127.0.0.1:35497/1": {
			Name: "127.0.0.1:35497/1", NodeID: 1, State: "UP",
			Requests: 55, RequestBytes: 93558, Connects: 1,
			RTT:             LatencyStats{Min: 4 * us, Max: 284 * us, Avg: 93 * us, P50: 73 * us, P95: 267 * us, P99: 285 * us, Count: 22},
			InternalLatency: LatencyStats{Min: 6 * us, Max: 9209 * us, Avg: 3445 * us, P50: 5151 * us, P95: 5567 * us, P99: 9215 * us, Count: 900},
			OutbufLatency:   LatencyStats{Min: 6 * us, Max: 133 * us, Avg: 32 * us, P50: 26 * us, P95: 107 * us, P99: 133 * us, Count: 22},
		}},
		Topics: map[string]TopicStats{"stats": {Topic: "stats", Partitions: map[int32]PartitionStats{
			0: {Partition: 0, Leader: 1, TxMessages: 3301, TxBytes: 16505},
			1: {Partition: 1, Leader: 1, TxMessages: 3300, TxBytes: 16500},
		}}},
		Raw: raw,
	}
	require.Equal(t, want, s)

	_, err = parseLibrdkafkaStats([]byte(`{"brokers": [`))
	require.Error(t, err)
}

func TestParseLibrdkafkaStatsKeepsAUAPartitionThatHoldsMessages(t *testing.T) {
	s, err := parseLibrdkafkaStats([]byte(`{"topics": {"t": {"topic": "t", "partitions": {
		"-1": {"partition": -1, "leader": -1, "msgq_cnt": 3, "msgq_bytes": 30, "xmit_msgq_cnt": 1, "xmit_msgq_bytes": 10},
		"0": {"partition": 0, "leader": 2, "msgs_inflight": 4}}}}}`))
	require.NoError(t, err)
	require.Equal(t, map[int32]PartitionStats{
		-1: {Partition: -1, Leader: -1, QueuedMessages: 4, QueuedBytes: 40},
		0:  {Partition: 0, Leader: 2, InFlight: 4},
	}, s.Topics["t"].Partitions)
	require.True(t, s.Time.IsZero())
}

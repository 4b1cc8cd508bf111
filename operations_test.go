package aioproducer

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Health is nil while a broker answers, says ErrBrokersDown (since when, and the last connection
// error) once librdkafka can reach none, and nil again as soon as one answers, with no message sent
// to show it. After Close it says ErrClosed.
func TestHealthSaysWhenNoBrokerIsReachableAndWhenOneIsAgain(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("health", 1, 1))
	p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{
		"reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
	})
	ctx := ctxTimeout(t, 30*time.Second)
	f, err := p.Produce(ctx, msg("health", "k"))
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Health())

	require.NoError(t, mc.SetBrokerDown(1))
	down := time.Now()
	var herr error
	require.Eventually(t, func() bool { herr = p.Health(); return herr != nil }, 15*time.Second, 10*time.Millisecond,
		"Health with the only broker down")
	t.Logf("Health said the brokers are down %v after the broker went: %v", time.Since(down).Round(time.Millisecond), herr)
	assert.ErrorIs(t, herr, ErrBrokersDown)
	var ke kafka.Error
	require.ErrorAs(t, herr, &ke, "the last connection error")
	assert.Contains(t, herr.Error(), "since ")
	assert.NotErrorIs(t, herr, ErrClosed)

	require.NoError(t, mc.SetBrokerUp(1))
	up := time.Now()
	require.Eventually(t, func() bool { return p.Health() == nil }, 10*time.Second, 10*time.Millisecond,
		"Health once the broker is back, with nothing produced meanwhile")
	t.Logf("Health said the broker is back %v after it came back", time.Since(up).Round(time.Millisecond))

	require.NoError(t, p.Close(ctx))
	assert.ErrorIs(t, p.Health(), ErrClosed)
}

// After a fatal error Health says ErrFatal with librdkafka's error, for good.
func TestHealthSaysFatal(t *testing.T) {
	me := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, me)
	require.NoError(t, p.Health())
	me.raiseFatal(kafka.NewError(kafka.ErrFenced, "fenced by a newer instance", true))
	err := p.Health()
	assert.ErrorIs(t, err, ErrFatal)
	var ke kafka.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, kafka.ErrFenced, ke.Code())
}

// purgeOutcome checks one purged message's outcome: a *DeliveryError wrapping ErrPurged and
// kafka.ErrPurgeQueue, not in the log.
func purgeOutcome(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrPurged)
	var de *DeliveryError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, kafka.ErrPurgeQueue, de.Err.Code())
	assert.False(t, IsOutcomeUnknown(err), "%v", err)
	assert.Contains(t, err.Error(), "not persisted")
	assert.Equal(t, "purged", ErrorClass(err))
}

// Purge fails what the engine holds and what waits in the producer for room in its queue, every
// outcome handed over (Futures and callbacks) when it returns; the producer stays open and sends what
// comes next.
func TestPurgeFailsWhatWasNotSentAndKeepsTheProducerOpen(t *testing.T) {
	me := newMemEngine(memConfig{})
	me.setCapacity(3) // three in "librdkafka", the rest wait for room in the executor and the shard
	p := newFakeProducer(t, me)
	ctx := ctxTimeout(t, 10*time.Second)
	const n = 10
	futs := make([]*Future, 0, n)
	var called atomic.Int32
	for i := range n {
		f, err := p.Produce(ctx, msg("purge", "k"))
		require.NoError(t, err)
		futs = append(futs, f)
		require.NoError(t, p.ProduceFunc(ctx, msg("purge", "k"), func(_ Delivery, err error) {
			called.Add(1)
			if assert.Error(t, err, "callback %d", i) {
				assert.ErrorIs(t, err, ErrPurged)
			}
		}))
	}
	require.Eventually(t, func() bool { return me.Outstanding() == 3 }, 5*time.Second, time.Millisecond)

	require.NoError(t, p.Purge(ctx))
	assert.EqualValues(t, n, called.Load(), "every purged message's callback ran before Purge returned")
	for i, f := range futs {
		require.True(t, f.IsDone(), "Future %d resolved before Purge returned", i)
		_, err := f.Wait(ctx)
		purgeOutcome(t, err)
	}
	s := p.Stats()
	assert.Zero(t, s.HeldMessages, "a purged message frees its room in the buffer")

	// Open as before: the next message goes out.
	f, err := p.Produce(ctx, msg("purge", "after"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return me.Outstanding() == 1 }, 5*time.Second, time.Millisecond)
	me.deliver(1)
	d, err := f.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, "purge", d.Topic)

	require.NoError(t, p.Close(ctx))
	assert.ErrorIs(t, p.Purge(ctx), ErrClosed)
}

// A message in flight, in a produce request the broker has not answered, keeps its real outcome; the
// messages queued behind it in librdkafka fail at once.
func TestPurgeKeepsTheOutcomeOfWhatIsInFlight(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("inflight", 1, 1))
	sent := &tagWatch{tag: "PRODUCE", seen: make(chan struct{}, 64)}
	p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{
		"max.in.flight.requests.per.connection": 1, // what comes after the first request waits in the queue
		"linger.ms":                             0,
		"debug":                                 "msg", // a PRODUCE line says a request left
	}, WithLogger(slog.New(sent)))
	ctx := ctxTimeout(t, 30*time.Second)
	warm, err := p.Produce(ctx, msg("inflight", "warm"))
	require.NoError(t, err)
	_, err = warm.Wait(ctx)
	require.NoError(t, err)

	require.NoError(t, mc.SetRoundtripDuration(1, 3*time.Second))
	for len(sent.seen) > 0 {
		<-sent.seen
	}
	first, err := p.Produce(ctx, msg("inflight", "first"))
	require.NoError(t, err)
	select {
	case <-sent.seen: // the first request is on its way
	case <-ctx.Done():
		t.Fatal("no produce request left")
	}
	queued := make([]*Future, 20)
	for i := range queued {
		queued[i], err = p.Produce(ctx, msg("inflight", "queued"))
		require.NoError(t, err)
	}
	start := time.Now()
	require.NoError(t, p.Purge(ctx))
	took := time.Since(start)
	for _, f := range queued {
		require.True(t, f.IsDone())
		_, err := f.Wait(ctx)
		purgeOutcome(t, err)
	}
	assert.False(t, first.IsDone(), "the message in flight waits for the broker's answer")
	assert.Less(t, took, 2*time.Second, "Purge does not wait for what is in flight")
	d, err := first.Wait(ctx)
	require.NoError(t, err, "the message in flight is delivered")
	assert.EqualValues(t, 1, d.Offset)
	require.NoError(t, mc.SetRoundtripDuration(1, 0))

	after, err := p.Produce(ctx, msg("inflight", "after"))
	require.NoError(t, err)
	d, err = after.Wait(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 2, d.Offset, "purged messages took no offset")
}

// A Purge whose context ends returns its error: here it waits for a callback that does not return.
func TestPurgeReturnsWhenItsContextEnds(t *testing.T) {
	p := newFakeProducer(t, newMemEngine(memConfig{Auto: true}))
	ctx := ctxTimeout(t, 10*time.Second)
	release := make(chan struct{})
	running := make(chan struct{})
	require.NoError(t, p.ProduceFunc(ctx, msg("slow", "k"), func(Delivery, error) {
		close(running)
		<-release
	}))
	<-running
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, p.Purge(short), context.DeadlineExceeded)
	close(release)
	require.NoError(t, p.Purge(ctx))
}

// Purge is on the Client interface, so a Fake answers it too.
func TestClientHasPurgeAndHealth(t *testing.T) {
	var c Client = newFakeProducer(t, newMemEngine(memConfig{Auto: true}))
	require.NoError(t, c.Purge(context.Background()))
	require.NoError(t, c.Health())
	require.NoError(t, c.Close(context.Background()))
}

// tagWatch is a slog handler that signals each librdkafka line with its tag.
type tagWatch struct {
	tag  string
	seen chan struct{}
}

func (w *tagWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *tagWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *tagWatch) WithGroup(string) slog.Handler            { return w }
func (w *tagWatch) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "tag" && a.Value.String() == w.tag {
			select {
			case w.seen <- struct{}{}:
			default:
			}
			return false
		}
		return true
	})
	return nil
}

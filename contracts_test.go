package aioproducer

// Contracts that peer clients (confluent-kafka-go, franz-go, the Java producer, the Python
// AIOProducer) keep and test in their own suites, so users rely on them. The ones that involve
// librdkafka run on its mock cluster.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// With linger.ms far beyond the test's deadline, Flush and Close must make librdkafka send at once, as
// rd_kafka_flush does (confluent-kafka-go issue 1013; Java's flush and close do the same).
func TestFlushAndCloseDoNotWaitOutLingerMs(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("t", 1, 1))
	p, err := New(kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers(), "linger.ms": 60000},
		WithLogger(quietLogger))
	require.NoError(t, err)
	ctx := ctxTimeout(t, 20*time.Second)

	f, err := p.Produce(ctx, msg("t", "flushed"))
	require.NoError(t, err)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, p.Flush(fctx), "Flush waited for linger.ms (60 s)")
	_, err = f.Wait(ctx)
	require.NoError(t, err)

	f, err = p.Produce(ctx, msg("t", "closed"))
	require.NoError(t, err)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, p.Close(cctx), "Close waited for linger.ms (60 s)")
	d, err := f.Wait(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, d.Offset)
}

// Close from a callback cannot wait for the callbacks behind it, which run on its own goroutine: it
// returns, and the shutdown goes on by itself (Java turns close() in a callback into close(0)). Flush
// from a callback fails at once with ErrInCallback (Java's flush throws).
func TestCloseAndFlushFromACallbackReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{Auto: true})
		p := newFakeProducer(t, fe)
		var flushErr, closeErr, lateErr error
		var callbacks atomic.Int32
		returned := make(chan struct{})
		require.NoError(t, p.ProduceFunc(t.Context(), msg("t", "first"), func(Delivery, error) {
			callbacks.Add(1)
			flushErr = p.Flush(context.Background())
			closeErr = p.Close(context.Background())
			// Close has returned: intake is closed, even though the shutdown goes on by itself.
			_, lateErr = p.Produce(context.Background(), msg("t", "after Close returned"))
			close(returned)
		}))
		for i := range 10 { // the callbacks behind the one that closes
			_ = p.ProduceFunc(t.Context(), msg("t", fmt.Sprint(i)), func(Delivery, error) { callbacks.Add(1) })
		}
		<-returned
		require.ErrorIs(t, flushErr, ErrInCallback)
		require.NoError(t, closeErr)
		require.ErrorIs(t, lateErr, ErrClosed, "a Produce after Close returned was accepted")

		// Close from another goroutine waits for the shutdown the callback began.
		require.NoError(t, p.Close(t.Context()))
		assert.EqualValues(t, p.stats.accepted.Load(), callbacks.Load(), "every accepted message's callback ran")
		_, err := p.Produce(t.Context(), msg("t", "late"))
		require.ErrorIs(t, err, ErrClosed)
	})
}

// The same on librdkafka, with goroutines checked by goleak when the package's tests end.
func TestCloseFromACallbackLeavesNoGoroutine(t *testing.T) {
	mc := newMockCluster(t, 1)
	p, err := New(kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers()}, WithLogger(quietLogger))
	require.NoError(t, err)
	ctx := ctxTimeout(t, 20*time.Second)
	returned := make(chan error, 1)
	require.NoError(t, p.ProduceFunc(ctx, msg("t", "a"), func(Delivery, error) {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		returned <- p.Close(cctx)
	}))
	select {
	case err := <-returned:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("Close from a callback did not return")
	}
	require.NoError(t, p.Close(ctx))
}

// TryProduce fails with ErrBufferFull only when the WithMaxBuffered limits are reached (franz-go's
// TryProduce contract), however far behind the producer's workers are.
func TestTryProduceFailsOnlyAtTheBufferLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{Auto: true})
		gate := make(chan struct{})
		fe.setGate(gate) // the worker's first enqueue waits: everything else waits in the producer
		opened := false
		defer func() { // a failing check must not leave Close waiting on the gate
			if !opened {
				close(gate)
			}
		}()
		const limit = 5000
		p := newFakeProducer(t, fe, WithWorkers(1), WithBatchSize(10), WithMaxBuffered(limit, 1<<30))
		for i := range limit {
			_, err := p.TryProduce(msg("t", fmt.Sprint(i)))
			require.NoError(t, err, "TryProduce %d of %d", i+1, limit)
		}
		_, err := p.TryProduce(msg("t", "over"))
		require.ErrorIs(t, err, ErrBufferFull, "at the limit")
		close(gate)
		opened = true
		require.NoError(t, p.Flush(t.Context()))
		assert.EqualValues(t, limit, p.Stats().Delivered)
	})
}

// The same on librdkafka, as a user measured it: 20 000 TryProduce from one goroutine, buffer of
// 20 000, broker up.
func TestTryProduceOnABrokerNeverFailsBelowTheLimit(t *testing.T) {
	mc := newMockCluster(t, 1)
	const n = 20000
	p := newTestProducer(t, mc.BootstrapServers(), nil, WithMaxBuffered(n, 64<<20))
	full := 0
	for i := range n {
		if _, err := p.TryProduce(msg("t", fmt.Sprint(i))); err != nil {
			require.ErrorIs(t, err, ErrBufferFull)
			full++
		}
	}
	assert.Zero(t, full, "calls that got ErrBufferFull with at most %d messages held", n)
	require.NoError(t, p.Flush(ctxTimeout(t, 30*time.Second)))
}

// A finished Close's result wins over a done context, every time.
func TestCloseOfAClosedProducerReturnsItsResultWhateverTheContext(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	require.NoError(t, p.Close(t.Context()))
	done, cancel := context.WithCancel(t.Context())
	cancel()
	for i := range 1000 {
		require.NoError(t, p.Close(done), "call %d", i)
	}
}

// Go's convention (database/sql, net/http, franz-go): a call whose context is already done does
// nothing and returns the context's error.
func TestProduceWithADoneContextAcceptsNothing(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := p.Produce(ctx, msg("t", "a"))
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, p.ProduceFunc(ctx, msg("t", "a"), func(Delivery, error) { t.Error("callback of a refused message") }), context.Canceled)
	assert.ErrorIs(t, p.ProduceChan(ctx, msg("t", "a"), make(chan Result, 1)), context.Canceled)
	futs, err := p.ProduceBatch(ctx, []*Message{msg("t", "a")})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, futs)
	st := p.Stats()
	assert.Zero(t, p.stats.accepted.Load())
	assert.Zero(t, st.HeldMessages)
}

// A nil callback or channel is the caller's programming error, not an invalid message.
func TestNilCallbackOrChannelIsAProgrammingError(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	err := p.ProduceFunc(t.Context(), msg("t", "a"), nil)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrInvalidMessage)
	assert.Contains(t, err.Error(), "nil callback")
	err = p.ProduceChan(t.Context(), msg("t", "a"), nil)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrInvalidMessage)
	assert.Contains(t, err.Error(), "nil channel")
	assert.Zero(t, p.stats.accepted.Load())
}

// Kafka keeps milliseconds: the Delivery says what the log holds, for an explicit timestamp too.
func TestDeliveryTimestampIsInMilliseconds(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe)
	ts := time.Date(2026, 12, 1, 10, 11, 12, 345_678_901, time.UTC)
	f, err := p.Produce(t.Context(), &Message{Topic: "t", Timestamp: ts})
	require.NoError(t, err)
	d, err := f.Wait(t.Context())
	require.NoError(t, err)
	assert.True(t, d.Timestamp.Equal(ts.Truncate(time.Millisecond)), "got %v", d.Timestamp)
}

// A message larger than message.max.bytes can never be sent: Produce refuses it and says why.
func TestMessageLargerThanMessageMaxBytesIsRefusedAtProduce(t *testing.T) {
	mc := newMockCluster(t, 1)
	p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"message.max.bytes": 2000})
	_, err := p.Produce(t.Context(), &Message{Topic: "t", Key: []byte("k"), Value: make([]byte, 2000)})
	require.ErrorIs(t, err, ErrInvalidMessage)
	assert.Contains(t, err.Error(), "2001 bytes")
	assert.Contains(t, err.Error(), "message.max.bytes (2000)")

	// Under the limit by less than librdkafka's framing: librdkafka refuses it, and the error
	// names the setting and the sizes.
	f, err := p.Produce(t.Context(), &Message{Topic: "t", Value: make([]byte, 1990)})
	require.NoError(t, err)
	_, err = f.Wait(ctxTimeout(t, 10*time.Second))
	var ke kafka.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, kafka.ErrMsgSizeTooLarge, ke.Code())
	assert.Contains(t, err.Error(), "1990 bytes")
	assert.Contains(t, err.Error(), "message.max.bytes (2000)")
	assert.False(t, IsOutcomeUnknown(err), "refused before it was sent: %v", err)
}

// New refuses these configurations, and the *ConfigError names the key as the user wrote it (as
// confluent-kafka-go converts values, and librdkafka's alias or kafka.ConfigMap never named instead).
func TestNewRefusesConfigurationsNamingTheUsersKey(t *testing.T) {
	tests := []struct {
		name string
		cm   kafka.ConfigMap
		key  string
	}{
		{"unknown go.* key", kafka.ConfigMap{"go.foo": 1}, "go.foo"},
		{"a go.* key the producer manages", kafka.ConfigMap{"go.delivery.reports": false}, "go.delivery.reports"},
		{"a float where an int is due", kafka.ConfigMap{"linger.ms": 5.5}, "linger.ms"},
		{"a word where an int is due", kafka.ConfigMap{"linger.ms": "abc"}, "linger.ms"},
		{"an alias with a bad value", kafka.ConfigMap{"queue.buffering.max.ms": "abc"}, "queue.buffering.max.ms"},
		{"unknown property", kafka.ConfigMap{"no.such.property": "x"}, "no.such.property"},
		{"bad value in default.topic.config", kafka.ConfigMap{"default.topic.config": kafka.ConfigMap{"message.timeout.ms": "soon"}}, "message.timeout.ms"},
		{"a value of an unsupported type", kafka.ConfigMap{"acks": int64(1)}, "acks"},
		{"a SASL mechanism librdkafka lacks", kafka.ConfigMap{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "NO-SUCH"}, "sasl.mechanism"},
		{"a CA file that is not there", kafka.ConfigMap{"security.protocol": "SSL", "ssl.ca.location": "/no/such/ca.pem"}, "ssl.ca.location"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:1"}
			for k, v := range tt.cm {
				cm[k] = v
			}
			p, err := New(cm, WithLogger(quietLogger))
			require.Nil(t, p)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.key, ce.Key, "%v", err)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.NotContains(t, err.Error(), "kafka.ConfigMap")
		})
	}
}

// A message that times out before it was ever sent is not outcome unknown: the producer asks librdkafka
// (rd_kafka_message_status). The error says no broker was reachable, and Close, waiting, warns once why.
func TestMessagesForUnreachableBrokersFailSayingSoAndCloseWarns(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Port 1 on the loopback refuses every connection.
	p, err := New(kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 3000},
		WithLogger(log))
	require.NoError(t, err)
	ctx := ctxTimeout(t, 30*time.Second)
	f, err := p.Produce(ctx, msg("t", "lost"))
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, p.Close(ctx), "Close waits for the timeout, which is an outcome")
	t.Logf("Close returned after %v", time.Since(start).Round(time.Millisecond))

	_, err = f.Wait(ctx)
	var ke kafka.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, kafka.ErrMsgTimedOut, ke.Code())
	assert.Contains(t, err.Error(), "no broker was reachable")
	assert.Contains(t, err.Error(), "127.0.0.1:1", "the last connection error names the broker")
	assert.False(t, IsOutcomeUnknown(err), "never sent: %v", err)
	assert.Contains(t, err.Error(), "not persisted")

	logged := out.String()
	assert.Equal(t, 1, strings.Count(logged, "Close is waiting for messages but no broker was reachable"), "%s", logged)
	assert.Contains(t, logged, "message.timeout.ms (3s)")
}

// An aborted Close fails what was never sent with ErrClosed ("not sent"), and says of a message purged
// in flight that it may be in the log: that one is not ErrClosed.
func TestAbortedCloseTellsMessagesNotSentFromMessagesInFlight(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("t", 1, 1))
	// The partition's in-flight count and the messages waiting in the brokers' output buffers, in
	// librdkafka's latest statistics: a message counted in flight may still be in a request not yet
	// written, which a purge fails as queued.
	var inFlightNow, outbufNow atomic.Int64
	p, err := New(kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers(), "max.in.flight": 1, "enable.idempotence": false,
		"statistics.interval.ms": 50},
		WithLogger(quietLogger), WithWorkers(1), WithHooks(statsFunc(func(s *LibrdkafkaStats) {
			var outbuf int64
			for _, b := range s.Brokers {
				outbuf += b.OutbufMessages
			}
			outbufNow.Store(outbuf)
			inFlightNow.Store(s.Topics["t"].Partitions[0].InFlight)
		})))
	require.NoError(t, err)
	ctx := ctxTimeout(t, 30*time.Second)
	f, err := p.Produce(ctx, msg("t", "warm-up"))
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)

	require.NoError(t, mc.SetRoundtripDuration(1, 5*time.Second)) // what is sent now stays in flight
	inFlight, err := p.Produce(ctx, msg("t", "in flight"))
	require.NoError(t, err)
	// librdkafka sends it (after linger.ms; a loaded machine may take a while).
	require.Eventually(t, func() bool { return inFlightNow.Load() == 1 && outbufNow.Load() == 0 }, 10*time.Second, 10*time.Millisecond)
	queued := make([]*Future, 20)
	for i := range queued {
		queued[i], err = p.Produce(ctx, msg("t", fmt.Sprint(i)))
		require.NoError(t, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Close(cctx), context.DeadlineExceeded)

	_, err = inFlight.Wait(ctx)
	var ke kafka.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, kafka.ErrPurgeInflight, ke.Code(), "%v", err)
	assert.True(t, IsOutcomeUnknown(err), "%v", err)
	assert.NotErrorIs(t, err, ErrClosed, "it may be in the log: %v", err)
	assert.Contains(t, err.Error(), "in flight")
	assert.NotContains(t, err.Error(), "not sent")
	for i, f := range queued {
		_, err := f.Wait(ctx)
		require.ErrorIs(t, err, ErrClosed, "message %d", i)
		assert.Contains(t, err.Error(), "not sent")
		assert.False(t, IsOutcomeUnknown(err), "message %d: %v", i, err)
		if errors.As(err, &ke) {
			assert.Equal(t, kafka.ErrPurgeQueue, ke.Code(), "message %d: %v", i, err)
		}
	}
}

// A broker that refuses the credentials: librdkafka says so twice, then only that all brokers are down
// at each failed reconnection, and keeps the messages until message.timeout.ms. Once the failure has
// lasted authGrace, the producer fails them, and those produced while it lasts at the next failed
// reconnection, with ErrAuthentication (not retriable); it logs the broker's reason once, and works
// again with new credentials.
func TestAuthenticationFailureFailsMessagesPromptlyAndSaysWhy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out syncBuffer
		fe := newMemEngine(memConfig{})
		p := newFakeProducer(t, fe, WithLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))))
		first, err := p.Produce(t.Context(), msg("t", "first"))
		require.NoError(t, err)
		synctest.Wait() // in librdkafka's queue

		authErr := kafka.NewError(kafka.ErrAuthentication, "SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512", false)
		start := time.Now()
		fe.sink.onError(authErr)
		fe.sink.onError(authErr) // librdkafka says it again: logged once
		_, err = first.Wait(t.Context())
		assert.Equal(t, authGrace, time.Since(start), "failed once the failure lasted authGrace")
		require.ErrorIs(t, err, ErrAuthentication)
		assert.False(t, IsRetriable(err), "%v", err)
		assert.False(t, IsOutcomeUnknown(err), "%v", err)
		assert.Contains(t, err.Error(), "invalid credentials")

		later, err := p.Produce(t.Context(), msg("t", "later"))
		require.NoError(t, err)
		synctest.Wait()
		fe.sink.onError(kafka.NewError(kafka.ErrAllBrokersDown, "1/1 brokers are down", false)) // the next reconnection fails
		_, err = later.Wait(t.Context())
		require.ErrorIs(t, err, ErrAuthentication, "produced while authentication fails")
		assert.Equal(t, 1, strings.Count(out.String(), "authentication failed"), "%s", out.String())
		assert.Contains(t, out.String(), "invalid credentials")

		// New credentials: messages wait for the broker again, and a delivery ends the failure.
		require.NoError(t, p.SetSaslCredentials("alice", "right"))
		ok, err := p.Produce(t.Context(), msg("t", "ok"))
		require.NoError(t, err)
		synctest.Wait()
		fe.deliver(-1)
		_, err = ok.Wait(t.Context())
		require.NoError(t, err)
		assert.Nil(t, p.brokers.authFailed())
	})
}

// A re-authentication that fails once (a token refresh racing a connection) and succeeds on the next
// connection costs no message: a delivery within authGrace ends the failure.
func TestAuthenticationHiccupCostsNoMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fe := newMemEngine(memConfig{})
		p := newFakeProducer(t, fe)
		f, err := p.Produce(t.Context(), msg("t", "queued"))
		require.NoError(t, err)
		synctest.Wait()
		fe.sink.onError(kafka.NewError(kafka.ErrAuthentication, "SASL OAUTHBEARER mechanism handshake failed", false))
		time.Sleep(authGrace / 2)
		fe.deliver(-1) // the next connection authenticated
		_, err = f.Wait(t.Context())
		require.NoError(t, err)
		time.Sleep(2 * authGrace)
		assert.Nil(t, p.brokers.authFailed())
		assert.Zero(t, fe.purgeCount(), "nothing was purged")
	})
}

// statsFunc is a HookStats.
type statsFunc func(*LibrdkafkaStats)

func (f statsFunc) OnStats(s *LibrdkafkaStats) { f(s) }

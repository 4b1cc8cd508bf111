package aioproducer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFatalLibrdkafkaErrorFailsOutstandingAndLaterMessages(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("t", 1, 1))
	p := newTestProducer(t, mc.BootstrapServers(), nil)
	ctx := ctxTimeout(t, 30*time.Second)

	// One delivered first, so the producer is known to work.
	f, err := p.Produce(ctx, msg("t", "before"))
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)

	require.NoError(t, mc.SetBrokerDown(1)) // keeps the next messages outstanding
	var futs []*Future
	for i := range 20 {
		f, err := p.Produce(ctx, msg("t", fmt.Sprint(i)))
		require.NoError(t, err)
		futs = append(futs, f)
	}
	require.Eventually(t, func() bool { return p.Stats().InFlight == 20 }, 10*time.Second, time.Millisecond,
		"the messages reach librdkafka and stay there")

	raiseTestFatal(p, kafka.ErrOutOfOrderSequenceNumber, "test fatal error")

	for i, f := range futs {
		_, err := f.Wait(ctx)
		require.ErrorIs(t, err, ErrFatal, "outstanding message %d", i)
		assert.True(t, IsFatal(err))
	}
	_, err = p.Produce(ctx, msg("t", "after"))
	require.ErrorIs(t, err, ErrFatal)
	var ke kafka.Error
	require.ErrorAs(t, err, &ke)
	assert.True(t, ke.IsFatal())
	assert.Equal(t, kafka.ErrOutOfOrderSequenceNumber, ke.Code(), "librdkafka's own fatal error, not the generic one")

	start := time.Now()
	require.NoError(t, p.Close(ctx))
	assert.Less(t, time.Since(start), 5*time.Second, "Close after a fatal error is prompt")
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLibrdkafkaLogsGoToTheLogger(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mc := newMockCluster(t, 1)
	p, err := New(kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers(), "debug": "msg"}, WithLogger(log))
	require.NoError(t, err)
	ctx := ctxTimeout(t, 20*time.Second)
	f, err := p.Produce(ctx, msg("logged", "a"))
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)
	require.NoError(t, p.Close(ctx))
	assert.Contains(t, out.String(), "librdkafka: ")
	assert.Contains(t, out.String(), "tag=")
}

// librdkafka's lines map to slog levels by what they ask of an operator: what heals by itself (a
// refused connection during a broker restart, a request timeout) is WARN, what needs a human (bad
// credentials, an untrusted certificate, a fatal error) is ERROR. The texts are librdkafka's own.
func TestLibrdkafkaLogLevelsSayWhetherAHumanIsNeeded(t *testing.T) {
	for _, tc := range []struct {
		level     int
		tag, text string
		want      slog.Level
	}{
		{3, "FAIL", "localhost:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after 0ms in state CONNECT)", slog.LevelWarn},
		{3, "FAIL", "127.0.0.1:9092/1: Disconnected (after 5012ms in state UP)", slog.LevelWarn},
		{3, "ERROR", "1/1 brokers are down", slog.LevelWarn},
		{3, "REQTMOUT", "127.0.0.1:9092/1: Timed out ProduceRequest in flight (after 30001ms, timeout #0)", slog.LevelWarn},
		{3, "FAIL", "127.0.0.1:9093/bootstrap: SASL authentication error: Authentication failed: Invalid username or password (after 3ms in state AUTH_REQ)", slog.LevelError},
		{3, "FAIL", "ssl://127.0.0.1:9094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed (after 4ms in state SSL_HANDSHAKE)", slog.LevelError},
		{3, "ERROR", "Fatal error: Broker: Producer attempted an operation with an old epoch", slog.LevelError},
		{2, "CRIT", "anything", slog.LevelError},
		{4, "CONFWARN", "Configuration property queue.buffering.max.ms is deprecated", slog.LevelWarn},
		{5, "PARTCNT", "Topic t partition count changed from 0 to 6", slog.LevelDebug},
		{6, "STATE", "127.0.0.1:9092/1: Broker changed state UP -> DOWN", slog.LevelInfo},
		{7, "MSG", "anything", slog.LevelDebug},
	} {
		assert.Equal(t, tc.want, logLevel(tc.level, tc.tag, tc.text), "%d %s %s", tc.level, tc.tag, tc.text)
	}
}

// A broker restart that loses nothing logs no ERROR line: every message is delivered, and what
// librdkafka said meanwhile is WARN or lower.
func TestABrokerRestartLogsNoError(t *testing.T) {
	levels := newLevelCounter()
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("restart", 3, 1))
	p := newTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{
		"reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
	}, WithLogger(slog.New(levels)))
	ctx := ctxTimeout(t, 30*time.Second)
	var futs []*Future
	produce := func(n int) {
		for range n {
			f, err := p.Produce(ctx, msg("restart", "k"))
			require.NoError(t, err)
			futs = append(futs, f)
		}
	}
	produce(100)
	require.NoError(t, p.Flush(ctx))
	require.NoError(t, mc.SetBrokerDown(1))
	produce(100)
	time.Sleep(time.Second) // librdkafka fails to reconnect a few times
	require.NoError(t, mc.SetBrokerUp(1))
	produce(100)
	for i, f := range futs {
		_, err := f.Wait(ctx)
		require.NoError(t, err, "message %d", i)
	}
	require.NoError(t, p.Close(ctx))
	assert.Positive(t, levels.count(slog.LevelWarn), "librdkafka said something of the restart")
	assert.Zero(t, levels.count(slog.LevelError), "ERROR lines: %v", levels.errors())
}

// levelCounter is a slog handler that counts records by level and keeps the ERROR ones.
type levelCounter struct {
	mu     sync.Mutex
	counts map[slog.Level]int
	errs   []string
}

func newLevelCounter() *levelCounter { return &levelCounter{counts: map[slog.Level]int{}} }

func (c *levelCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *levelCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *levelCounter) WithGroup(string) slog.Handler            { return c }
func (c *levelCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[r.Level]++
	if r.Level >= slog.LevelError {
		c.errs = append(c.errs, r.Message)
	}
	return nil
}

func (c *levelCounter) count(l slog.Level) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[l]
}

func (c *levelCounter) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

func TestEveryMessageOutcomeOnceUnderConcurrentProduceAndClose(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("storm", 4, 1))
	cm := kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers()}
	p, err := New(cm, WithLogger(quietLogger), WithMaxBuffered(500, 1<<20))
	require.NoError(t, err)

	var mu sync.Mutex
	outcomes := map[*Message]int{}
	var accepted []*Message
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				m := &Message{Topic: "storm", Key: []byte(fmt.Sprint(g)), Value: []byte(fmt.Sprint(i))}
				err := p.ProduceFunc(context.Background(), m, func(Delivery, error) {
					mu.Lock()
					outcomes[m]++
					mu.Unlock()
				})
				if err != nil {
					require.ErrorIs(t, err, ErrClosed)
					return
				}
				mu.Lock()
				accepted = append(accepted, m)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, p.Close(ctxTimeout(t, 30*time.Second)))
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, accepted)
	for _, m := range accepted {
		require.Equal(t, 1, outcomes[m], "message %s/%s", m.Key, m.Value)
	}
	assert.Len(t, outcomes, len(accepted), "an outcome for a message that was not accepted")
	t.Logf("%d messages accepted before Close, each with one outcome", len(accepted))
	assert.False(t, strings.Contains(fmt.Sprint(p.Stats()), "-"), "negative gauge: %+v", p.Stats())
}

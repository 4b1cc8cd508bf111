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

func TestSyslogLevelsMapToSlogLevels(t *testing.T) {
	for l, want := range map[int]slog.Level{0: slog.LevelError, 3: slog.LevelError, 4: slog.LevelWarn,
		5: slog.LevelInfo, 6: slog.LevelInfo, 7: slog.LevelDebug} {
		assert.Equal(t, want, syslogLevel(l), "syslog level %d", l)
	}
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

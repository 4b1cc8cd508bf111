//go:build kafka

package kafkatest

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// TestLeaderPausedLongerThanRequestTimeout freezes (SIGSTOP) the leader of partition 0 for 3x
// request.timeout.ms while 50k messages flow into a topic replicated 3 times, then thaws it (SIGCONT).
// Requests to the frozen leader time out and are retried while their first copy may already be in
// the frozen broker's log; the idempotent producer must not duplicate. Every future must resolve;
// every message reported delivered must be in the log exactly once, at its reported offset; a
// message reported failed must not be in the log unless its outcome was unknown (then at most once).
func TestLeaderPausedLongerThanRequestTimeout(t *testing.T) {
	c := cluster3(t)
	const partitions, requestTimeout = 3, 5 * time.Second
	total := 50_000
	if testing.Short() {
		total = 10_000
	}
	topic := topicName(t, "")
	createTopic(t, c.bootstrap, topic, partitions, 3, map[string]string{"min.insync.replicas": "2"})
	leader := partitionLeader(t, c.bootstrap, topic, 0)
	node := strconv.Itoa(int(leader))
	var resumeOnce sync.Once
	resume := func() {
		resumeOnce.Do(func() {
			if _, err := c.run(t, 30*time.Second, "resume", node); err != nil {
				t.Errorf("resume broker %s: %v", node, err)
			}
		})
	}
	t.Cleanup(resume) // leave the cluster whole whatever happens

	tags := &tagCount{tags: map[string]int{}}
	p := newProducer(t, c.bootstrap, kafka.ConfigMap{
		"message.timeout.ms": 120_000,
		"request.timeout.ms": int(requestTimeout / time.Millisecond),
		// librdkafka's own timeout of a request in flight: without it (60 s by default) nothing
		// times out locally during the pause.
		"socket.timeout.ms": int(requestTimeout / time.Millisecond),
		"linger.ms":         5,
	}, aioproducer.WithLogger(slog.New(tags)))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	l := aioproducertest.NewLedger()
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			m := &aioproducer.Message{
				Topic: topic,
				Key:   []byte("k" + strconv.Itoa(i%300)),
				Value: []byte(fmt.Sprintf("paused-leader message %07d", i)),
			}
			id := l.Track(m)
			f, err := p.Produce(ctx, m)
			require.NoError(t, err, "Produce %d", i)
			l.Future(id, f, err)
		}
	}

	start := time.Now()
	produce(0, total/3)
	_, err := c.run(t, 30*time.Second, "pause", node)
	require.NoError(t, err, "pause broker %s", node)
	pausedAt := time.Now()
	t.Logf("paused broker %s (leader of partition 0) after %v", node, time.Since(start).Round(time.Millisecond))
	produce(total/3, 2*total/3)
	if d := 3*requestTimeout - time.Since(pausedAt); d > 0 {
		time.Sleep(d)
	}
	resume()
	t.Logf("resumed broker %s after %v", node, time.Since(pausedAt).Round(time.Millisecond))
	produce(2*total/3, total)

	require.NoError(t, l.Settle(ctx), "after %v", time.Since(start))
	require.NoError(t, l.Check())
	t.Logf("stats %+v", p.Stats())
	require.NoError(t, p.Close(ctx))

	got := consumeAll(t, c.bootstrap, topic, 5*time.Minute)
	ls, err := l.CheckLog(got, aioproducertest.LogCheck{IgnoreOrder: true})
	t.Logf("FIGURES %s: %d messages, leader of partition 0 SIGSTOPped %v (request.timeout.ms and socket.timeout.ms %v): %v; %v; librdkafka log lines by tag %v; %v",
		t.Name(), total, 3*requestTimeout, requestTimeout, l.Summary(), ls, tags.snapshot(), time.Since(start).Round(time.Millisecond))
	require.NoError(t, err, "paused-leader read-back")
}

// tagCount is a slog handler that counts librdkafka's log lines (info and above) by tag, e.g.
// REQTMOUT for requests that timed out in flight.
type tagCount struct {
	mu   sync.Mutex
	tags map[string]int
}

func (c *tagCount) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (c *tagCount) WithAttrs([]slog.Attr) slog.Handler           { return c }
func (c *tagCount) WithGroup(string) slog.Handler                { return c }
func (c *tagCount) Handle(_ context.Context, r slog.Record) error {
	tag := "aioproducer"
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "tag" {
			tag = a.Value.String()
			return false
		}
		return true
	})
	c.mu.Lock()
	c.tags[tag]++
	c.mu.Unlock()
	return nil
}

func (c *tagCount) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.tags))
	for k, v := range c.tags {
		out[k] = v
	}
	return out
}

//go:build kafka

package kafkatest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
)

// TestCloseWhileLeaderPaused freezes (SIGSTOP) the leader of a partition while messages to it are in
// flight and closes the producer with a short context: Close must give up on time with the context's
// error, every future must resolve (ErrClosed, or a purge error whose outcome IsOutcomeUnknown tells),
// and no goroutine may be left behind.
func TestCloseWhileLeaderPaused(t *testing.T) {
	c := cluster3(t)
	topic := topicName(t, "")
	createTopic(t, c.bootstrap, topic, 1, 3, map[string]string{"min.insync.replicas": "2"})
	leader := partitionLeader(t, c.bootstrap, topic, 0)
	node := strconv.Itoa(int(leader))

	p := newProducer(t, c.bootstrap, kafka.ConfigMap{"message.timeout.ms": 60_000})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Warm up: the producer knows the leader and has its producer id.
	f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("warm-up")})
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)

	_, err = c.run(t, 30*time.Second, "pause", node)
	require.NoError(t, err)
	t.Cleanup(func() {
		if _, err := c.run(t, 30*time.Second, "resume", node); err != nil {
			t.Errorf("resume broker %s: %v", node, err)
		}
	})

	const n = 2000
	futs := make([]*aioproducer.Future, 0, n)
	for i := 0; i < n; i++ {
		f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("v" + strconv.Itoa(i))})
		require.NoError(t, err)
		futs = append(futs, f)
	}
	time.Sleep(time.Second) // let librdkafka send what it can to the frozen broker

	const grace = 3 * time.Second
	closeCtx, cancelClose := context.WithTimeout(context.Background(), grace)
	defer cancelClose()
	start := time.Now()
	err = p.Close(closeCtx)
	took := time.Since(start)
	t.Logf("Close took %v: %v", took.Round(time.Millisecond), err)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "Close must report that its context ended")
	assert.Less(t, took, grace+10*time.Second, "Close must give up soon after its context ends")

	kinds := map[string]int{}
	for i, f := range futs {
		select {
		case <-f.Done():
		default:
			t.Fatalf("future %d unresolved after Close returned", i)
		}
		_, err := f.Wait(ctx)
		switch code, isKafka := kafkaCode(err); {
		case err == nil:
			kinds["delivered"]++
		case errors.Is(err, aioproducer.ErrClosed) && !isKafka:
			kinds["ErrClosed (never sent)"]++
		case isKafka && (code == kafka.ErrPurgeQueue || code == kafka.ErrPurgeInflight):
			// Purged from the queue: not sent, ErrClosed. Purged in flight: it may be in the log, so
			// outcome unknown and not ErrClosed.
			assert.Equal(t, code == kafka.ErrPurgeQueue, errors.Is(err, aioproducer.ErrClosed), "message %d: ErrClosed in %v", i, err)
			assert.Equal(t, code == kafka.ErrPurgeInflight, aioproducer.IsOutcomeUnknown(err), "message %d: IsOutcomeUnknown(%v)", i, err)
			kinds[code.String()]++
		default:
			kinds["other: "+err.Error()]++
			t.Errorf("message %d: unexpected outcome %v", i, err)
		}
	}
	t.Logf("outcomes after an aborted Close: %v", kinds)
	assert.Zero(t, kinds["delivered"], "nothing can be delivered while the leader is frozen")
}

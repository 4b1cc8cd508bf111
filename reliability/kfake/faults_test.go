package kfake

// Fault-injection scenarios. Each test produces through librdkafka into a kfake cluster while kfake
// injects broker errors, delays, dropped connections or leader moves; it then requires every accepted
// message to have exactly one outcome (Ledger.Check, right after Flush or Close, without Settle: they
// must have handed every outcome over by then) and the producer's Stats to agree, its buffer empty
// (Ledger.CheckStats), and reads the whole log back to require that every delivered message is there
// exactly once (where its delivery says) and no message that failed with a known outcome is. Each test
// logs a "figures:" line with its counts.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/seed-f937cf20/aioproducer"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Scenario 1: bursts of NOT_ENOUGH_REPLICAS on Produce requests are retried by librdkafka; every
// message is delivered exactly once, in key order.
func TestNotEnoughReplicasBurstsAreRetriedAndDeliveredOnce(t *testing.T) {
	const (
		topic      = "ner"
		partitions = 3
		perPhase   = 1500
		burst      = 6 // produce requests failed per burst
	)
	start := time.Now()
	c := newCluster(t, 1, topic, partitions)
	ctx := testCtx(t, 20*time.Second)
	h1 := c.Fault(produceFault(topic, kerr.NotEnoughReplicas, burst)) // from the first request on
	p := newProducer(t, c, nil)
	l := newLedger(topic, 16)

	l.produceN(t, ctx, p, perPhase)
	require.NoError(t, p.Flush(ctx))
	h2 := c.Fault(produceFault(topic, kerr.NotEnoughReplicas, burst)) // mid-run
	l.produceN(t, ctx, p, perPhase)
	require.NoError(t, p.Flush(ctx))

	require.Equal(t, burst, h1.Hits(), "first burst: produce requests failed")
	require.Equal(t, burst, h2.Hits(), "second burst: produce requests failed")
	require.NoError(t, l.Check())
	require.NoError(t, l.CheckStats(ctx, p, 0, 0))
	delivered, failed, unknown := l.tally()
	require.Equal(t, 2*perPhase, delivered, "delivered; failures by code: %v", l.errCodes())
	lc := l.checkLog(t, readLog(t, c, topic, partitions), true)
	require.Equal(t, 2*perPhase, lc.Records)
	require.NoError(t, p.Close(ctx))
	t.Logf("figures: %d messages, 3 partitions, 16 keys; %d+%d produce requests failed with NOT_ENOUGH_REPLICAS; "+
		"delivered %d, failed %d, unknown %d; %v; in key order; %v",
		l.len(), h1.Hits(), h2.Hits(), delivered, failed, unknown, lc, time.Since(start).Round(10*time.Millisecond))
}

// Scenario 2: MESSAGE_TOO_LARGE on one Produce request fails only the messages it carried, with
// kafka.ErrMsgSizeTooLarge; the messages before and after it are delivered.
func TestMessageTooLargeFailsOnlyThatRequestsMessages(t *testing.T) {
	const (
		topic    = "mtl"
		perPhase = 300
	)
	start := time.Now()
	c := newCluster(t, 1, topic, 1)
	ctx := testCtx(t, 20*time.Second)
	p := newProducer(t, c, kafka.ConfigMap{"batch.num.messages": 50})
	l := newLedger(topic, 8)

	l.produceN(t, ctx, p, perPhase)
	require.NoError(t, p.Flush(ctx))
	h := c.Fault(produceFault(topic, kerr.MessageTooLarge, 1))
	l.produceN(t, ctx, p, perPhase)
	require.NoError(t, p.Flush(ctx))
	l.produceN(t, ctx, p, perPhase)
	require.NoError(t, p.Flush(ctx))

	require.Equal(t, 1, h.Hits(), "produce requests failed with MESSAGE_TOO_LARGE")
	require.NoError(t, l.Check())
	require.NoError(t, l.CheckStats(ctx, p, 0, 0))
	first, last := -1, -1
	for i := range l.len() {
		_, _, err := l.outcome(i)
		if err == nil {
			continue
		}
		var ke kafka.Error
		require.True(t, errors.As(err, &ke), "message %d: %v is no kafka.Error", i, err)
		require.Equal(t, kafka.ErrMsgSizeTooLarge, ke.Code(), "message %d: %v", i, err)
		require.False(t, aioproducer.IsRetriable(err), "message %d", i)
		require.False(t, aioproducer.IsFatal(err), "message %d", i)
		require.False(t, aioproducer.IsOutcomeUnknown(err), "message %d", i)
		if first < 0 {
			first = i
		}
		require.True(t, last < 0 || last == i-1, "failed messages not contiguous: %d after %d", i, last)
		last = i
	}
	require.GreaterOrEqual(t, first, perPhase, "a message produced before the fault failed")
	require.Less(t, last, 2*perPhase, "a message produced after the faulted phase failed")
	delivered, failed, unknown := l.tally()
	require.Positive(t, failed)
	require.LessOrEqual(t, failed, 50, "more failed than one request (batch.num.messages=50) carries")
	require.Zero(t, unknown)
	lc := l.checkLog(t, readLog(t, c, topic, 1), true)
	require.Equal(t, delivered, lc.Records)
	require.NoError(t, p.Close(ctx))
	t.Logf("figures: %d messages, 1 partition, batch.num.messages=50; %d produce request failed with MESSAGE_TOO_LARGE; "+
		"delivered %d, failed %d (messages %d..%d, all ErrMsgSizeTooLarge), unknown %d; %v; %v",
		l.len(), h.Hits(), delivered, failed, first, last, unknown, lc, time.Since(start).Round(10*time.Millisecond))
}

// dropProduceConns makes kfake close the connection of every produce request whose number (1-based,
// counting every produce request the cluster gets) is in at, instead of answering it. It returns the
// number of produce requests seen and the number dropped.
func dropProduceConns(c *kfake.Cluster, at ...int64) (seen, dropped *atomic.Int64) {
	seen, dropped = new(atomic.Int64), new(atomic.Int64)
	drop := map[int64]bool{}
	for _, n := range at {
		drop[n] = true
	}
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if drop[seen.Add(1)] {
			dropped.Add(1)
			return nil, errors.New("injected: connection dropped"), true
		}
		return nil, nil, false
	})
	return seen, dropped
}

// Scenario 3: connections dropped on produce requests in the middle of a ProduceBatch (kfake closes the
// connection instead of handling the request; the requests pipelined behind it lose their answers):
// every message gets one outcome; with idempotence every message is delivered and none is in the log
// twice. Scenario 3b covers an ack lost after the append.
func TestDroppedConnectionMidBatchLeavesNoDuplicates(t *testing.T) {
	const (
		topic      = "drop"
		partitions = 2
		n          = 6000
	)
	start := time.Now()
	c := newCluster(t, 1, topic, partitions)
	ctx := testCtx(t, 20*time.Second)
	seen, dropped := dropProduceConns(c, 4, 12, 20)
	p := newProducer(t, c, kafka.ConfigMap{"batch.num.messages": 100, "linger.ms": 5})
	l := newLedger(topic, 16)

	msgs := make([]*aioproducer.Message, n)
	ids := make([]int, n)
	for i := range msgs {
		ids[i], msgs[i] = l.next()
	}
	futs, err := p.ProduceBatch(ctx, msgs)
	require.NoError(t, err)
	require.Len(t, futs, n)
	for _, id := range ids {
		l.Accepted(id)
	}
	require.NoError(t, p.Flush(ctx))
	for i, f := range futs {
		select {
		case <-f.Done():
		default:
			require.Failf(t, "future not done after Flush", "message %d", i)
		}
		d, err := f.Wait(ctx)
		l.Report(ids[i], d, err)
	}

	require.EqualValues(t, 3, dropped.Load(), "connections dropped (of %d produce requests)", seen.Load())
	require.NoError(t, l.Check())
	require.NoError(t, l.CheckStats(ctx, p, 0, 0))
	delivered, failed, unknown := l.tally()
	require.Equal(t, n, delivered, "delivered; failures by code: %v", l.errCodes())
	lc := l.checkLog(t, readLog(t, c, topic, partitions), true)
	require.Equal(t, n, lc.Records)
	require.NoError(t, p.Close(ctx))
	t.Logf("figures: %d messages in one ProduceBatch, 2 partitions, batch.num.messages=100; %d of %d produce requests "+
		"answered by closing the connection; delivered %d, failed %d, unknown %d; %v; no duplicates, in key order; %v",
		n, dropped.Load(), seen.Load(), delivered, failed, unknown, lc, time.Since(start).Round(10*time.Millisecond))
}

// Scenario 4: the ack of one produce request is held past message.timeout.ms. Its messages fail with
// kafka.ErrMsgTimedOut, reported as outcome unknown; nothing hangs, and the producer delivers what
// comes after. The log may hold the timed-out messages (kfake appends them once the ack is released):
// that is why their outcome is unknown.
func TestAckDelayedPastMessageTimeoutFailsOutcomeUnknown(t *testing.T) {
	const (
		topic     = "slow"
		perPhase  = 200
		timeout   = 1500 * time.Millisecond
		holdFor   = 4 * time.Second
		flushWait = timeout + 3*time.Second
	)
	start := time.Now()
	c := newCluster(t, 1, topic, 1)
	ctx := testCtx(t, 20*time.Second)
	p := newProducer(t, c, kafka.ConfigMap{"message.timeout.ms": int(timeout / time.Millisecond), "batch.num.messages": 50})
	l := newLedger(topic, 8)

	l.produceN(t, ctx, p, perPhase)
	require.NoError(t, p.Flush(ctx))

	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var held atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		// Hold only the first produce request from now on. While it sleeps, the control stays
		// installed and sees the requests behind it: those go on (kfake still answers them after it,
		// in order, on that connection).
		if held.Add(1) > 1 {
			return nil, nil, false
		}
		c.DropControl()
		c.SleepControl(func() {
			select {
			case <-time.After(holdFor):
			case <-release:
			}
		})
		return nil, nil, false // then kfake handles the request as usual
	})
	heldAt := time.Now()
	l.produceN(t, ctx, p, perPhase)
	fctx, cancel := context.WithTimeout(ctx, flushWait)
	defer cancel()
	require.NoError(t, p.Flush(fctx), "Flush of the delayed phase did not return within %v", flushWait)
	flushTook := time.Since(heldAt)
	require.Positive(t, held.Load(), "no produce request held")

	// Let the held request through (kfake then appends it), and produce again.
	time.Sleep(max(0, holdFor-time.Since(heldAt)) + 200*time.Millisecond)
	l.produceN(t, ctx, p, perPhase)
	require.NoError(t, p.Flush(ctx))

	require.NoError(t, l.Check())
	require.NoError(t, l.CheckStats(ctx, p, 0, 0))
	for i := range l.len() {
		_, _, err := l.outcome(i)
		if err == nil {
			continue
		}
		require.GreaterOrEqual(t, i, perPhase, "a message produced before the delay failed: %v", err)
		require.Less(t, i, 2*perPhase, "a message produced after the delay failed: %v", err)
		var ke kafka.Error
		require.True(t, errors.As(err, &ke), "message %d: %v", i, err)
		require.Equal(t, kafka.ErrMsgTimedOut, ke.Code(), "message %d: %v", i, err)
		// The held request's messages were sent: outcome unknown. The producer knows that the ones
		// queued behind it that timed out before they were sent are not in the log (checkLog below
		// holds it to that).
		if !aioproducer.IsOutcomeUnknown(err) {
			require.Contains(t, err.Error(), "not persisted", "message %d", i)
		}
	}
	delivered, failed, unknown := l.tally()
	require.Positive(t, unknown, "messages of the held request timed out")
	lc := l.checkLog(t, readLog(t, c, topic, 1), true)
	require.NoError(t, p.Close(ctx))
	t.Logf("figures: %d messages, 1 partition, message.timeout.ms=%v; 1 produce request's ack held %v; "+
		"delivered %d, timed out (ErrMsgTimedOut) outcome unknown %d, not persisted %d; the delayed phase's Flush "+
		"returned after %v; %v; %v",
		l.len(), timeout, holdFor, delivered, unknown, failed, flushTook.Round(10*time.Millisecond), lc,
		time.Since(start).Round(10*time.Millisecond))
}

// Scenario 3b: REQUEST_TIMED_OUT on produce requests that kfake appends anyway (an ack lost after
// the append): librdkafka retries them, and with idempotence the broker drops the retried duplicates,
// so every message is in the log exactly once.
func TestAppendedButUnackedProduceIsNotDuplicated(t *testing.T) {
	const (
		topic      = "unacked"
		partitions = 2
		perPhase   = 1000
		faults     = 4
	)
	start := time.Now()
	c := newCluster(t, 1, topic, partitions)
	ctx := testCtx(t, 20*time.Second)
	p := newProducer(t, c, kafka.ConfigMap{"batch.num.messages": 100})
	l := newLedger(topic, 16)

	l.produceN(t, ctx, p, perPhase)
	require.NoError(t, p.Flush(ctx))
	h := c.Fault(produceFault(topic, kerr.RequestTimedOut, faults))
	l.produceN(t, ctx, p, perPhase)
	require.NoError(t, p.Flush(ctx))

	require.Equal(t, faults, h.Hits(), "produce requests appended but answered REQUEST_TIMED_OUT")
	require.NoError(t, l.Check())
	require.NoError(t, l.CheckStats(ctx, p, 0, 0))
	delivered, failed, unknown := l.tally()
	require.Equal(t, 2*perPhase, delivered, "delivered; failures by code: %v", l.errCodes())
	lc := l.checkLog(t, readLog(t, c, topic, partitions), true)
	require.Equal(t, 2*perPhase, lc.Records)
	require.NoError(t, p.Close(ctx))
	t.Logf("figures: %d messages, 2 partitions, batch.num.messages=100; %d produce requests appended but answered "+
		"REQUEST_TIMED_OUT (then retried); delivered %d, failed %d, unknown %d; %v; no duplicates, in key order; %v",
		l.len(), h.Hits(), delivered, failed, unknown, lc, time.Since(start).Round(10*time.Millisecond))
}

// Scenario 5: OUT_OF_ORDER_SEQUENCE_NUMBER on a produce response is fatal to librdkafka's idempotent
// producer: every message outstanding then, and every later Produce, fails with an error wrapping
// aioproducer.ErrFatal, and Close still returns promptly.
func TestOutOfOrderSequenceIsFatalAndCloseIsPrompt(t *testing.T) {
	const (
		topic  = "oosn"
		warmup = 500
	)
	start := time.Now()
	c := newCluster(t, 1, topic, 1)
	ctx := testCtx(t, 20*time.Second)
	p := newProducer(t, c, kafka.ConfigMap{"batch.num.messages": 50})
	l := newLedger(topic, 8)

	l.produceN(t, ctx, p, warmup)
	require.NoError(t, p.Flush(ctx))
	h := c.Fault(produceFault(topic, kerr.OutOfOrderSequenceNumber, 1))

	// Produce without waiting until Produce refuses, so that messages are outstanding when the
	// fatal error comes.
	var produceErr error
	refusedAt := -1
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if produceErr = l.produce(ctx, p); produceErr != nil {
			refusedAt = l.len()
			break
		}
	}
	require.Error(t, produceErr, "Produce still accepts messages 10 s after the fault")
	require.ErrorIs(t, produceErr, aioproducer.ErrFatal, "Produce's error after the fatal error")
	require.True(t, aioproducer.IsFatal(produceErr))
	require.NoError(t, p.Flush(ctx), "Flush after the fatal error")
	closeStart := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	closeErr := p.Close(cctx)
	closeTook := time.Since(closeStart)
	require.Less(t, closeTook, 5*time.Second, "Close took too long")
	require.NoError(t, closeErr, "Close after the fatal error")
	_, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("after close")})
	require.Error(t, err)

	require.Equal(t, 1, h.Hits(), "produce requests answered OUT_OF_ORDER_SEQUENCE_NUMBER")
	require.NoError(t, l.Check())
	require.NoError(t, l.CheckStats(ctx, p, 0, 0))
	var notFatal []string
	firstFailed := -1
	for i := range l.len() {
		_, _, err := l.outcome(i)
		if err == nil {
			continue
		}
		if firstFailed < 0 {
			firstFailed = i
		}
		if !errors.Is(err, aioproducer.ErrFatal) || !aioproducer.IsFatal(err) {
			notFatal = append(notFatal, err.Error())
		}
	}
	require.GreaterOrEqual(t, firstFailed, warmup, "a warm-up message failed")
	delivered, failed, unknown := l.tally()
	require.Positive(t, failed+unknown, "no message failed")
	lc := l.checkLog(t, readLog(t, c, topic, 1), true)
	// After the first failure nothing may be delivered: the fatal error fails everything outstanding.
	for i := firstFailed; i < l.len(); i++ {
		_, _, err := l.outcome(i)
		require.Error(t, err, "message %d delivered after message %d failed fatally", i, firstFailed)
	}
	t.Logf("figures: %d messages accepted (Produce refused message %d with ErrFatal), 1 partition; 1 produce "+
		"request answered OUT_OF_ORDER_SEQUENCE_NUMBER; delivered %d, failed %d (outcome unknown %d), failures "+
		"by code %v; Close took %v; %v; %v",
		l.len(), refusedAt, delivered, failed+unknown, unknown, l.errCodes(), closeTook.Round(time.Millisecond), lc,
		time.Since(start).Round(10*time.Millisecond))
	require.Empty(t, notFatal, "failures that do not wrap ErrFatal")
}

// Scenario 3c, the control for 3b: the same lost acks with idempotence off duplicate messages in the
// log. This shows the fault really appends before it answers, so 3b's clean log is idempotence's doing.
func TestAppendedButUnackedProduceDuplicatesWithoutIdempotence(t *testing.T) {
	const (
		topic      = "unacked-noidem"
		partitions = 2
		perPhase   = 1000
		faults     = 4
	)
	start := time.Now()
	c := newCluster(t, 1, topic, partitions)
	ctx := testCtx(t, 20*time.Second)
	p := newProducer(t, c, kafka.ConfigMap{"batch.num.messages": 100, "enable.idempotence": false})
	l := newLedger(topic, 16)
	l.dupsOK = true

	l.produceN(t, ctx, p, perPhase)
	require.NoError(t, p.Flush(ctx))
	h := c.Fault(produceFault(topic, kerr.RequestTimedOut, faults))
	l.produceN(t, ctx, p, perPhase)
	require.NoError(t, p.Flush(ctx))

	require.Equal(t, faults, h.Hits(), "produce requests appended but answered REQUEST_TIMED_OUT")
	require.NoError(t, l.Check())
	require.NoError(t, l.CheckStats(ctx, p, 0, 0))
	delivered, failed, unknown := l.tally()
	require.Equal(t, 2*perPhase, delivered, "delivered; failures by code: %v", l.errCodes())
	lc := l.checkLog(t, readLog(t, c, topic, partitions), false)
	require.Positive(t, lc.Duplicated, "no duplicates without idempotence: the fault did not append")
	require.NoError(t, p.Close(ctx))
	t.Logf("figures: %d messages, 2 partitions, enable.idempotence=false; %d produce requests appended but answered "+
		"REQUEST_TIMED_OUT (then retried); delivered %d, failed %d, unknown %d; %v; %v",
		l.len(), h.Hits(), delivered, failed, unknown, lc, time.Since(start).Round(10*time.Millisecond))
}

// Scenario 6: partition leaders move between brokers while messages flow: librdkafka follows the
// NOT_LEADER_OR_FOLLOWER answers to the new leaders, and every message is delivered exactly once, in
// key order.
func TestLeaderMoveMidRunDeliversAllInKeyOrder(t *testing.T) {
	const (
		topic      = "move"
		brokers    = 3
		partitions = 3
		n          = 3000
		rounds     = 2
	)
	start := time.Now()
	c := newCluster(t, brokers, topic, partitions)
	ctx := testCtx(t, 20*time.Second)
	// Watch where the produce requests go: leader is what the test has made each partition's leader,
	// and a partition sent to another broker is answered NOT_LEADER_OR_FOLLOWER.
	var (
		mu           sync.Mutex
		leader       = map[int32]int32{}
		toLeader     int // partitions in produce requests sent to their leader
		toStale      int // ... sent to a former leader
		leadersFound = map[[2]int32]bool{}
	)
	for part := range int32(partitions) {
		leader[part] = c.LeaderFor(topic, part)
	}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		node := c.CurrentNode()
		mu.Lock()
		defer mu.Unlock()
		for _, rt := range req.(*kmsg.ProduceRequest).Topics {
			for _, rp := range rt.Partitions {
				if leader[rp.Partition] == node {
					toLeader++
					leadersFound[[2]int32{rp.Partition, node}] = true
				} else {
					toStale++
				}
			}
		}
		return nil, nil, false
	})
	p := newProducer(t, c, kafka.ConfigMap{"batch.num.messages": 50})
	l := newLedger(topic, 24)

	// Each round produces its messages with a short pause every 50, moves every leader half way
	// through (messages of the round are in flight then), and flushes at its end, so that each new
	// leader gets produce requests before the next move.
	var moves int
	for round := 0; round <= rounds; round++ {
		for i := range n / (rounds + 1) {
			require.NoError(t, l.produce(ctx, p))
			if i%50 == 49 {
				time.Sleep(time.Millisecond)
			}
			if round > 0 && i == n/(rounds+1)/2 {
				for part := range int32(partitions) {
					mu.Lock()
					to := (leader[part] + 1) % brokers
					leader[part] = to
					mu.Unlock()
					require.NoError(t, c.MoveTopicPartition(topic, part, to))
					require.Equal(t, to, c.LeaderFor(topic, part))
					moves++
				}
			}
		}
		require.NoError(t, p.Flush(ctx))
	}

	mu.Lock()
	sentToLeader, sentToStale, leaderPairs := toLeader, toStale, len(leadersFound)
	mu.Unlock()
	// Every partition had rounds+1 leaders; messages reached each of them.
	require.Equal(t, partitions*(rounds+1), leaderPairs, "(partition, leader) pairs that got produce requests")
	require.NoError(t, l.Check())
	require.NoError(t, l.CheckStats(ctx, p, 0, 0))
	delivered, failed, unknown := l.tally()
	require.Equal(t, n, delivered, "delivered; failures by code: %v", l.errCodes())
	lc := l.checkLog(t, readLog(t, c, topic, partitions), true)
	require.Equal(t, n, lc.Records)
	require.NoError(t, p.Close(ctx))
	t.Logf("figures: %d messages, %d brokers, %d partitions, 24 keys; %d leader moves in %d rounds while producing; "+
		"partition batches sent to the leader %d, to a former leader (NOT_LEADER_OR_FOLLOWER) %d; every partition "+
		"produced to all its %d leaders; delivered %d, failed %d, unknown %d; %v; in key order; %v",
		n, brokers, partitions, moves, rounds, sentToLeader, sentToStale, rounds+1, delivered, failed, unknown, lc,
		time.Since(start).Round(10*time.Millisecond))
}

// Scenario 7: Close with a deadline while a produce ack is held. Close returns soon after its deadline
// with the context's error (about 1.1 s after it: rd_kafka_destroy takes that long
// with a request in flight; raw confluent-kafka-go shows the same); every message has its outcome at the
// deadline: the ones librdkafka still queued fail
// with kafka.ErrPurgeQueue (not written), the ones in the held request with kafka.ErrPurgeInflight
// (outcome unknown, and so not ErrClosed, which says "not sent"). Once kfake releases the ack, the log may hold the in-flight
// ones, and never a queued one.
func TestCloseDeadlineWithAckHeldPurgesWithKnownAndUnknownOutcomes(t *testing.T) {
	const (
		topic    = "closeheld"
		perPhase = 200
		holdFor  = 6 * time.Second
		closeIn  = time.Second
	)
	start := time.Now()
	c := newCluster(t, 1, topic, 1)
	ctx := testCtx(t, 20*time.Second)
	p := newProducer(t, c, kafka.ConfigMap{"message.timeout.ms": 15000, "batch.num.messages": 50})
	l := newLedger(topic, 8)

	l.produceN(t, ctx, p, perPhase)
	require.NoError(t, p.Flush(ctx))

	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	var held atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if held.Add(1) > 1 {
			return nil, nil, false
		}
		c.DropControl()
		c.SleepControl(func() {
			select {
			case <-time.After(holdFor):
			case <-release:
			}
		})
		return nil, nil, false
	})
	l.produceN(t, ctx, p, perPhase)
	// Wait until the first request of the phase is held, with the rest queued behind it.
	for deadline := time.Now().Add(5 * time.Second); held.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	require.Positive(t, held.Load(), "no produce request held")
	time.Sleep(200 * time.Millisecond)

	cctx, cancel := context.WithTimeout(ctx, closeIn)
	defer cancel()
	closeStart := time.Now()
	closeErr := p.Close(cctx)
	closeTook := time.Since(closeStart)
	outcomesTook := l.lastOutcome().Sub(closeStart)
	require.ErrorIs(t, closeErr, context.DeadlineExceeded, "Close's error")
	require.Less(t, closeTook, closeIn+2*time.Second, "Close took too long past its deadline")
	releaseAll()

	require.NoError(t, l.Check())
	require.NoError(t, l.CheckStats(ctx, p, 0, 0))
	codes := map[kafka.ErrorCode]int{}
	for i := range l.len() {
		_, _, err := l.outcome(i)
		if err == nil {
			require.Less(t, i, perPhase, "message %d of the held phase delivered", i)
			continue
		}
		require.GreaterOrEqual(t, i, perPhase, "warm-up message %d failed: %v", i, err)
		var ke kafka.Error
		require.True(t, errors.As(err, &ke), "message %d: %v", i, err)
		codes[ke.Code()]++
		switch ke.Code() {
		case kafka.ErrPurgeInflight:
			require.True(t, aioproducer.IsOutcomeUnknown(err), "message %d: %v", i, err)
			require.NotErrorIs(t, err, aioproducer.ErrClosed, "message %d", i)
		case kafka.ErrPurgeQueue:
			require.False(t, aioproducer.IsOutcomeUnknown(err), "message %d: %v", i, err)
			require.ErrorIs(t, err, aioproducer.ErrClosed, "message %d", i)
		default:
			require.Failf(t, "unexpected failure", "message %d: %v", i, err)
		}
	}
	// Give kfake time to append the released request, then read the log.
	time.Sleep(300 * time.Millisecond)
	delivered, failed, unknown := l.tally()
	lc := l.checkLog(t, readLog(t, c, topic, 1), true)
	t.Logf("figures: %d messages, 1 partition; 1 produce request's ack held %v, Close with a %v deadline; Close "+
		"returned after %v with %v (the last outcome came %v after Close began); delivered %d, purged from the queue (ErrPurgeQueue) %d, purged in flight "+
		"(ErrPurgeInflight, outcome unknown) %d; %v; %v",
		l.len(), holdFor, closeIn, closeTook.Round(time.Millisecond), closeErr, outcomesTook.Round(time.Millisecond), delivered, codes[kafka.ErrPurgeQueue],
		codes[kafka.ErrPurgeInflight], lc, time.Since(start).Round(10*time.Millisecond))
	require.Equal(t, failed, codes[kafka.ErrPurgeQueue])
	require.Equal(t, unknown, codes[kafka.ErrPurgeInflight])
}

// produceUntilRefused produces up to n messages, stopping at the first one Produce refuses; it returns
// that error.
func produceUntilRefused(ctx context.Context, l *ledger, p *aioproducer.Producer, n int) error {
	for range n {
		if err := l.produce(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// Scenario 8: InitProducerId fails with a retriable error (COORDINATOR_NOT_AVAILABLE) three times at
// start-up: librdkafka retries it, and the messages produced meanwhile wait and are then delivered
// exactly once.
func TestInitProducerIDRetriableErrorsDelayButDeliver(t *testing.T) {
	const (
		topic  = "pidretry"
		n      = 500
		faults = 3
	)
	start := time.Now()
	c := newCluster(t, 1, topic, 1)
	ctx := testCtx(t, 20*time.Second)
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Err: kerr.CoordinatorNotAvailable, Count: faults})
	p := newProducer(t, c, nil)
	l := newLedger(topic, 8)

	l.produceN(t, ctx, p, n)
	require.NoError(t, p.Flush(ctx))
	flushed := time.Since(start)

	require.Equal(t, faults, h.Hits(), "InitProducerId requests failed")
	require.NoError(t, l.Check())
	require.NoError(t, l.CheckStats(ctx, p, 0, 0))
	delivered, failed, unknown := l.tally()
	require.Equal(t, n, delivered, "delivered; failures by code: %v", l.errCodes())
	lc := l.checkLog(t, readLog(t, c, topic, 1), true)
	require.Equal(t, n, lc.Records)
	require.NoError(t, p.Close(ctx))
	t.Logf("figures: %d messages, 1 partition; %d InitProducerId requests failed with COORDINATOR_NOT_AVAILABLE; "+
		"all delivered %v after start; delivered %d, failed %d, unknown %d; %v; in key order; %v",
		n, h.Hits(), flushed.Round(10*time.Millisecond), delivered, failed, unknown, lc,
		time.Since(start).Round(10*time.Millisecond))
}

// Scenario 9: InitProducerId fails with CLUSTER_AUTHORIZATION_FAILED: librdkafka's idempotent producer
// raises a fatal error, every accepted message fails with an error wrapping ErrFatal (none is written),
// later Produce calls fail with ErrFatal, and Close returns promptly.
func TestInitProducerIDAuthorizationFailureIsFatal(t *testing.T) {
	const (
		topic = "pidauth"
		n     = 300
	)
	start := time.Now()
	c := newCluster(t, 1, topic, 1)
	ctx := testCtx(t, 20*time.Second)
	h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Err: kerr.ClusterAuthorizationFailed, Count: -1})
	p := newProducer(t, c, nil)
	l := newLedger(topic, 8)

	produceErr := produceUntilRefused(ctx, l, p, n)
	accepted := l.len()
	require.NoError(t, p.Flush(ctx))
	// The fatal error is known by now (every accepted message failed with it): Produce refuses.
	err := l.produce(ctx, p)
	require.ErrorIs(t, err, aioproducer.ErrFatal, "Produce after the fatal error")
	if produceErr != nil {
		require.ErrorIs(t, produceErr, aioproducer.ErrFatal)
	}
	closeStart := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, p.Close(cctx))
	closeTook := time.Since(closeStart)
	h.Remove()

	require.Positive(t, h.Hits(), "InitProducerId requests failed")
	require.NoError(t, l.Check())
	require.NoError(t, l.CheckStats(ctx, p, 0, 0))
	for i := range l.len() {
		_, _, err := l.outcome(i)
		require.ErrorIs(t, err, aioproducer.ErrFatal, "message %d", i)
		require.True(t, aioproducer.IsFatal(err), "message %d", i)
	}
	delivered, failed, unknown := l.tally()
	require.Zero(t, delivered)
	lc := l.checkLog(t, readLog(t, c, topic, 1), true)
	require.Zero(t, lc.Records)
	t.Logf("figures: %d messages accepted; InitProducerId answered CLUSTER_AUTHORIZATION_FAILED (%d requests); "+
		"delivered %d, failed %d (all ErrFatal; by code %v), unknown %d; Produce afterwards: ErrFatal; Close took %v; %v; %v",
		accepted, h.Hits(), delivered, failed, l.errCodes(), unknown, closeTook.Round(time.Millisecond), lc,
		time.Since(start).Round(10*time.Millisecond))
}

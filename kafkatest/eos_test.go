//go:build kafka

package kafkatest

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/eos"
)

// eosInstance is one eos.Session of a test, running on a goroutine of the test's.
type eosInstance struct {
	name        string
	s           *eos.Session
	transformed atomic.Int64 // input messages its transform saw, aborted batches included
	runErr      chan error
}

// startEOS starts a session of group reading in and writing "out(value)" of each input to out, with
// transactional.id txnID. hold, if not nil, is called by the transform after it emitted a batch's
// outputs, before the commit. The session is closed at cleanup.
func startEOS(t *testing.T, bootstrap, name, group, txnID, in, out string, hold func(ctx context.Context) error) *eosInstance {
	t.Helper()
	inst := &eosInstance{name: name, runErr: make(chan error, 1)}
	fn := func(ctx context.Context, msgs []*kafka.Message, em eos.Emitter) error {
		for _, m := range msgs {
			if err := em.Emit(ctx, &aioproducer.Message{Topic: out, Key: m.Value, Value: []byte("out(" + string(m.Value) + ")")}); err != nil {
				return err
			}
		}
		inst.transformed.Add(int64(len(msgs)))
		if hold != nil {
			if err := hold(ctx); err != nil {
				return err
			}
		}
		time.Sleep(150 * time.Millisecond) // some work, so that the run lasts through the events
		return nil
	}
	lw := &logWriter{t: t, max: 60}
	s, err := eos.New(
		kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
			"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000, "max.poll.interval.ms": 10_000},
		kafka.ConfigMap{"bootstrap.servers": bootstrap, "transactional.id": txnID},
		[]string{in}, fn,
		eos.WithBatch(50, 100*time.Millisecond),
		eos.WithLogger(slog.New(slog.NewTextHandler(lw, nil)).With("instance", name)),
		eos.WithProducerOptions(aioproducer.WithLogger(slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelWarn})).With("instance", name))))
	require.NoError(t, err)
	inst.s = s
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = s.Close(ctx)
	})
	go func() { inst.runErr <- s.Run(context.Background()) }()
	return inst
}

// waitFor polls cond every 100 ms until it holds, failing the test with what after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
	}
}

// The 3-node cluster: sessions in one group turn 3,000 inputs on 6 partitions into outputs. Instance a
// is abandoned mid-transaction (its transform blocks after emitting a batch's outputs, as a process
// killed before its commit would leave it: its consumer stops polling and the group drops it after
// max.poll.interval.ms) and restarted with the same transactional.id, which fences it and aborts its
// open transaction; later instance b joins, a rebalance while transactions run. read_committed
// readers see every input's output exactly once, the group's committed offsets reach the end of the
// input, and the abandoned instance, released, stops with a fatal error.
func TestEOSSessionExactlyOnceThroughAnAbandonedInstanceAndARebalance(t *testing.T) {
	c := cluster3(t)
	in, out := topicName(t, "in"), topicName(t, "out")
	const partitions, n = 6, 3000
	createTopics(t, c.bootstrap, []string{in, out}, partitions, 3, map[string]string{"min.insync.replicas": "2"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	plain := newProducer(t, c.bootstrap, nil)
	futs := make([]*aioproducer.Future, n)
	for i := range futs {
		var err error
		futs[i], err = plain.Produce(ctx, &aioproducer.Message{Topic: in, Value: []byte(fmt.Sprintf("in-%05d", i)),
			Partition: aioproducer.ExplicitPartition(int32(i % partitions))})
		require.NoError(t, err)
	}
	waitAll(t, ctx, futs)

	group := "g-" + in
	release := make(chan struct{})
	held := make(chan struct{})
	var holding atomic.Bool
	a := startEOS(t, c.bootstrap, "a", group, in+"-a", in, out, func(ctx context.Context) error {
		if !holding.Load() {
			return nil
		}
		holding.Store(false)
		time.Sleep(time.Second) // let the batch's outputs reach the log, in the open transaction
		close(held)
		select { // abandoned: no commit, no poll
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	waitFor(t, 2*time.Minute, "instance a transforms 600 inputs", func() bool { return a.transformed.Load() >= 600 })
	holding.Store(true)
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("instance a did not hold its transaction")
	}
	t.Logf("instance a abandoned mid-transaction after %d inputs", a.transformed.Load())

	a2 := startEOS(t, c.bootstrap, "a-restarted", group, in+"-a", in, out, nil) // fences a
	waitFor(t, 2*time.Minute, "the restarted instance transforms 200 inputs", func() bool { return a2.transformed.Load() >= 200 })
	b := startEOS(t, c.bootstrap, "b", group, in+"-b", in, out, nil) // a rebalance mid-run
	t.Logf("instance b joins after a-restarted transformed %d inputs", a2.transformed.Load())

	// The group's offsets, committed by the transactions, reach the end of every input partition.
	cons, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": c.bootstrap, "group.id": group})
	require.NoError(t, err)
	defer func() { _ = cons.Close() }()
	tps := make([]kafka.TopicPartition, partitions)
	for p := range tps {
		tps[p] = kafka.TopicPartition{Topic: &in, Partition: int32(p)}
	}
	waitFor(t, 3*time.Minute, "the group's committed offsets reach the end of the input", func() bool {
		last, err := cons.Committed(tps, 10_000)
		if err != nil {
			return false
		}
		for _, tp := range last {
			if tp.Offset != n/partitions {
				return false
			}
		}
		return true
	})
	t.Logf("transformed (aborted batches included): a %d, a-restarted %d, b %d",
		a.transformed.Load(), a2.transformed.Load(), b.transformed.Load())
	assert.Positive(t, b.transformed.Load(), "instance b got partitions")

	for _, inst := range []*eosInstance{a2, b} {
		require.NoError(t, inst.s.Close(ctx), inst.name)
		require.ErrorIs(t, <-inst.runErr, eos.ErrClosed, inst.name)
	}
	close(release)
	var errA error
	select {
	case errA = <-a.runErr:
	case <-time.After(2 * time.Minute):
		t.Fatal("the abandoned instance, released, did not stop within 2 minutes")
	}
	t.Logf("the abandoned instance, released: %v", errA)
	assert.ErrorIs(t, errA, aioproducer.ErrFatal, "the abandoned instance was fenced")
	_ = a.s.Close(ctx)

	committed := consumeAll(t, c.bootstrap, out, 2*time.Minute) // read_committed
	seen := map[string]int{}
	for _, r := range committed {
		seen[string(r.Value)]++
	}
	bad := capped{t: t, max: 10}
	for i := range n {
		if v := fmt.Sprintf("out(in-%05d)", i); seen[v] != 1 {
			bad.errorf("%s: %d times in the committed output", v, seen[v])
		}
	}
	bad.done("exactly once")
	assert.Len(t, committed, n, "no output besides one per input")
	all := consumeAllWith(t, kafka.ConfigMap{"bootstrap.servers": c.bootstrap, "isolation.level": "read_uncommitted"}, out, 2*time.Minute)
	t.Logf("output records: %d committed, %d in the log (aborted transactions included)", len(committed), len(all))
	assert.Greater(t, len(all), n, "the abandoned transaction's outputs are in the log, hidden from read_committed readers")
}

package eos_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
	"github.com/seed-f937cf20/aioproducer/eos"
)

const inTopic, outTopic = "in", "out"

// writeInputs writes n values "in-0000"... to inTopic, message i to partition i % partitions.
func writeInputs(t *testing.T, cl *aioproducertest.Cluster, n, partitions int) []string {
	t.Helper()
	p := cl.NewProducer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	vals := make([]string, n)
	for i := range vals {
		vals[i] = fmt.Sprintf("in-%04d", i)
		_, err := p.Produce(ctx, &aioproducer.Message{Topic: inTopic, Value: []byte(vals[i]),
			Partition: aioproducer.ExplicitPartition(int32(i % partitions))})
		require.NoError(t, err)
	}
	require.NoError(t, p.Flush(ctx))
	return vals
}

// newSession returns a session of group with transactional.id txnID over the cluster, closed at
// cleanup.
func newSession(t *testing.T, cl *aioproducertest.Cluster, group, txnID string, fn eos.Transform, opts ...eos.Option) *eos.Session {
	t.Helper()
	opts = append([]eos.Option{
		eos.WithBatch(20, 20*time.Millisecond),
		eos.WithLogger(aioproducertest.TestLogger(t)),
		eos.WithProducerOptions(aioproducer.WithLogger(aioproducertest.TestLogger(t))),
	}, opts...)
	s, err := eos.New(cl.Config(kafka.ConfigMap{"group.id": group, "auto.offset.reset": "earliest"}),
		cl.Config(kafka.ConfigMap{"transactional.id": txnID}), []string{inTopic}, fn, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// start runs s.Run on a goroutine; its result comes on the channel.
func start(s *eos.Session) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	return errc
}

// upper emits "out(" + value + ")" for each input, with its key, to outTopic.
func upper(ctx context.Context, msgs []*kafka.Message, out eos.Emitter) error {
	for _, m := range msgs {
		if err := out.Emit(ctx, &aioproducer.Message{Topic: outTopic, Key: m.Key, Value: []byte("out(" + string(m.Value) + ")")}); err != nil {
			return err
		}
	}
	return nil
}

// waitOutputs waits until outTopic holds the output of each of the n inputs "in-0000"... (at least
// once: librdkafka's mock cluster shows aborted transactions' messages too), and fails the test if it
// does not within 20 s.
func waitOutputs(t *testing.T, cl *aioproducertest.Cluster, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for ctx.Err() == nil {
		recs, err := cl.ReadTopic(ctx, outTopic)
		if err == nil {
			for _, r := range recs {
				seen[string(r.Value)] = true
			}
			missing := 0
			for i := range n {
				if !seen[fmt.Sprintf("out(in-%04d)", i)] {
					missing++
				}
			}
			if missing == 0 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: the outputs of %d inputs not all there within 20 s (%d distinct values)", outTopic, n, len(seen))
}

// Every input is transformed, its output committed once, and the group's offsets with it.
func TestSessionDeliversEachInputExactlyOnce(t *testing.T) {
	cl := aioproducertest.NewCluster(t, aioproducertest.WithTopic(inTopic, 3), aioproducertest.WithTopic(outTopic, 3))
	inputs := writeInputs(t, cl, 300, 3)
	kept := make(chan eos.Emitter, 1)
	s := newSession(t, cl, "g", "eos-1", func(ctx context.Context, msgs []*kafka.Message, out eos.Emitter) error {
		select {
		case kept <- out:
		default:
		}
		return upper(ctx, msgs, out)
	})
	errc := start(s)

	cl.Records(t, outTopic, len(inputs)) // waits for them
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Close(ctx))
	require.ErrorIs(t, <-errc, eos.ErrClosed)

	recs, err := cl.ReadTopic(ctx, outTopic) // read_committed
	require.NoError(t, err)
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Value))
	}
	slices.Sort(got)
	want := make([]string, len(inputs))
	for i, v := range inputs {
		want[i] = "out(" + v + ")"
	}
	assert.Equal(t, want, got, "each input's output once")

	err = (<-kept).Emit(ctx, &aioproducer.Message{Topic: outTopic, Value: []byte("late")})
	assert.ErrorContains(t, err, "Emit after the transform returned")
}

// A failed output (here a message to a partition that does not exist) makes the commit ask for an
// abort: the session aborts, rewinds to the committed offsets, transforms the batch again and goes on.
func TestSessionAbortsRewindsAndRetriesWhenAnOutputFails(t *testing.T) {
	cl := aioproducertest.NewCluster(t, aioproducertest.WithTopic(inTopic, 1), aioproducertest.WithTopic(outTopic, 1))
	writeInputs(t, cl, 100, 1)
	var (
		mu     sync.Mutex
		firsts []kafka.Offset // each batch's first offset, in call order
		failed = kafka.Offset(-1)
	)
	fn := func(ctx context.Context, msgs []*kafka.Message, out eos.Emitter) error {
		mu.Lock()
		first := msgs[0].TopicPartition.Offset
		firsts = append(firsts, first)
		poison := failed < 0 && msgs[len(msgs)-1].TopicPartition.Offset >= 50
		if poison {
			failed = first
		}
		mu.Unlock()
		if poison {
			if err := out.Emit(ctx, &aioproducer.Message{Topic: outTopic, Value: []byte("nowhere"),
				Partition: aioproducer.ExplicitPartition(99)}); err != nil {
				return err
			}
		}
		return upper(ctx, msgs, out)
	}
	s := newSession(t, cl, "g", "eos-1", fn)
	errc := start(s)
	waitOutputs(t, cl, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Close(ctx))
	require.ErrorIs(t, <-errc, eos.ErrClosed)

	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, failed, kafka.Offset(0), "no batch reached offset 50: %v", firsts)
	i := slices.Index(firsts, failed)
	require.Less(t, i+1, len(firsts), "the aborted batch was not done again: %v", firsts)
	assert.Equal(t, failed, firsts[i+1], "after the abort, the next batch begins where the aborted one did: %v", firsts)
}

// A transform error aborts the transaction and Run returns it, saying where the batch began: where
// the group's offsets stay (librdkafka's mock cluster does not keep offsets committed in transactions:
// kafkatest checks that a new session begins there).
func TestSessionTransformErrorAbortsAndRunReturnsIt(t *testing.T) {
	cl := aioproducertest.NewCluster(t, aioproducertest.WithTopic(inTopic, 1), aioproducertest.WithTopic(outTopic, 1))
	writeInputs(t, cl, 100, 1)
	errBoom := errors.New("boom")
	var failedAt kafka.Offset = -1
	fn := func(ctx context.Context, msgs []*kafka.Message, out eos.Emitter) error {
		if msgs[len(msgs)-1].TopicPartition.Offset >= 50 {
			failedAt = msgs[0].TopicPartition.Offset // Run's goroutine; read after Run returned
			_ = upper(ctx, msgs, out)                // outputs in the transaction the error aborts
			return errBoom
		}
		return upper(ctx, msgs, out)
	}
	var logs syncBuffer
	s := newSession(t, cl, "g", "eos-1", fn, eos.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := s.Run(ctx)
	require.ErrorIs(t, err, errBoom)
	var te *eos.TransformError
	require.ErrorAs(t, err, &te)
	t.Logf("Run: %v", err)
	require.Len(t, te.Offsets, 1)
	assert.Equal(t, failedAt, te.Offsets[0].Offset)
	assert.Contains(t, logs.String(), "aborting the transaction")
	require.NoError(t, s.Close(ctx))
	assert.NotContains(t, logs.String(), "Close aborted", "Run aborted it already")
}

// syncBuffer is a log destination for several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Close during the transform cancels its ctx, aborts the open transaction, leaves the group and
// returns; Run returns ErrClosed and nothing was committed.
func TestSessionCloseMidTransactionAborts(t *testing.T) {
	cl := aioproducertest.NewCluster(t, aioproducertest.WithTopic(inTopic, 1), aioproducertest.WithTopic(outTopic, 1))
	writeInputs(t, cl, 10, 1)
	inTransform := make(chan struct{})
	var once sync.Once
	fn := func(ctx context.Context, msgs []*kafka.Message, out eos.Emitter) error {
		if err := upper(ctx, msgs, out); err != nil {
			return err
		}
		once.Do(func() { close(inTransform) })
		<-ctx.Done()
		return ctx.Err()
	}
	var logs syncBuffer
	s := newSession(t, cl, "g", "eos-1", fn, eos.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	errc := start(s)
	select {
	case <-inTransform:
	case <-time.After(15 * time.Second):
		t.Fatal("the transform was not called within 15 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	require.NoError(t, s.Close(ctx))
	t.Logf("Close took %v", time.Since(began).Round(time.Millisecond))
	require.ErrorIs(t, <-errc, eos.ErrClosed)
	assert.Contains(t, logs.String(), "Close aborted the open transaction")
	require.ErrorIs(t, s.Run(ctx), eos.ErrClosed, "Run after Close")
	require.NoError(t, s.Close(ctx), "Close again")
}

// New refuses what cannot be exactly once, naming it, and starts nothing.
func TestNewValidates(t *testing.T) {
	ok := func(context.Context, []*kafka.Message, eos.Emitter) error { return nil }
	cons := kafka.ConfigMap{"bootstrap.servers": "localhost:1", "group.id": "g"}
	prod := kafka.ConfigMap{"bootstrap.servers": "localhost:1", "transactional.id": "t"}
	with := func(cm kafka.ConfigMap, k string, v kafka.ConfigValue) kafka.ConfigMap {
		out := kafka.ConfigMap{}
		for kk, vv := range cm {
			out[kk] = vv
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		cons, prod kafka.ConfigMap
		topics     []string
		fn         eos.Transform
		opts       []eos.Option
		want       string
	}{
		{"no group.id", with(cons, "group.id", nil), prod, []string{"in"}, ok, nil, "group.id"},
		{"auto commit", with(cons, "enable.auto.commit", true), prod, []string{"in"}, ok, nil, "enable.auto.commit=true"},
		{"read_uncommitted", with(cons, "isolation.level", "read_uncommitted"), prod, []string{"in"}, ok, nil, "isolation.level"},
		{"logs channel", with(cons, "go.logs.channel.enable", true), prod, []string{"in"}, ok, nil, "go.logs.channel.enable"},
		{"no transactional.id", cons, with(prod, "transactional.id", nil), []string{"in"}, ok, nil, "transactional.id"},
		{"no topics", cons, prod, nil, ok, nil, "no input topics"},
		{"no transform", cons, prod, []string{"in"}, nil, nil, "no transform"},
		{"empty batch", cons, prod, []string{"in"}, ok, []eos.Option{eos.WithBatch(0, time.Second)}, "maxMessages"},
		{"no wait", cons, prod, []string{"in"}, ok, []eos.Option{eos.WithBatch(1, 0)}, "maxWait"},
		{"bad producer setting", cons, with(prod, "acks", "some"), []string{"in"}, ok, nil, "acks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := eos.New(tc.cons, tc.prod, tc.topics, tc.fn, tc.opts...)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.True(t, strings.Contains(err.Error(), tc.want), "%v", err)
		})
	}
}

// The only broker goes down for 2 s while a transaction is open: the session waits it out (the
// producer's calls retry until it is back) and commits; every input's output is there once.
func TestSessionWaitsOutABrokerOutage(t *testing.T) {
	cl := aioproducertest.NewCluster(t, aioproducertest.WithTopic(inTopic, 1), aioproducertest.WithTopic(outTopic, 1))
	writeInputs(t, cl, 100, 1)
	up := make(chan struct{})
	var down sync.Once
	fn := func(ctx context.Context, msgs []*kafka.Message, out eos.Emitter) error {
		if err := upper(ctx, msgs, out); err != nil {
			return err
		}
		if msgs[len(msgs)-1].TopicPartition.Offset >= 50 {
			down.Do(func() {
				require.NoError(t, cl.SetBrokerDown(1))
				time.AfterFunc(2*time.Second, func() {
					assert.NoError(t, cl.SetBrokerUp(1))
					close(up)
				})
			})
		}
		return nil
	}
	var logs syncBuffer
	s := newSession(t, cl, "g", "eos-1", fn, eos.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	errc := start(s)
	select {
	case <-up:
	case <-time.After(20 * time.Second):
		t.Fatal("the broker was not taken down and up again within 20 s")
	}
	waitOutputs(t, cl, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.Close(ctx))
	require.ErrorIs(t, <-errc, eos.ErrClosed)
	assert.NotContains(t, logs.String(), "aborting the transaction")
	recs, err := cl.ReadTopic(ctx, outTopic)
	require.NoError(t, err)
	assert.Len(t, recs, 100, "each output once")
}

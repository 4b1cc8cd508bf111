package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// withTransactions makes a producer over the in-memory engine transactional, as transactional.id does.
func withTransactions() Option { return func(c *config) { c.kafka.transactional = true } }

// newTxnProducer is a transactional producer with transactional.id id, initialized.
func newTxnProducer(t *testing.T, bootstrap, id string, opts ...Option) *Producer {
	t.Helper()
	p := newTestProducer(t, bootstrap, kafka.ConfigMap{"transactional.id": id}, opts...)
	require.NoError(t, p.InitTransactions(ctxTimeout(t, 30*time.Second)))
	return p
}

// readTopic reads partition 0 of topic from the beginning to its end, as a consumer with isolation
// level iso sees it ("read_committed" stops at the last stable offset and skips aborted messages).
func readTopic(t *testing.T, bootstrap, topic, iso string) []string {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":    bootstrap,
		"group.id":             fmt.Sprintf("read-%s-%d", topic, time.Now().UnixNano()),
		"isolation.level":      iso,
		"enable.partition.eof": true,
		"enable.auto.commit":   false,
	})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}))
	var out []string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			out = append(out, string(e.Value))
		case kafka.PartitionEOF:
			return out
		case kafka.Error:
			if e.IsFatal() {
				t.Fatalf("consumer: %v", e)
			}
		}
	}
	t.Fatalf("no end of partition %s[0] within 30 s, after %d messages", topic, len(out))
	return nil
}

// produceTxn produces n values prefix-0.. in the open transaction and returns their futures.
func produceTxn(t *testing.T, p *Producer, topic, prefix string, n int) []*Future {
	t.Helper()
	futs := make([]*Future, n)
	for i := range futs {
		var err error
		futs[i], err = p.Produce(t.Context(), &Message{Topic: topic, Value: fmt.Appendf(nil, "%s-%d", prefix, i)})
		require.NoError(t, err)
	}
	return futs
}

func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// Consumers read the committed transactions' messages, in order, once, and of the aborted one's only
// those written before the abort. librdkafka's mock cluster does not hide aborted messages from
// read_committed consumers, nor fence an older producer: kafkatest checks those against a real broker.
func TestTransactionsCommitAndAbort(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("txn", 1, 1))
	p := newTxnProducer(t, mc.BootstrapServers(), "txn")
	ctx := ctxTimeout(t, 30*time.Second)
	const m = 50
	var want []string
	for i, commit := range []bool{true, false, true} {
		prefix := fmt.Sprintf("t%d", i)
		require.NoError(t, p.BeginTransaction())
		futs := produceTxn(t, p, "txn", prefix, m)
		if commit {
			require.NoError(t, p.CommitTransaction(ctx))
			want = append(want, values(prefix, m)...)
		} else {
			// Never sent: the abort fails them in the producer or purges them from librdkafka.
			require.NoError(t, p.AbortTransaction(ctx))
		}
		for j, f := range futs {
			select {
			case <-f.Done(): // every future of the transaction is resolved when the call returns
			default:
				t.Fatalf("transaction %d, message %d: future not done", i, j)
			}
		}
	}
	// The aborted transaction's messages librdkafka had sent before the abort are in the log (the mock
	// shows them even to read_committed), in order, before the next transaction's: the others never
	// left the producer.
	for _, iso := range []string{"read_committed", "read_uncommitted"} {
		got := readTopic(t, mc.BootstrapServers(), "txn", iso)
		require.GreaterOrEqual(t, len(got), len(want), iso)
		aborted := got[m : len(got)-m]
		assert.Equal(t, values("t1", m)[:len(aborted)], aborted, "%s: the aborted transaction's messages in the log", iso)
		assert.Equal(t, want, append(got[:m:m], got[len(got)-m:]...), "%s: the committed transactions' messages", iso)
	}
}

// A message that fails inside a transaction makes Commit refuse and name it; Abort then succeeds and
// the next transaction commits.
func TestFailedMessageMakesCommitRefuseUntilAborted(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("txnfail", 1, 1))
	p := newTxnProducer(t, mc.BootstrapServers(), "txnfail")
	ctx := ctxTimeout(t, 30*time.Second)

	require.NoError(t, p.BeginTransaction())
	produceTxn(t, p, "txnfail", "lost", 5)
	bad, err := p.Produce(ctx, &Message{Topic: "txnfail", Value: []byte("nowhere"), Partition: ExplicitPartition(9)})
	require.NoError(t, err)
	err = p.CommitTransaction(ctx)
	require.Error(t, err)
	assert.True(t, TxnRequiresAbort(err), "%v", err)
	assert.False(t, IsFatal(err))
	assert.Contains(t, err.Error(), `"txnfail"`)
	_, berr := bad.Wait(ctx)
	var ke kafka.Error
	require.ErrorAs(t, berr, &ke)
	assert.Equal(t, kafka.ErrUnknownPartition, ke.Code())
	require.ErrorAs(t, err, &ke, "the commit's error carries the message's")
	assert.Equal(t, kafka.ErrUnknownPartition, ke.Code())
	assert.True(t, TxnRequiresAbort(p.CommitTransaction(ctx)), "Commit again still refuses")

	require.NoError(t, p.AbortTransaction(ctx))
	require.NoError(t, p.BeginTransaction())
	produceTxn(t, p, "txnfail", "kept", 5)
	require.NoError(t, p.CommitTransaction(ctx))
	// The mock cluster shows read_committed consumers the aborted "lost" messages too (kafkatest
	// checks that a real broker does not): only the committed ones' presence is checked here.
	got := readTopic(t, mc.BootstrapServers(), "txnfail", "read_committed")
	require.GreaterOrEqual(t, len(got), 5)
	assert.Equal(t, values("kept", 5), got[len(got)-5:])
}

// Produce on a transactional producer outside a transaction accepts nothing.
func TestProduceOutsideATransactionFails(t *testing.T) {
	fe := newMemEngine(memConfig{Auto: true})
	p := newFakeProducer(t, fe, withTransactions())
	ctx := t.Context()
	try := func(when string) {
		t.Helper()
		_, err := p.Produce(ctx, msg("t", when))
		require.ErrorIs(t, err, ErrNotInTransaction, when)
		_, err = p.TryProduce(msg("t", when))
		require.ErrorIs(t, err, ErrNotInTransaction, when)
		require.ErrorIs(t, p.ProduceFunc(ctx, msg("t", when), func(Delivery, error) {}), ErrNotInTransaction, when)
		_, err = p.ProduceBatch(ctx, []*Message{msg("t", when)})
		require.ErrorIs(t, err, ErrNotInTransaction, when)
	}
	try("before InitTransactions")
	require.NoError(t, p.InitTransactions(ctx))
	try("before BeginTransaction")
	require.NoError(t, p.BeginTransaction())
	f, err := p.Produce(ctx, msg("t", "in"))
	require.NoError(t, err)
	require.NoError(t, p.CommitTransaction(ctx))
	_, err = f.Wait(ctx)
	require.NoError(t, err)
	try("after CommitTransaction")
	assert.EqualValues(t, 1, p.stats.accepted.Load(), "only the message inside the transaction")

	var te *TxnError
	plain := newFakeProducer(t, newMemEngine(memConfig{Auto: true}))
	require.ErrorAs(t, plain.BeginTransaction(), &te)
	assert.ErrorIs(t, te, ErrNotTransactional)
}

// gatedTxnProducer is a transactional producer over the in-memory engine, in a transaction, with one worker
// whose first enqueue waits until gate is closed: the messages produced after the first stay in the
// producer's buffer meanwhile.
func gatedTxnProducer(t *testing.T) (p *Producer, fe *memEngine, gate chan struct{}) {
	t.Helper()
	fe = newMemEngine(memConfig{Auto: true})
	gate = make(chan struct{})
	fe.setGate(gate)
	p = newFakeProducer(t, fe, withTransactions(), WithWorkers(1))
	require.NoError(t, p.InitTransactions(t.Context()))
	require.NoError(t, p.BeginTransaction())
	return p, fe, gate
}

// Commit hands librdkafka every message still in the producer's buffer, and waits for their outcomes,
// before it commits.
func TestCommitSendsWhatTheBufferHoldsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, fe, gate := gatedTxnProducer(t) // the first batch stays inside enqueue: the rest waits in the producer
		futs := make([]*Future, 20)
		for i := range futs {
			var err error
			futs[i], err = p.Produce(t.Context(), msg("t", fmt.Sprint(i)))
			require.NoError(t, err)
		}
		committed := make(chan error, 1)
		go func() { committed <- p.CommitTransaction(t.Context()) }()
		synctest.Wait()
		select {
		case err := <-committed:
			t.Fatalf("Commit returned (%v) with messages of the transaction still buffered", err)
		default:
		}
		close(gate)
		require.NoError(t, <-committed)
		for i, f := range futs {
			_, err := f.Wait(t.Context())
			require.NoError(t, err, "message %d", i)
		}
		calls := fe.txnCalls()
		require.Len(t, calls, 3) // init, begin, commit
		assert.Equal(t, rdk.TxnCommit, calls[2].op)
		assert.Equal(t, 20, int(calls[2].taken), "every message was handed over before the commit")
	})
}

// Abort fails what the producer still buffers without sending it.
func TestAbortFailsBufferedMessagesWithoutSendingThem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, fe, gate := gatedTxnProducer(t)
		futs := make([]*Future, 20)
		for i := range futs {
			var err error
			futs[i], err = p.Produce(t.Context(), msg("t", fmt.Sprint(i)))
			require.NoError(t, err)
			synctest.Wait() // "0" goes alone and stays inside enqueue; the rest wait in the producer
		}
		go func() {
			for p.exec.discardErr.Load() == nil {
				time.Sleep(time.Millisecond)
			}
			close(gate) // enqueue returns, as librdkafka's does: it never blocks
		}()
		require.NoError(t, p.AbortTransaction(t.Context()))
		_, err := futs[0].Wait(t.Context())
		require.NoError(t, err, "the message librdkafka had is its to settle: here, delivered")
		for i, f := range futs[1:] {
			_, err := f.Wait(t.Context())
			require.ErrorIs(t, err, ErrTransactionAborted, "message %d", i+1)
			assert.Contains(t, err.Error(), "not sent")
		}
		assert.Len(t, fe.enqueued(), 1, "the buffered messages were never handed to librdkafka")

		// The next transaction works.
		require.NoError(t, p.BeginTransaction())
		f, err := p.Produce(t.Context(), msg("t", "next"))
		require.NoError(t, err)
		require.NoError(t, p.CommitTransaction(t.Context()))
		_, err = f.Wait(t.Context())
		require.NoError(t, err)
	})
}

// Close during a transaction aborts it; every future resolves.
func TestCloseDuringATransactionAbortsIt(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("txnclose", 1, 1))
	p, err := New(kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers(), "transactional.id": "close"},
		WithLogger(quietLogger))
	require.NoError(t, err)
	ctx := ctxTimeout(t, 30*time.Second)
	require.NoError(t, p.InitTransactions(ctx))
	require.NoError(t, p.BeginTransaction())
	futs := produceTxn(t, p, "txnclose", "open", 20)
	require.NoError(t, p.Close(ctx))
	for i, f := range futs {
		select {
		case <-f.Done():
		default:
			t.Fatalf("message %d: future not done after Close", i)
		}
	}
}

// Produce, Commit, Abort and Close from several goroutines: every accepted message gets one outcome,
// and the race detector and goleak see nothing.
func TestTransactionsUnderConcurrentProduceCommitAbortAndClose(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("txnrace", 2, 1))
	p, err := New(kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers(), "transactional.id": "race"}, WithLogger(quietLogger))
	require.NoError(t, err)
	ctx := ctxTimeout(t, 60*time.Second)
	require.NoError(t, p.InitTransactions(ctx))

	var mu sync.Mutex
	outcomes := map[*Message]int{}
	accepted := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := &Message{Topic: "txnrace", Key: []byte(fmt.Sprint(g)), Value: []byte(fmt.Sprint(i))}
				err := p.ProduceFunc(ctx, m, func(Delivery, error) {
					mu.Lock()
					outcomes[m]++
					mu.Unlock()
				})
				switch {
				case err == nil:
					mu.Lock()
					accepted++
					mu.Unlock()
				case errors.Is(err, ErrNotInTransaction):
					time.Sleep(time.Millisecond)
				case errors.Is(err, ErrClosed):
					return
				default:
					t.Errorf("Produce: %v", err)
					return
				}
			}
		}()
	}
	for i := range 10 {
		require.NoError(t, p.BeginTransaction())
		time.Sleep(20 * time.Millisecond)
		if i%3 == 2 {
			require.NoError(t, p.AbortTransaction(ctx))
		} else {
			require.NoError(t, p.CommitTransaction(ctx))
		}
	}
	require.NoError(t, p.BeginTransaction())
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, p.Close(ctx)) // aborts the open transaction
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Positive(t, accepted)
	for m, n := range outcomes {
		require.Equal(t, 1, n, "message %s/%s", m.Key, m.Value)
	}
	assert.Len(t, outcomes, accepted)
}

// A transactional call whose ctx has already ended (cancelled, or its deadline passed) does nothing:
// it returns a retriable *TxnError wrapping ctx's error, the engine sees no call, the transaction stays
// open with its messages, and the same call with a live ctx then does its work.
func TestTransactionalCallsRefuseAnEndedContext(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"deadline passed", expired, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refused := func(err error, op string) {
				t.Helper()
				require.ErrorIs(t, err, tc.want, op)
				var te *TxnError
				require.ErrorAs(t, err, &te, op)
				assert.Equal(t, op, te.Op)
				assert.True(t, IsRetriable(err), "%s: %v", op, err)
				assert.False(t, TxnRequiresAbort(err), op)
				assert.False(t, IsFatal(err), op)
			}
			fe := newMemEngine(memConfig{Auto: true})
			gate := make(chan struct{})
			fe.setGate(gate) // the first message stays inside enqueue; the rest wait in the producer
			p := newFakeProducer(t, fe, withTransactions(), WithWorkers(1))

			refused(p.InitTransactions(tc.ctx), "InitTransactions")
			assert.Empty(t, fe.txnCalls(), "no init reached the engine")
			require.NoError(t, p.InitTransactions(t.Context()))
			require.NoError(t, p.BeginTransaction())
			futs := make([]*Future, 10)
			for i := range futs {
				var err error
				futs[i], err = p.Produce(t.Context(), msg("t", fmt.Sprint(i)))
				require.NoError(t, err)
			}

			refused(p.CommitTransaction(tc.ctx), "CommitTransaction")
			refused(p.AbortTransaction(tc.ctx), "AbortTransaction")
			refused(p.SendOffsetsToTransaction(tc.ctx, nil, &kafka.ConsumerGroupMetadata{}), "SendOffsetsToTransaction")
			assert.Equal(t, txnOpen, p.state.txnState(), "the transaction is still open")
			assert.Nil(t, p.exec.discardErr.Load(), "nothing discarded")
			for i, f := range futs {
				select {
				case <-f.Done():
					t.Fatalf("message %d resolved by a refused call", i)
				default:
				}
			}
			f, err := p.Produce(t.Context(), msg("t", "after"))
			require.NoError(t, err, "Produce still takes messages in the transaction")
			futs = append(futs, f)
			calls := fe.txnCalls()
			require.Len(t, calls, 2, "init and begin only: %v", calls)

			close(gate)
			require.NoError(t, p.CommitTransaction(t.Context()))
			calls = fe.txnCalls()
			require.Len(t, calls, 3)
			assert.Equal(t, rdk.TxnCommit, calls[2].op)
			assert.Equal(t, len(futs), int(calls[2].taken), "every message was handed over before the commit")
			for i, f := range futs {
				_, err := f.Wait(t.Context())
				require.NoError(t, err, "message %d", i)
			}
		})
	}
}

// repeatedPhrase returns a run of three words that appears twice in s, whatever their case, or "".
func repeatedPhrase(s string) string {
	words := strings.Fields(strings.ToLower(s))
	seen := map[string]bool{}
	for i := 0; i+3 <= len(words); i++ {
		p := strings.Join(words[i:i+3], " ")
		if seen[p] {
			return p
		}
		seen[p] = true
	}
	return ""
}

// Every transactional error says "aioproducer:" once and no phrase twice, and still matches its
// sentinel with errors.Is.
func TestTransactionalErrorsReadOnce(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cgm := &kafka.ConsumerGroupMetadata{}
	txnFake := func(t *testing.T) (*Producer, *memEngine) {
		fe := newMemEngine(memConfig{Auto: true})
		return newFakeProducer(t, fe, withTransactions()), fe
	}
	open := func(t *testing.T) *Producer {
		p, _ := txnFake(t)
		require.NoError(t, p.InitTransactions(t.Context()))
		require.NoError(t, p.BeginTransaction())
		return p
	}
	ready := func(t *testing.T) *Producer {
		p, _ := txnFake(t)
		require.NoError(t, p.InitTransactions(t.Context()))
		return p
	}
	for _, tc := range []struct {
		name   string
		call   func(t *testing.T) error
		is     error
		phrase string // appears exactly once, whatever its case
	}{
		{"Begin on a plain producer", func(t *testing.T) error {
			return newFakeProducer(t, newMemEngine(memConfig{Auto: true})).BeginTransaction()
		}, ErrNotTransactional, "not a transactional producer"},
		{"Commit on a plain producer", func(t *testing.T) error {
			return newFakeProducer(t, newMemEngine(memConfig{Auto: true})).CommitTransaction(t.Context())
		}, ErrNotTransactional, "not a transactional producer"},
		{"Begin before Init", func(t *testing.T) error {
			p, _ := txnFake(t)
			return p.BeginTransaction()
		}, nil, "not initialized"},
		{"Commit before Init", func(t *testing.T) error {
			p, _ := txnFake(t)
			return p.CommitTransaction(t.Context())
		}, ErrNotInTransaction, "not in a transaction"},
		{"Commit before Begin", func(t *testing.T) error { return ready(t).CommitTransaction(t.Context()) },
			ErrNotInTransaction, "not in a transaction"},
		{"Abort before Begin", func(t *testing.T) error { return ready(t).AbortTransaction(t.Context()) },
			ErrNotInTransaction, "not in a transaction"},
		{"SendOffsets before Begin", func(t *testing.T) error {
			return ready(t).SendOffsetsToTransaction(t.Context(), nil, cgm)
		}, ErrNotInTransaction, "not in a transaction"},
		{"Produce before Begin", func(t *testing.T) error {
			_, err := ready(t).Produce(t.Context(), msg("t", "v"))
			return err
		}, ErrNotInTransaction, "not in a transaction"},
		{"Init twice", func(t *testing.T) error { return ready(t).InitTransactions(t.Context()) },
			nil, "already initialized"},
		{"Begin twice", func(t *testing.T) error { return open(t).BeginTransaction() }, nil, "in a transaction"},
		{"Commit with a cancelled ctx", func(t *testing.T) error { return open(t).CommitTransaction(cancelled) },
			context.Canceled, "context canceled"},
		{"Abort with a cancelled ctx", func(t *testing.T) error { return open(t).AbortTransaction(cancelled) },
			context.Canceled, "context canceled"},
		{"Commit after Close", func(t *testing.T) error {
			p := ready(t)
			require.NoError(t, p.Close(t.Context()))
			return p.CommitTransaction(t.Context())
		}, ErrClosed, "producer closed"},
		{"Commit after a message failed", func(t *testing.T) error {
			p, fe := txnFake(t)
			require.NoError(t, p.InitTransactions(t.Context()))
			require.NoError(t, p.BeginTransaction())
			m := msg("orders", "v")
			fe.refuseWith(m, kafka.NewError(kafka.ErrUnknownPartition, "unknown partition", false))
			f, err := p.Produce(t.Context(), m)
			require.NoError(t, err)
			_, _ = f.Wait(t.Context())
			return p.CommitTransaction(t.Context())
		}, nil, `"orders"`},
		{"Commit after a fatal error", func(t *testing.T) error {
			p, fe := txnFake(t)
			require.NoError(t, p.InitTransactions(t.Context()))
			require.NoError(t, p.BeginTransaction())
			fe.raiseFatal(kafka.NewError(kafka.ErrFenced, "fenced by a newer producer", true))
			require.Eventually(t, func() bool { return p.state.fatal.Load() != nil }, 5*time.Second, time.Millisecond)
			return p.CommitTransaction(t.Context())
		}, ErrFatal, "fatal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(t)
			require.Error(t, err)
			text := err.Error()
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is, text)
			}
			assert.Equal(t, 1, strings.Count(text, "aioproducer:"), text)
			assert.Equal(t, 1, strings.Count(strings.ToLower(text), tc.phrase), "%q in %s", tc.phrase, text)
			assert.Empty(t, repeatedPhrase(text), text)
			t.Log(text)
		})
	}
}

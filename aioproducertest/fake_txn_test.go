package aioproducertest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// newTxnFake is a Transactional Fake with its transactions initialized.
func newTxnFake(t *testing.T, opts ...aioproducertest.FakeOption) *aioproducertest.Fake {
	t.Helper()
	f := aioproducertest.NewFake(t, append([]aioproducertest.FakeOption{aioproducertest.Transactional()}, opts...)...)
	require.NoError(t, f.InitTransactions(ctxFor(t, 10*time.Second)))
	return f
}

func groupMetadata(t *testing.T, group string) *kafka.ConsumerGroupMetadata {
	t.Helper()
	cgm, err := kafka.NewTestConsumerGroupMetadata(group)
	require.NoError(t, err)
	return cgm
}

func offsetsOf(topic string, partition int32, offset int64) []kafka.TopicPartition {
	return []kafka.TopicPartition{{Topic: &topic, Partition: partition, Offset: kafka.Offset(offset)}}
}

// Consume-transform-produce over a Transactional Fake: each batch of input is one transaction whose
// outputs and consumer offsets go together; a batch one of whose outputs fails is aborted. The Fake
// records what each transaction held and how it ended, and marks each message of History committed or
// aborted.
func TestFakeTransactionsRecordWhatEachHeldAndHowItEnded(t *testing.T) {
	tooLarge := aioproducertest.NotPersistedError(kafka.ErrMsgSizeTooLarge)
	f := newTxnFake(t, aioproducertest.FailWith(func(m *aioproducer.Message) error {
		if string(m.Key) == "huge" {
			return tooLarge
		}
		return nil
	}))
	ctx := ctxFor(t, 10*time.Second)
	cgm := groupMetadata(t, "uppercaser")

	// transform is the code under test: one batch of input, one transaction.
	transform := func(inputs []string, next int64) error {
		if err := f.BeginTransaction(); err != nil {
			return err
		}
		for _, in := range inputs {
			if _, err := f.Produce(ctx, msg("out", in, in+"!")); err != nil {
				return err
			}
		}
		err := f.SendOffsetsToTransaction(ctx, offsetsOf("in", 0, next), cgm)
		if err == nil {
			err = f.CommitTransaction(ctx)
		}
		if aioproducer.TxnRequiresAbort(err) {
			return errors.Join(err, f.AbortTransaction(ctx))
		}
		return err
	}
	require.NoError(t, transform([]string{"a", "b"}, 2))
	err := transform([]string{"c", "huge"}, 4)
	require.True(t, aioproducer.TxnRequiresAbort(err), "%v", err)
	require.ErrorContains(t, err, "Message size too large")

	txns := f.Transactions()
	require.Len(t, txns, 2)
	committed, aborted := txns[0], txns[1]
	assert.True(t, committed.Committed)
	assert.False(t, committed.Aborted)
	require.Len(t, committed.Messages, 2)
	assert.Equal(t, "a!", string(committed.Messages[0].Message.Value))
	assert.Equal(t, "b!", string(committed.Messages[1].Message.Value))
	require.Len(t, committed.Offsets, 1)
	assert.Equal(t, "uppercaser", committed.Offsets[0].GroupID)
	assert.Equal(t, "in", *committed.Offsets[0].Offsets[0].Topic)
	assert.EqualValues(t, 2, committed.Offsets[0].Offsets[0].Offset)

	assert.True(t, aborted.Aborted)
	assert.False(t, aborted.Committed)
	require.Len(t, aborted.Messages, 2, "CommitTransaction handed over every message before it refused")
	assert.Equal(t, "c!", string(aborted.Messages[0].Message.Value))
	assert.NoError(t, aborted.Messages[0].Err, "delivered, as a broker writes it, then aborted")
	assert.Equal(t, "huge!", string(aborted.Messages[1].Message.Value))
	var ke kafka.Error
	require.ErrorAs(t, aborted.Messages[1].Err, &ke)
	assert.Equal(t, kafka.ErrMsgSizeTooLarge, ke.Code())
	assert.EqualValues(t, 4, aborted.Offsets[0].Offsets[0].Offset)

	h := f.History()
	require.Len(t, h, 4)
	for i, s := range h {
		assert.Equal(t, i < 2, s.Committed, "message %d", i)
		assert.Equal(t, i >= 2, s.Aborted, "message %d", i)
	}

	// Outside a transaction the producer takes nothing, as the real one.
	_, err = f.Produce(ctx, msg("out", "d", "d!"))
	require.ErrorIs(t, err, aioproducer.ErrNotInTransaction)

	// Clear forgets the transactions that ended; an open one stays, with what it takes from then on.
	require.NoError(t, f.BeginTransaction())
	_, err = f.Produce(ctx, msg("out", "e", "e!"))
	require.NoError(t, err)
	f.Clear()
	_, err = f.Produce(ctx, msg("out", "f", "f!"))
	require.NoError(t, err)
	txns = f.Transactions()
	require.Len(t, txns, 1)
	assert.False(t, txns[0].Committed || txns[0].Aborted, "still open")
	require.Len(t, txns[0].Messages, 1)
	assert.Equal(t, "f!", string(txns[0].Messages[0].Message.Value))
}

// With ManualCompletion, CommitTransaction waits for the test to complete the transaction's messages,
// and AbortTransaction fails those outstanding, as librdkafka's abort purges its queue.
func TestFakeAbortFailsWhatIsOutstanding(t *testing.T) {
	f := newTxnFake(t, aioproducertest.ManualCompletion())
	ctx := ctxFor(t, 10*time.Second)
	require.NoError(t, f.BeginTransaction())
	first, err := f.Produce(ctx, msg("t", "", "completed"))
	require.NoError(t, err)
	second, err := f.Produce(ctx, msg("t", "", "outstanding"))
	require.NoError(t, err)
	require.True(t, f.CompleteNext())

	require.NoError(t, f.AbortTransaction(ctx))
	_, err = first.Wait(ctx)
	require.NoError(t, err, "what the broker had answered keeps its outcome")
	require.True(t, second.IsDone(), "every Future of the transaction resolves before Abort returns")
	_, err = second.Wait(ctx)
	require.ErrorIs(t, err, aioproducer.ErrTransactionAborted)
	assert.False(t, aioproducer.IsOutcomeUnknown(err))

	require.NoError(t, f.BeginTransaction())
	third, err := f.Produce(ctx, msg("t", "", "next"))
	require.NoError(t, err)
	committed := make(chan error, 1)
	go func() { committed <- f.CommitTransaction(ctx) }()
	require.Eventually(t, func() bool { return f.Outstanding() == 1 }, 5*time.Second, time.Millisecond)
	select {
	case err := <-committed:
		t.Fatalf("CommitTransaction returned (%v) before its message was completed", err)
	case <-time.After(20 * time.Millisecond):
	}
	require.True(t, f.CompleteNext())
	require.NoError(t, <-committed)
	_, err = third.Wait(ctx)
	require.NoError(t, err)

	txns := f.Transactions()
	require.Len(t, txns, 2)
	assert.True(t, txns[0].Aborted)
	require.Len(t, txns[0].Messages, 2)
	var ke kafka.Error
	require.ErrorAs(t, txns[0].Messages[1].Err, &ke)
	assert.Equal(t, kafka.ErrPurgeQueue, ke.Code(), "the broker's record: purged, as librdkafka reports it")
	assert.True(t, txns[1].Committed)
}

// FenceProducer is MockProducer's fenceProducer: the next transactional call fails with librdkafka's
// fatal kafka.ErrFenced, and the Fake is then a producer after a fatal error.
func TestFakeFenceProducerFailsTheNextTransactionalCallFatally(t *testing.T) {
	t.Run("at commit", func(t *testing.T) {
		f := newTxnFake(t)
		ctx := ctxFor(t, 10*time.Second)
		require.NoError(t, f.BeginTransaction())
		_, err := f.Produce(ctx, msg("t", "", "v"))
		require.NoError(t, err)
		f.FenceProducer()

		err = f.CommitTransaction(ctx)
		require.Error(t, err)
		assert.True(t, aioproducer.IsFatal(err), "%v", err)
		assert.False(t, aioproducer.IsRetriable(err), "%v", err)
		assert.False(t, aioproducer.TxnRequiresAbort(err), "%v", err)
		var ke kafka.Error
		require.ErrorAs(t, err, &ke)
		assert.Equal(t, kafka.ErrFenced, ke.Code())
		var te *aioproducer.TxnError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "CommitTransaction", te.Op)

		_, err = f.Produce(ctx, msg("t", "", "late"))
		require.ErrorIs(t, err, aioproducer.ErrFatal)
		assert.True(t, aioproducer.IsFatal(f.AbortTransaction(ctx)))
		assert.True(t, aioproducer.IsFatal(f.BeginTransaction()))
		require.NoError(t, f.Close(ctx))
		txns := f.Transactions()
		require.Len(t, txns, 1)
		assert.False(t, txns[0].Committed || txns[0].Aborted, "neither committed nor aborted")
	})
	t.Run("with a message outstanding", func(t *testing.T) {
		f := newTxnFake(t, aioproducertest.ManualCompletion())
		ctx := ctxFor(t, 10*time.Second)
		require.NoError(t, f.BeginTransaction())
		fut, err := f.Produce(ctx, msg("t", "", "outstanding"))
		require.NoError(t, err)
		require.Equal(t, 1, f.Outstanding())
		f.FenceProducer()

		err = f.SendOffsetsToTransaction(ctx, offsetsOf("in", 0, 1), groupMetadata(t, "g"))
		require.True(t, aioproducer.IsFatal(err), "%v", err)
		_, err = fut.Wait(ctx)
		require.ErrorIs(t, err, aioproducer.ErrFatal, "what was outstanding fails, as after librdkafka's fatal error")
		require.Eventually(t, func() bool { return f.Outstanding() == 0 }, 5*time.Second, time.Millisecond)
		_, err = f.Produce(ctx, msg("t", "", "late"))
		require.ErrorIs(t, err, aioproducer.ErrFatal)
		assert.Empty(t, f.Transactions()[0].Offsets, "a call that failed adds nothing")
	})
}

// A commit that fails with an abortable error (librdkafka's rd_kafka_error_txn_requires_abort) keeps
// failing until AbortTransaction; the next transaction commits.
func TestFakeAbortableCommitRequiresAnAbortThenTheNextTransactionWorks(t *testing.T) {
	f := newTxnFake(t)
	ctx := ctxFor(t, 10*time.Second)
	f.FailNextTxn("CommitTransaction", aioproducertest.AbortableError(kafka.ErrInvalidTxnState))

	require.NoError(t, f.BeginTransaction())
	_, err := f.Produce(ctx, msg("t", "", "lost"))
	require.NoError(t, err)
	err = f.CommitTransaction(ctx)
	require.Error(t, err)
	assert.True(t, aioproducer.TxnRequiresAbort(err), "%v", err)
	assert.False(t, aioproducer.IsFatal(err), "%v", err)
	assert.False(t, aioproducer.IsRetriable(err), "%v", err)
	var ke kafka.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, kafka.ErrInvalidTxnState, ke.Code())
	assert.True(t, aioproducer.TxnRequiresAbort(f.CommitTransaction(ctx)), "Commit again fails again")

	require.NoError(t, f.AbortTransaction(ctx))
	require.NoError(t, f.BeginTransaction())
	_, err = f.Produce(ctx, msg("t", "", "kept"))
	require.NoError(t, err)
	require.NoError(t, f.CommitTransaction(ctx))

	txns := f.Transactions()
	require.Len(t, txns, 2)
	assert.True(t, txns[0].Aborted)
	assert.True(t, txns[1].Committed)
	assert.Equal(t, "kept", string(txns[1].Messages[0].Message.Value))
}

// After an abortable error, as in librdkafka, the transaction takes no message: the producer accepts
// it, its broker refuses it (kafka.ErrState), and the commit names that failure.
func TestFakeAbortableSendOffsetsRefusesTheTransactionsNextMessages(t *testing.T) {
	f := newTxnFake(t)
	ctx := ctxFor(t, 10*time.Second)
	f.FailNextTxn("SendOffsetsToTransaction", aioproducertest.AbortableError(kafka.ErrInvalidTxnState))
	require.NoError(t, f.BeginTransaction())
	err := f.SendOffsetsToTransaction(ctx, offsetsOf("in", 0, 1), groupMetadata(t, "g"))
	require.True(t, aioproducer.TxnRequiresAbort(err), "%v", err)

	fut, err := f.Produce(ctx, msg("t", "", "refused"))
	require.NoError(t, err)
	_, err = fut.Wait(ctx)
	var ke kafka.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, kafka.ErrState, ke.Code())
	assert.True(t, aioproducer.TxnRequiresAbort(f.CommitTransaction(ctx)))
	require.NoError(t, f.AbortTransaction(ctx))
	assert.Empty(t, f.History(), "the broker took nothing")
}

// A retriable error is what librdkafka gives for a coordinator that is loading or busy: the producer
// makes the call again by itself, so the caller sees it only if its ctx ends first.
func TestFakeRetriableTxnErrorIsRetriedByTheProducer(t *testing.T) {
	f := newTxnFake(t)
	ctx := ctxFor(t, 10*time.Second)
	cgm := groupMetadata(t, "g")
	require.NoError(t, f.BeginTransaction())

	f.FailNextTxn("SendOffsetsToTransaction", aioproducertest.RetriableError(kafka.ErrCoordinatorLoadInProgress))
	ended, cancel := context.WithCancel(ctx)
	cancel()
	err := f.SendOffsetsToTransaction(ended, offsetsOf("in", 0, 1), cgm)
	require.Error(t, err)
	assert.True(t, aioproducer.IsRetriable(err), "%v", err)
	assert.False(t, aioproducer.TxnRequiresAbort(err), "%v", err)
	assert.ErrorIs(t, err, context.Canceled)
	require.NoError(t, f.SendOffsetsToTransaction(ctx, offsetsOf("in", 0, 1), cgm), "called again, it succeeds")

	f.FailNextTxn("CommitTransaction", aioproducertest.RetriableError(kafka.ErrConcurrentTransactions))
	require.NoError(t, f.CommitTransaction(ctx), "the producer retried it")
	txns := f.Transactions()
	require.Len(t, txns, 1)
	assert.True(t, txns[0].Committed)
	assert.Len(t, txns[0].Offsets, 1, "recorded once: the failed call added nothing")
}

// FailNextTxn checks its arguments; SendOffsetsToTransaction checks the group metadata as librdkafka's does.
func TestFakeFailNextTxnRefusesWhatIsNoTransactionalCall(t *testing.T) {
	f := newTxnFake(t)
	assert.Panics(t, func() { f.FailNextTxn("Flush", errors.New("x")) })
	assert.Panics(t, func() { f.FailNextTxn("CommitTransaction", nil) })

	f.FailNextTxn("BeginTransaction", errors.New("chosen"))
	err := f.BeginTransaction()
	require.ErrorContains(t, err, "chosen")
	assert.False(t, aioproducer.IsRetriable(err) || aioproducer.TxnRequiresAbort(err) || aioproducer.IsFatal(err))
	require.NoError(t, f.BeginTransaction(), "one call took the failure")
	err = f.SendOffsetsToTransaction(t.Context(), offsetsOf("in", 0, 1), &kafka.ConsumerGroupMetadata{})
	var ke kafka.Error
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, kafka.ErrInvalidArg, ke.Code())
}

// Without Transactional the Fake is a producer without transactional.id: every transactional call
// fails with ErrNotTransactional, and Produce needs no transaction.
func TestFakeWithoutTransactionalRefusesTransactionalCalls(t *testing.T) {
	f := aioproducertest.NewFake(t)
	ctx := ctxFor(t, 10*time.Second)
	f.FenceProducer() // no effect: no call reaches the broker
	for name, call := range map[string]func() error{
		"InitTransactions": func() error { return f.InitTransactions(ctx) },
		"BeginTransaction": f.BeginTransaction,
		"SendOffsetsToTransaction": func() error {
			return f.SendOffsetsToTransaction(ctx, offsetsOf("in", 0, 1), groupMetadata(t, "g"))
		},
		"CommitTransaction": func() error { return f.CommitTransaction(ctx) },
		"AbortTransaction":  func() error { return f.AbortTransaction(ctx) },
	} {
		err := call()
		require.ErrorIs(t, err, aioproducer.ErrNotTransactional, name)
		var te *aioproducer.TxnError
		require.ErrorAs(t, err, &te, name)
		assert.Equal(t, name, te.Op)
	}
	fut, err := f.Produce(ctx, msg("t", "", "v"))
	require.NoError(t, err)
	_, err = fut.Wait(ctx)
	require.NoError(t, err)
	assert.Empty(t, f.Transactions())
	assert.False(t, f.History()[0].Committed || f.History()[0].Aborted)
}

// A message failed with one of librdkafka's classes of error reaches the caller classified as the
// real producer classifies it.
func TestFakeFailsMessagesWithLibrdkafkasClassesOfError(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.FailWith(func(m *aioproducer.Message) error {
		switch string(m.Key) {
		case "refused":
			return aioproducertest.NotPersistedError(kafka.ErrMsgTimedOut)
		case "unknown":
			return aioproducertest.OutcomeUnknownError(kafka.ErrMsgTimedOut)
		case "retriable":
			return aioproducertest.RetriableError(kafka.ErrNotEnoughReplicas)
		}
		return nil
	}))
	ctx := ctxFor(t, 10*time.Second)
	for _, c := range []struct {
		key                                string
		code                               kafka.ErrorCode
		outcomeUnknown, retriable, isFatal bool
	}{
		{key: "refused", code: kafka.ErrMsgTimedOut},                       // timed out before it was sent
		{key: "unknown", code: kafka.ErrMsgTimedOut, outcomeUnknown: true}, // sent, no answer
		// librdkafka's delivery report carries a code only: no message's outcome is retriable.
		{key: "retriable", code: kafka.ErrNotEnoughReplicas},
	} {
		fut, err := f.Produce(ctx, msg("t", c.key, "v"))
		require.NoError(t, err)
		_, err = fut.Wait(ctx)
		var de *aioproducer.DeliveryError
		require.ErrorAs(t, err, &de, c.key)
		assert.Equal(t, c.code, de.Err.Code(), c.key)
		assert.Equal(t, c.outcomeUnknown, aioproducer.IsOutcomeUnknown(err), "%s: %v", c.key, err)
		assert.Equal(t, c.retriable, aioproducer.IsRetriable(err), "%s: %v", c.key, err)
		assert.Equal(t, c.isFatal, aioproducer.IsFatal(err), "%s: %v", c.key, err)
	}
	h := f.History()
	require.Len(t, h, 3)
	for _, s := range h {
		assert.EqualValues(t, -1, s.Offset)
		var ke kafka.Error
		require.ErrorAs(t, s.Err, &ke, "the broker's record holds the kafka.Error")
	}
}

// A message failed with a fatal error fails the producer, as librdkafka's fatal error does: that
// message and every one outstanding fail with ErrFatal, and so does every later Produce.
func TestFakeFatalMessageErrorFailsTheProducer(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.ManualCompletion())
	ctx := ctxFor(t, 10*time.Second)
	first, err := f.Produce(ctx, msg("t", "", "first"))
	require.NoError(t, err)
	second, err := f.Produce(ctx, msg("t", "", "second"))
	require.NoError(t, err)

	require.True(t, f.FailNext(aioproducertest.FatalError(kafka.ErrOutOfOrderSequenceNumber)))
	_, err = first.Wait(ctx)
	assert.True(t, aioproducer.IsFatal(err), "%v", err)
	assert.ErrorIs(t, err, aioproducer.ErrFatal)
	var de *aioproducer.DeliveryError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, kafka.ErrOutOfOrderSequenceNumber, de.Err.Code())
	_, err = second.Wait(ctx)
	assert.ErrorIs(t, err, aioproducer.ErrFatal, "outstanding: failed too")
	_, err = f.Produce(ctx, msg("t", "", "late"))
	assert.ErrorIs(t, err, aioproducer.ErrFatal)
	assert.ErrorIs(t, f.Health(), aioproducer.ErrFatal)
}

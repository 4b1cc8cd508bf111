package aioproducertest

import (
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Transactional makes the Fake a transactional producer, as transactional.id makes a Producer one
// (MockProducer created with a transactional id). InitTransactions, BeginTransaction,
// SendOffsetsToTransaction, CommitTransaction and AbortTransaction then work as on the real producer
// (they are its own), in the same states with the same errors: Produce outside a transaction fails
// with aioproducer.ErrNotInTransaction; CommitTransaction waits for the outcome of every message of
// the transaction (with ManualCompletion, for the test to complete them) and refuses to commit after
// one failed (TxnRequiresAbort); AbortTransaction fails what is outstanding with an error wrapping
// aioproducer.ErrTransactionAborted (with ManualCompletion; without it every message is completed at
// once, so none is outstanding); Close during a transaction aborts it. Transactions records each
// transaction; FenceProducer and FailNextTxn make calls fail.
func Transactional() FakeOption { return func(c *fakeConfig) { c.txn = true } }

// Transaction is one transaction of a Transactional Fake, from a BeginTransaction that succeeded
// (MockProducer's history, transactionCommitted, transactionAborted and consumerGroupOffsetsHistory,
// per transaction).
type Transaction struct {
	// Messages are the messages the Fake's broker took in the transaction, in order, as History
	// gives them.
	Messages []Sent
	// Offsets is what each SendOffsetsToTransaction that succeeded in the transaction added, in order.
	Offsets []SentOffsets
	// Committed and Aborted say how the transaction ended: both false while it is open (or after a
	// CommitTransaction or AbortTransaction that failed).
	Committed, Aborted bool
}

// SentOffsets is what one SendOffsetsToTransaction added to a transaction.
type SentOffsets struct {
	// GroupID is the consumer group's id, read from the kafka.ConsumerGroupMetadata.
	GroupID string
	// Offsets are the offsets as given (the next offset to read, per partition), copied.
	Offsets []kafka.TopicPartition
}

// Transactions returns the transactions begun since the start or the last Clear, in order, the open
// one last. It first waits, like History, for the producer to hand over what it accepted. A Fake
// that is not Transactional has none.
func (f *Fake) Transactions() []Transaction {
	f.eng.Sync(syncTimeout)
	ts := f.eng.Transactions()
	out := make([]Transaction, len(ts))
	for i, t := range ts {
		out[i] = Transaction{Committed: t.Committed, Aborted: t.Aborted, Messages: make([]Sent, len(t.Sent))}
		for j, s := range t.Sent {
			out[i].Messages[j] = sentOf(s)
		}
		for _, o := range t.Offsets {
			out[i].Offsets = append(out[i].Offsets, SentOffsets{GroupID: o.Group, Offsets: o.Offsets})
		}
	}
	return out
}

// FenceProducer fences the Fake, as a newer producer with the same transactional.id does when it
// initializes its transactions (MockProducer's fenceProducer): the next transactional call, whichever
// it is, fails with librdkafka's fatal kafka.ErrFenced (IsFatal true, IsRetriable false), raised on
// the producer as librdkafka raises it. From then on the Fake is a producer after a fatal error: what
// is outstanding fails, every Produce and every transactional call fails with an error wrapping
// aioproducer.ErrFatal, and Close returns. It has no effect on a Fake that is not Transactional,
// whose transactional calls fail anyway.
func (f *Fake) FenceProducer() { f.eng.Fence() }

// FailNextTxn makes the next call of op fail with err (not nil); op is the transactional method's
// name, as aioproducer.TxnError.Op gives it: "InitTransactions", "BeginTransaction",
// "SendOffsetsToTransaction", "CommitTransaction" or "AbortTransaction" (any other panics). Each call
// queues one failure, for one call. It is MockProducer's initTransactionException,
// beginTransactionException, sendOffsetsException, commitTransactionException and
// abortTransactionException, for one call, with librdkafka's classes of errors:
//
//   - RetriableError: the producer makes the call again by itself (after 50 ms), as it does with
//     librdkafka, so the call succeeds unless its ctx ends first or more failures are queued;
//   - AbortableError: the call fails with TxnRequiresAbort true, and so do CommitTransaction and
//     SendOffsetsToTransaction until AbortTransaction (the next transaction works);
//   - FatalError: the call fails with IsFatal true and the producer is failed, as by FenceProducer;
//   - any other error: the call fails with it, no flag set.
//
// A call the producer refuses before it reaches its broker (a wrong state, a producer closed or
// failed) does not take the failure: the next one that does takes it.
func (f *Fake) FailNextTxn(op string, err error) {
	if err == nil {
		panic("aioproducertest: FailNextTxn(" + op + ", nil)")
	}
	if !f.eng.FailTxn(op, err) {
		panic(fmt.Sprintf("aioproducertest: FailNextTxn(%q): not a transactional call", op))
	}
}

package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// A transactional producer (its configuration sets transactional.id) writes its messages in
// transactions: InitTransactions once, then BeginTransaction, Produce..., and CommitTransaction or
// AbortTransaction, the calls and names of confluent-kafka-go's kafka.Producer. What the producer's own
// buffer adds, which the raw client has nothing to say about:
//
//   - CommitTransaction first hands every message of the transaction from the producer's buffer to
//     librdkafka and waits for each one's outcome; if one failed it does not commit, and returns an
//     error for which TxnRequiresAbort is true.
//   - AbortTransaction fails the transaction's messages still in the producer's buffer with
//     ErrTransactionAborted, never sending them, then aborts in librdkafka; every Future of the
//     transaction resolves before it returns.
//   - Produce outside a transaction fails at once with ErrNotInTransaction.
//   - Close during a transaction aborts it.
//   - A call whose ctx has already ended does nothing, as Produce does: it returns a *TxnError that
//     wraps ctx's error, for which IsRetriable is true, and leaves the transaction as it was (nothing
//     flushed, discarded, committed or aborted).

// txnState is where a transactional producer is in its transaction cycle.
type txnState int32

const (
	txnUninit     txnState = iota // InitTransactions has not succeeded yet
	txnReady                      // no transaction open
	txnOpen                       // BeginTransaction succeeded: Produce is allowed
	txnCommitting                 // CommitTransaction began: it may be called again, or AbortTransaction
	txnAborting                   // AbortTransaction began: it may be called again
)

func (s txnState) String() string {
	switch s {
	case txnUninit:
		return "not initialized (call InitTransactions)"
	case txnReady:
		return "not in a transaction (call BeginTransaction)"
	case txnOpen:
		return "in a transaction"
	case txnCommitting:
		return "committing a transaction"
	case txnAborting:
		return "aborting a transaction"
	}
	return fmt.Sprintf("txnState(%d)", int32(s))
}

// txnManager runs a transactional producer's transactional calls; the state they move through is in
// producerState, where the intake reads it. Its mutex serialises the calls (and Close's abort).
type txnManager struct {
	mu      sync.Mutex
	eng     engine
	exec    *executor
	disp    *dispatcher
	flushes *flushTracker
	flusher *flusher
	state   *producerState
	log     *slog.Logger
}

func newTxnManager(eng engine, exec *executor, disp *dispatcher, flushes *flushTracker, fl *flusher, state *producerState, log *slog.Logger) *txnManager {
	return &txnManager{eng: eng, exec: exec, disp: disp, flushes: flushes, flusher: fl, state: state, log: log}
}

type txnFailure struct {
	topic string
	err   error
}

// cannotCommit is why CommitTransaction refuses: the failure, which a *DeliveryError names the topic
// of.
func (f *txnFailure) cannotCommit() error {
	if de := (*DeliveryError)(nil); errors.As(f.err, &de) {
		return wrapf(f.err, "a message failed, so the transaction cannot commit")
	}
	return wrapf(f.err, "a message to %q failed, so the transaction cannot commit", f.topic)
}

// txnSliceMs is the longest one transactional librdkafka call blocks: the producer repeats a call that
// failed with a retriable error (a timeout, which librdkafka resumes, or a coordinator that is loading
// or busy) until it succeeds, fails otherwise, or the caller's ctx ends, so a ctx without a deadline
// can still stop the wait. Between two tries after other retriable errors it waits txnBackoff,
// doubling up to txnMaxBackoff.
const (
	txnSliceMs    = 500
	txnBackoff    = 50 * time.Millisecond
	txnMaxBackoff = time.Second
)

// errTxnAborted is the outcome of a message that AbortTransaction failed before it was sent.
var errTxnAborted = fmt.Errorf("%w: message not sent", ErrTransactionAborted)

// errNotInTxn is the error of a call that needs an open transaction while the producer is in st.
func errNotInTxn(st txnState) error {
	if st == txnReady {
		return fmt.Errorf("%w (call BeginTransaction)", ErrNotInTransaction)
	}
	return fmt.Errorf("%w: the producer is %v", ErrNotInTransaction, st)
}

// ctxEnded is the error of a transactional call op whose ctx has ended before it called librdkafka, or
// nil: the transaction is as it was, and the call may be made again.
func ctxEnded(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return &TxnError{Op: op, Err: err, retriable: true}
	}
	return nil
}

// set changes the state under every dispatcher shard's lock, so that a Produce either is accepted
// before the change (and counted in the Flush epochs that Commit and Abort wait for) or sees it.
func (t *txnManager) set(st txnState) {
	t.disp.lockAll()
	t.state.txn.Store(int32(st))
	t.disp.unlockAll()
}

// begin starts a transactional call op on t (nil: not a transactional producer): it checks that the
// producer is usable and takes the transaction lock, which the caller releases.
func (t *txnManager) begin(op string) error {
	if t == nil {
		return &TxnError{Op: op, Err: ErrNotTransactional}
	}
	if err := t.state.usable(); err != nil {
		return &TxnError{Op: op, Err: err, fatal: errors.Is(err, ErrFatal)}
	}
	t.mu.Lock()
	if err := t.state.usable(); err != nil {
		t.mu.Unlock()
		return &TxnError{Op: op, Err: err, fatal: errors.Is(err, ErrFatal)}
	}
	return nil
}

// run makes the transactional librdkafka call run, in slices of txnSliceMs (less if ctx's deadline is
// nearer), until it succeeds, fails with an error that is not retriable, or ctx ends.
func (t *txnManager) run(ctx context.Context, op string, call func(timeoutMs int) error) error {
	backoff := txnBackoff
	for {
		ms := txnSliceMs
		if dl, ok := ctx.Deadline(); ok {
			ms = max(1, min(ms, int(time.Until(dl).Milliseconds())))
		}
		err := call(ms)
		if err == nil {
			return nil
		}
		var te *TxnError
		if !errors.As(err, &te) {
			return &TxnError{Op: op, Err: err}
		}
		te.Op = op
		var ke kafka.Error
		if te.fatal && errors.As(te.Err, &ke) {
			t.exec.failFatal(ke)
		}
		if te.retriable && !te.fatal {
			if errors.As(te.Err, &ke) && ke.Code() == kafka.ErrTimedOut && ctx.Err() == nil {
				continue // librdkafka resumes the call
			}
			timer := time.NewTimer(backoff)
			select {
			case <-timer.C:
				backoff = min(2*backoff, txnMaxBackoff)
				continue
			case <-ctx.Done():
				timer.Stop()
			}
			te.ctxErr = ctx.Err()
		}
		return te
	}
}

// InitTransactions initializes the transactions of a producer whose configuration sets
// transactional.id (rd_kafka_init_transactions): it fences an earlier producer with the same id and
// completes or aborts the transaction that one left open. Call it once, before the first
// BeginTransaction. ctx bounds the wait; a call that ended with ctx may be made again.
func (p *Producer) InitTransactions(ctx context.Context) error {
	const op = "InitTransactions"
	t := p.txn
	if err := t.begin(op); err != nil {
		return err
	}
	defer t.mu.Unlock()
	if s := t.state.txnState(); s != txnUninit {
		return &TxnError{Op: op, Err: fmt.Errorf("already initialized: the producer is %v", s)}
	}
	if err := ctxEnded(ctx, op); err != nil {
		return err
	}
	if err := t.run(ctx, op, func(ms int) error { return t.eng.txn(rdk.TxnInit, ms) }); err != nil {
		return err
	}
	t.set(txnReady)
	return nil
}

// BeginTransaction opens a transaction: from now until CommitTransaction or AbortTransaction, Produce
// and its variants take messages, all of which belong to it.
func (p *Producer) BeginTransaction() error {
	const op = "BeginTransaction"
	t := p.txn
	if err := t.begin(op); err != nil {
		return err
	}
	defer t.mu.Unlock()
	if s := t.state.txnState(); s != txnReady {
		return &TxnError{Op: op, Err: fmt.Errorf("the producer is %v", s)}
	}
	if err := t.eng.txn(rdk.TxnBegin, 0); err != nil {
		var te *TxnError
		if errors.As(err, &te) {
			te.Op = op
		}
		return err
	}
	t.state.txnFailed.Store(nil)
	t.set(txnOpen)
	return nil
}

// SendOffsetsToTransaction adds the consumer offsets (the next offset to read, per partition) of the
// consumer group cgm to the open transaction, so that they are committed with it
// (rd_kafka_send_offsets_to_transaction): the step that makes consume-transform-produce exactly once.
// ctx bounds the wait.
func (p *Producer) SendOffsetsToTransaction(ctx context.Context, offsets []kafka.TopicPartition, cgm *kafka.ConsumerGroupMetadata) error {
	const op = "SendOffsetsToTransaction"
	t := p.txn
	if err := t.begin(op); err != nil {
		return err
	}
	defer t.mu.Unlock()
	if s := t.state.txnState(); s != txnOpen {
		return &TxnError{Op: op, Err: errNotInTxn(s)}
	}
	if err := ctxEnded(ctx, op); err != nil {
		return err
	}
	return t.run(ctx, op, func(ms int) error { return t.eng.sendOffsets(offsets, cgm, ms) })
}

// CommitTransaction commits the open transaction. It first hands every message of the transaction
// from the producer's buffer to librdkafka and waits for each one's outcome; if one failed, it does not
// commit and returns an error for which TxnRequiresAbort is true, naming that message's topic and error
// (the Futures, callbacks and channels tell the rest): call AbortTransaction. Otherwise it commits in
// librdkafka (rd_kafka_commit_transaction). If ctx ends first, or librdkafka's error is retriable, the
// call may be made again; an error for which TxnRequiresAbort is true asks for AbortTransaction; after
// a fatal one (IsFatal: for example fenced by a newer producer with the same transactional.id) the
// producer must be closed.
func (p *Producer) CommitTransaction(ctx context.Context) error {
	const op = "CommitTransaction"
	t := p.txn
	if err := t.begin(op); err != nil {
		return err
	}
	defer t.mu.Unlock()
	s := t.state.txnState()
	if s != txnOpen && s != txnCommitting {
		return &TxnError{Op: op, Err: errNotInTxn(s)}
	}
	if err := ctxEnded(ctx, op); err != nil {
		return err // still open (or committing): nothing flushed, nothing committed
	}
	if s == txnOpen {
		t.set(txnCommitting) // from now on Produce refuses: the transaction's messages are known
	}
	if err := flushAndWait(ctx, t.flushes, t.flusher); err != nil {
		return &TxnError{Op: op, Err: fmt.Errorf("waiting for the transaction's messages: %w", err), retriable: true}
	}
	if f := t.state.txnFailed.Load(); f != nil {
		return &TxnError{Op: op, Err: f.cannotCommit(), requiresAbort: true}
	}
	if err := ctxEnded(ctx, op); err != nil {
		return err // committing: the call may be made again
	}
	if err := t.run(ctx, op, func(ms int) error { return t.eng.txn(rdk.TxnCommit, ms) }); err != nil {
		return err
	}
	t.set(txnReady)
	return nil
}

// AbortTransaction aborts the transaction: the messages still in the producer's buffer fail with an
// error wrapping ErrTransactionAborted and are never sent; librdkafka aborts the rest
// (rd_kafka_abort_transaction: what it still queued fails with kafka.ErrPurgeQueue, wrapping
// ErrTransactionAborted too; what was already written stays invisible to read_committed consumers, even
// if its Future says delivered). Every Future of the transaction is resolved when it returns. If ctx
// ends first, call it again.
func (p *Producer) AbortTransaction(ctx context.Context) error {
	const op = "AbortTransaction"
	t := p.txn
	if err := t.begin(op); err != nil {
		return err
	}
	defer t.mu.Unlock()
	if s := t.state.txnState(); s != txnOpen && s != txnCommitting && s != txnAborting {
		return &TxnError{Op: op, Err: errNotInTxn(s)}
	}
	if err := ctxEnded(ctx, op); err != nil {
		return err // nothing discarded, nothing aborted
	}
	return t.abort(ctx, op)
}

// abort is AbortTransaction, with the transaction lock held.
func (t *txnManager) abort(ctx context.Context, op string) error {
	switch s := t.state.txnState(); s {
	case txnOpen, txnCommitting, txnAborting:
	default:
		return &TxnError{Op: op, Err: errNotInTxn(s)}
	}
	t.set(txnAborting)
	t.exec.discard(errTxnAborted) // what is not yet in librdkafka fails instead
	if err := t.run(ctx, op, func(ms int) error { return t.eng.txn(rdk.TxnAbort, ms) }); err != nil {
		return err
	}
	if err := t.flushes.wait(ctx); err != nil {
		return &TxnError{Op: op, Err: fmt.Errorf("waiting for the transaction's outcomes: %w", err), retriable: true}
	}
	t.exec.discard(nil)
	t.set(txnReady)
	return nil
}

// abortOpen aborts the transaction Close finds open, if any.
func (t *txnManager) abortOpen(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state.fatal.Load() != nil {
		return // librdkafka failed every message already; there is nothing to abort with
	}
	switch t.state.txnState() {
	case txnOpen, txnCommitting, txnAborting:
		if err := t.abort(ctx, "Close"); err != nil {
			t.log.Warn("aioproducer: Close could not abort the open transaction", "error", err.Error())
			return
		}
		t.log.Info("aioproducer: Close aborted the open transaction")
	}
}

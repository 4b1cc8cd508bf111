// Package fakeengine is the bridge between package aioproducer and package aioproducertest: it lets
// aioproducertest build a real *aioproducer.Producer over the in-memory engine (aioproducer's
// engine_mem.go) that never talks to librdkafka. Package aioproducer registers its constructor when it
// is initialized; being internal, this package can be imported only by the module's own packages, so
// users reach that engine only through aioproducertest.Fake.
//
// It cannot import aioproducer (aioproducer imports it), so its types take aioproducer's as type
// parameters: P is *aioproducer.Producer, O is aioproducer.Option, M is *aioproducer.Message. Both
// sides name them, and Open checks that they name the same ones as Register.
package fakeengine

import (
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Config is how the in-memory engine behaves.
type Config[M any] struct {
	// Auto completes every message as soon as the engine takes it; otherwise the test completes
	// them with Engine.Complete.
	Auto bool
	// Partitions returns the number of partitions of topic (at least 1).
	Partitions func(topic string) int32
	// Fail returns the error the message fails with when it is completed without an error of its
	// own, or nil to deliver it. Nil: every message is delivered.
	Fail func(msg M) error
	// Transactional makes the producer transactional, as transactional.id does.
	Transactional bool
}

// Sent is one message the engine took, in the order it took them.
type Sent[M any] struct {
	Msg       M
	Partition int32 // the partition it was assigned when it was taken
	Offset    int64 // its offset once delivered, else -1
	Err       error // the error it was completed with, as the engine reported it (before the producer wraps it)
	Done      bool  // completed (delivered or failed)
	Committed bool  // taken in a transaction that was committed
	Aborted   bool  // taken in a transaction that was aborted
}

// Txn is one transaction: from a BeginTransaction that succeeded to the commit or abort that ended
// it, if any.
type Txn[M any] struct {
	Sent      []Sent[M] // the messages taken in it, in order
	Offsets   []Offsets // what each SendOffsetsToTransaction that succeeded added, in order
	Committed bool
	Aborted   bool
}

// Offsets is what one SendOffsetsToTransaction added to a transaction.
type Offsets struct {
	Group   string // the consumer group's id
	Offsets []kafka.TopicPartition
}

// Class is what librdkafka says of an error besides its code.
type Class int8

const (
	NotPersisted      Class = iota + 1 // a message's: not in the log
	PossiblyPersisted                  // a message's: sent without an answer, it may be in the log
	Retriable                          // a transactional call's: it may be made again
	Abortable                          // a transactional call's: the transaction must be aborted
	Fatal                              // the producer cannot go on
)

// Fault is an error a test chose for a message or a transactional call, classified as librdkafka
// classifies its own. It unwraps to Err.
type Fault struct {
	Err   kafka.Error
	Class Class
}

func (f *Fault) Error() string { return f.Err.Error() }

// Unwrap returns Err.
func (f *Fault) Unwrap() error { return f.Err }

// Engine is the test's handle on the in-memory engine.
type Engine[M any] interface {
	// Sync waits, up to d, until the engine has taken every message the producer accepted so far (or
	// failed before reaching it), and reports whether it has.
	Sync(d time.Duration) bool
	// Complete completes the n oldest outstanding messages (n < 0: all of them), oldest first: each
	// fails with err if err is not nil, else as Config.Fail says. It returns how many it completed,
	// once the producer has their outcomes (futures resolved, callbacks queued).
	Complete(n int, err error) int
	// Outstanding is the number of messages taken and not yet completed.
	Outstanding() int
	// History returns every message taken since the start or the last Clear, in order.
	History() []Sent[M]
	// Clear forgets the history and the transactions that ended, and what the open one took so far;
	// outstanding messages stay outstanding.
	Clear()
	// Transactions returns the transactions begun since the start or the last Clear, in order.
	Transactions() []Txn[M]
	// FailTxn makes the next call of the transactional operation op (InitTransactions,
	// BeginTransaction, SendOffsetsToTransaction, CommitTransaction, AbortTransaction: the Producer's
	// method names) fail with err (a *Fault, or any error); each call queues one failure. It reports
	// whether op is one of those.
	FailTxn(op string, err error) bool
	// Fence makes the next transactional call, whichever it is, fail as a fenced producer's does.
	Fence()
}

// Opener builds a producer with options opts over a new in-memory engine configured by cfg, and
// returns both.
type Opener[P, O, M any] func(cfg Config[M], opts []O) (P, Engine[M], error)

// opener is the one Register stored: an Opener[P, O, M] for aioproducer's types.
var opener interface{ isOpener() }

// registered wraps an Opener so that opener can hold it whatever its type parameters.
type registered[P, O, M any] struct{ open Opener[P, O, M] }

func (registered[P, O, M]) isOpener() {}

// Register is called by package aioproducer, once, when it is initialized.
func Register[P, O, M any](open Opener[P, O, M]) { opener = registered[P, O, M]{open} }

// Open builds a producer over the in-memory engine with the Opener package aioproducer registered.
// It panics if P, O and M are not the types aioproducer registered it with: a bug in the module.
func Open[P, O, M any](cfg Config[M], opts []O) (P, Engine[M], error) {
	r, ok := opener.(registered[P, O, M])
	if !ok {
		panic(fmt.Sprintf("fakeengine: Open[%T] does not match what aioproducer registered (%T)", r, opener))
	}
	return r.open(cfg, opts)
}

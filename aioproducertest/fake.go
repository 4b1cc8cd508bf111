package aioproducertest

import (
	"context"
	"testing"
	"time"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/internal/fakeengine"
)

// Fake is a producer for unit tests, like the Java client's MockProducer: a real *aioproducer.Producer
// (embedded, so it satisfies aioproducer.Client and can back a TypedProducer) over an in-memory broker
// that never talks to librdkafka. Futures, callbacks, channels, Flush and Close behave exactly as they
// do with a cluster, because they are the Producer's own; only the broker is simulated.
//
// The Fake records every message the producer hands to its broker (Messages, History). By default it
// completes each at once, delivered at the next offset of its partition (offsets count from 0 per
// topic and partition), or failed with the error FailWith chooses. With ManualCompletion the test
// completes them itself, oldest first: CompleteNext, FailNext, Complete, CompleteAll, FailAll.
//
// Partitions are deterministic: an explicit partition (aioproducer.ExplicitPartition) is kept, a
// message with a non-empty key goes to the CRC-32 (IEEE) of its key modulo the topic's partitions
// (librdkafka's default partitioner, consistent_random, for keyed messages), and messages with a null
// or empty key, which that partitioner places at random, go round robin. A topic has the partitions
// that WithPartitions gives it, else 1: the count Partitions returns and an aioproducer.WithPartitioner
// (through WithProducerOptions) is given, whose choice is kept as an explicit partition. A message for a
// partition the topic does not have fails with kafka.ErrUnknownPartition when it is completed.
//
// With Transactional, the Fake is a transactional producer, like MockProducer created with a
// transactional id: the transactional methods work, with the real producer's states and errors, and
// the Fake records each transaction (Transactions). Without it they fail with ErrNotTransactional, as
// on a producer without transactional.id. FenceProducer and FailNextTxn fail transactional calls;
// NotPersistedError, OutcomeUnknownError, FatalError, RetriableError and AbortableError fail messages
// and calls as librdkafka classifies its own errors.
//
// What the Fake does not simulate: librdkafka's settings (the fake takes no ConfigMap), a full
// librdkafka queue, timeouts, and the broker's side of transactions (the isolation of what an abort
// left in the log, fencing by another producer: FenceProducer stands for it).
type Fake struct {
	*aioproducer.Producer
	eng    fakeengine.Engine[*aioproducer.Message]
	manual bool
}

// FakeOption configures a Fake.
type FakeOption func(*fakeConfig)

type fakeConfig struct {
	manual     bool
	txn        bool
	fail       func(*aioproducer.Message) error
	partitions map[string]int32
	opts       []aioproducer.Option
}

// ManualCompletion makes the test complete every message itself (CompleteNext, FailNext, Complete,
// CompleteAll, FailAll), like MockProducer with autoComplete false. Without it, messages are
// completed as soon as the producer hands them over.
func ManualCompletion() FakeOption { return func(c *fakeConfig) { c.manual = true } }

// FailWith chooses the outcome of each message: fn returns the error the message fails with, or nil
// to deliver it. It is called when the message is completed, automatically or by CompleteNext,
// Complete or CompleteAll (FailNext and FailAll give their own error), on the Fake's broker goroutine:
// it must not call the Fake. An error that is (or wraps) a kafka.Error reaches the caller as a
// *aioproducer.DeliveryError, as the real producer's do, and IsOutcomeUnknown answers by its code
// (kafka.ErrMsgTimedOut: true) as for librdkafka's; any other error reaches it unchanged. The errors
// NotPersistedError, OutcomeUnknownError and FatalError say more, as librdkafka's reports do: whether
// the message may be in the log, or a fatal error (FailNext and FailAll take them too). IsRetriable is
// false for every message's outcome, as with the real producer: librdkafka's delivery report carries
// an error code and no retriable flag, and librdkafka has retried what it could already.
func FailWith(fn func(*aioproducer.Message) error) FakeOption {
	return func(c *fakeConfig) { c.fail = fn }
}

// WithPartitions gives topic n partitions (n at least 1). A topic without one has 1.
func WithPartitions(topic string, n int) FakeOption {
	return func(c *fakeConfig) { c.partitions[topic] = int32(max(n, 1)) }
}

// WithProducerOptions passes options to the Producer inside the Fake (WithMaxBuffered, WithLogger,
// WithBatchSize, ...).
func WithProducerOptions(opts ...aioproducer.Option) FakeOption {
	return func(c *fakeConfig) { c.opts = append(c.opts, opts...) }
}

// NewFake returns a Fake, closed at the end of the test (t.Cleanup). An invalid producer option fails
// the test.
func NewFake(t testing.TB, opts ...FakeOption) *Fake {
	t.Helper()
	f, err := StartFake(opts...)
	if err != nil {
		t.Fatalf("aioproducertest: NewFake: %v", err)
	}
	t.Cleanup(func() {
		// In manual mode, what the test left outstanding is purged at once, as a Close whose ctx
		// ended purges it.
		ctx := context.Background()
		if f.manual {
			c, cancel := context.WithCancel(ctx)
			cancel()
			ctx = c
		}
		_ = f.Close(ctx)
	})
	return f
}

// StartFake is NewFake without a test: the caller closes the Fake. It fails with the Producer's
// *aioproducer.ConfigError for an invalid producer option.
func StartFake(opts ...FakeOption) (*Fake, error) {
	c := fakeConfig{partitions: map[string]int32{}}
	for _, o := range opts {
		o(&c)
	}
	fc := fakeengine.Config[*aioproducer.Message]{
		Auto: !c.manual,
		Partitions: func(topic string) int32 {
			if n, ok := c.partitions[topic]; ok {
				return n
			}
			return 1
		},
		Fail:          c.fail,
		Transactional: c.txn,
	}
	p, eng, err := fakeengine.Open[*aioproducer.Producer](fc, c.opts)
	if err != nil {
		return nil, err
	}
	return &Fake{Producer: p, eng: eng, manual: c.manual}, nil
}

// syncTimeout bounds how long the Fake waits for the producer to hand its broker what it accepted.
const syncTimeout = 10 * time.Second

// Sent is a message the Fake's broker took, and what became of it.
type Sent struct {
	Message *aioproducer.Message
	// Partition is the partition the message was assigned when the broker took it.
	Partition int32
	// Offset is its offset once delivered, -1 before and when it failed.
	Offset int64
	// Err is the error it was completed with, as the broker gave it (the caller sees it wrapped in a
	// *aioproducer.DeliveryError when it is a kafka.Error); nil when delivered or not completed.
	Err error
	// Completed says whether it has its outcome.
	Completed bool
	// Committed and Aborted say, on a Transactional Fake, how the transaction the message was sent in
	// ended: both false while it is open, and on a Fake that is not transactional.
	Committed, Aborted bool
}

// History returns every message the Fake's broker took since the start or the last Clear, in the
// order it took them (produce order per topic), with their partition and outcome. It first waits
// until the producer has handed over every message it accepted before the call.
func (f *Fake) History() []Sent {
	f.eng.Sync(syncTimeout)
	h := f.eng.History()
	out := make([]Sent, len(h))
	for i, s := range h {
		out[i] = sentOf(s)
	}
	return out
}

func sentOf(s fakeengine.Sent[*aioproducer.Message]) Sent {
	return Sent{Message: s.Msg, Partition: s.Partition, Offset: s.Offset, Err: s.Err, Completed: s.Done,
		Committed: s.Committed, Aborted: s.Aborted}
}

// Messages returns the messages of History.
func (f *Fake) Messages() []*aioproducer.Message {
	h := f.History()
	out := make([]*aioproducer.Message, len(h))
	for i, s := range h {
		out[i] = s.Message
	}
	return out
}

// Clear forgets the history (MockProducer's clear), and the transactions that ended (Transactions):
// an open one stays, with only what it takes from then on. Outstanding messages stay outstanding.
func (f *Fake) Clear() {
	f.eng.Sync(syncTimeout)
	f.eng.Clear()
}

// Outstanding returns how many messages wait for the test to complete them (always 0 soon after
// they are produced without ManualCompletion). It first waits, like History, for the producer to hand
// over what it accepted.
func (f *Fake) Outstanding() int {
	f.eng.Sync(syncTimeout)
	return f.eng.Outstanding()
}

// CompleteNext completes the oldest outstanding message, delivered or failed as FailWith says, and
// reports whether there was one. Like every completing method it returns once the producer has the
// outcome: the message's Future is resolved; its callback or channel send runs on the producer's
// callback goroutine, as with a cluster, and may not have run yet (Flush waits for it).
func (f *Fake) CompleteNext() bool { return f.Complete(1) == 1 }

// FailNext fails the oldest outstanding message with err (not nil) and reports whether there was one.
func (f *Fake) FailNext(err error) bool {
	if err == nil {
		panic("aioproducertest: FailNext(nil): to deliver the message, call CompleteNext")
	}
	return f.eng.Complete(1, err) == 1
}

// Complete completes the n oldest outstanding messages, oldest first, delivered or failed as FailWith
// says, and returns how many there were (at most n).
func (f *Fake) Complete(n int) int {
	if n <= 0 {
		return 0
	}
	return f.eng.Complete(n, nil)
}

// CompleteAll completes every outstanding message, as FailWith says, and returns how many.
func (f *Fake) CompleteAll() int { return f.eng.Complete(-1, nil) }

// FailAll fails every outstanding message with err (not nil) and returns how many.
func (f *Fake) FailAll(err error) int {
	if err == nil {
		panic("aioproducertest: FailAll(nil): to deliver the messages, call CompleteAll")
	}
	return f.eng.Complete(-1, err)
}

var _ aioproducer.Client = (*Fake)(nil)

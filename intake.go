package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/limiter"
)

// futureBlock is how many Futures Produce allocates at once: one allocation per block instead of one
// per message. The cost is that a Future kept reachable keeps its block reachable (see Future).
const futureBlock = 16

// intake is where Produce and its variants accept a message: it checks it, waits for room in the
// buffer (WithMaxBuffered; the limiter serves the callers that wait in the order they came), makes its
// record and hands it to the dispatcher. Nothing else bounds the way in: a caller waits for room only,
// never for a goroutine of the producer.
type intake struct {
	limit    *limiter.Limiter
	stuck    *stuckBudget
	eng      engine      // stuck, partition counts
	part     Partitioner // WithPartitioner, or nil
	records  *pool[record]
	dls      *deadlines
	disp     *dispatcher
	state    *producerState
	maxMsg   int64 // message.max.bytes
	maxBytes int64 // WithMaxBuffered's bytes
	maxMsgs  int   // WithMaxBuffered's messages
	runMsgs  int   // ProduceBatch takes at most this many at once (WithBatchSize)
}

func newIntake(cfg *config, limit *limiter.Limiter, stuck *stuckBudget, eng engine, records *pool[record], dls *deadlines,
	disp *dispatcher, state *producerState) *intake {
	return &intake{
		limit: limit, stuck: stuck, eng: eng, part: cfg.partitioner, records: records, dls: dls, disp: disp, state: state,
		maxMsg: cfg.kafka.messageMaxBytes, maxBytes: cfg.maxBytes, maxMsgs: cfg.maxMsgs, runMsgs: cfg.batchSize,
	}
}

// check validates m and checks that it can ever fit the buffer; it returns its size.
func (in *intake) check(m *Message) (int64, error) {
	size, err := validateMessage(m)
	if err != nil {
		return 0, err
	}
	if size > in.maxMsg {
		return 0, fmt.Errorf("%w: topic %q: %d bytes of key, value and headers is more than message.max.bytes (%d)",
			ErrInvalidMessage, m.Topic, size, in.maxMsg)
	}
	if size > in.maxBytes {
		return 0, fmt.Errorf("%w: topic %q: %d bytes is more than the buffer holds (%d bytes: WithMaxBuffered, or queue.buffering.max.kbytes if smaller)",
			ErrInvalidMessage, m.Topic, size, in.maxBytes)
	}
	return size, nil
}

// accept validates msg, takes its room in the buffer (waiting for it with block, ctx bounding the wait;
// else failing with ErrBufferFull) and returns its record.
func (in *intake) accept(ctx context.Context, msg *Message, block bool) (*record, error) {
	size, err := in.check(msg)
	if err != nil {
		return nil, err
	}
	if err := in.state.takes(); err != nil {
		return nil, err
	}
	part, chosen, err := in.place(ctx, msg, block)
	if err != nil {
		return nil, err
	}
	target := part
	if !chosen {
		target, _ = msg.Partition.ID()
	}
	// A message for a partition that stopped making progress takes a place in the stuck budget first,
	// waiting outside the buffer's queue, so that it holds up no message for a healthy partition.
	stuck := false
	if in.eng.stuck(msg, target) {
		if stuck, err = in.stuck.acquire(ctx, block, size, in.eng, msg, target); err != nil {
			return nil, err
		}
	}
	if block {
		err = in.limit.Acquire(ctx, 1, size)
	} else {
		var ok bool
		if ok, err = in.limit.TryAcquire(1, size); err == nil && !ok {
			err = ErrBufferFull
		}
	}
	if err != nil {
		if stuck {
			in.stuck.release(1, size)
		}
		return nil, err
	}
	var now time.Time
	if msg.Timestamp.IsZero() || in.dls.on() {
		now = time.Now()
	}
	rec := in.newRecord(msg, size, now)
	rec.stuck = stuck
	rec.chosen, rec.part = chosen, part
	return rec, nil
}

// newRecord returns msg's record, accepted at now: stamped with it unless msg has its own timestamp,
// and its deadline counted from it.
func (in *intake) newRecord(msg *Message, size int64, now time.Time) *record {
	rec := in.records.get()
	rec.msg, rec.size = msg, size
	rec.deadline = in.dls.at(now)
	ts := msg.Timestamp
	if ts.IsZero() {
		ts = now
	}
	// Kafka keeps milliseconds: the Delivery reports what the log holds.
	rec.ts = time.UnixMilli(ts.UnixMilli())
	return rec
}

// handOver hands accepted records to the dispatcher, in order; with withFuture the first gets a Future,
// returned. If the producer takes no messages any more (it closed or failed since they were accepted,
// or the transaction ended), it undoes the accept of those not handed over and returns why.
func (in *intake) handOver(recs []*record, withFuture bool) (*Future, error) {
	n, fut, err := in.disp.add(recs, withFuture)
	if err != nil {
		in.undo(recs[n:])
	}
	return fut, err
}

// undo gives back the room and the records of messages that were not accepted after all.
func (in *intake) undo(recs []*record) {
	var size int64
	for _, r := range recs {
		size += r.size
		if r.stuck {
			in.stuck.release(1, r.size)
		}
		r.reset()
		in.records.put(r)
	}
	in.limit.Release(int64(len(recs)), size)
}

// acceptBatch is ProduceBatch's: it checks every message first, then accepts them in order, as many at
// once as fit in one run (runMsgs) and in the buffer. If ctx ends or the producer stops taking messages
// part way, it returns the Futures of those accepted so far with the error.
func (in *intake) acceptBatch(ctx context.Context, msgs []*Message, called time.Time) ([]*Future, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sizes := make([]int64, len(msgs))
	var parts []int32 // the Partitioner's choices, -1 for none
	if in.part != nil {
		parts = make([]int32, len(msgs))
	}
	for i, m := range msgs {
		size, err := in.check(m)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		sizes[i] = size
		if parts != nil {
			p, chosen, err := in.place(ctx, m, true)
			if err != nil {
				return nil, fmt.Errorf("message %d: %w", i, err)
			}
			parts[i] = -1
			if chosen {
				parts[i] = p
			}
		}
	}
	futs := make([]Future, len(msgs))
	out := make([]*Future, 0, len(msgs))
	recs := make([]*record, 0, min(len(msgs), in.runMsgs, in.maxMsgs))
	for start := 0; start < len(msgs); {
		// Take as many as fit in one run and in the buffer at once.
		end, total := start, int64(0)
		for end < len(msgs) && end-start < in.runMsgs && end-start < in.maxMsgs && total+sizes[end] <= in.maxBytes {
			total += sizes[end]
			end++
		}
		if err := in.state.takes(); err != nil {
			return out, err
		}
		if err := in.limit.Acquire(ctx, int64(end-start), total); err != nil {
			return out, err
		}
		recs = recs[:0]
		now := time.Now() // one timestamp for the run: it was produced at once
		for i := start; i < end; i++ {
			rec := in.newRecord(msgs[i], sizes[i], now)
			rec.start = called
			if parts != nil && parts[i] >= 0 {
				rec.chosen, rec.part = true, parts[i]
			}
			futs[i].msg = msgs[i]
			rec.fut = &futs[i]
			recs = append(recs, rec)
		}
		if _, err := in.handOver(recs, false); err != nil {
			return out, err
		}
		for i := start; i < end; i++ {
			out = append(out, &futs[i])
		}
		start = end
	}
	return out, nil
}

// stuckBudget bounds what the messages for partitions marked unavailable (partitionHealth) may hold of
// the buffer: half of WithMaxBuffered, so that a broker that stopped answering cannot take all of it,
// and Produce for the healthy partitions goes on. A message produced to such a partition by key or
// explicitly (or unkeyed, to a topic whose every partition is marked) waits for a place here, outside
// the buffer's queue; TryProduce fails with ErrBufferFull. Its place is given back with its outcome.
// The bound counts what the marked partitions hold, including what they took before they were marked
// (engine.stuckAdmit), and what the budget let through, whichever is more.
type stuckBudget struct {
	maxMsgs  int64
	maxBytes int64
	msgs     atomic.Int64
	bytes    atomic.Int64
	freed    notifier
}

// stuckRecheck is how often a message waiting for the stuck budget looks whether its partition is
// still marked (a mark is lifted by the partition's next report, which does not wake it).
const stuckRecheck = 50 * time.Millisecond

func newStuckBudget(maxMsgs int, maxBytes int64) *stuckBudget {
	return &stuckBudget{maxMsgs: max(int64(maxMsgs)/2, 1), maxBytes: max(maxBytes/2, 1)}
}

// acquire takes a place of size bytes for msg, going to partition part (kafka.PartitionAny: not fixed
// yet), which eng says is stuck, waiting for one with block (ctx bounds the wait) or failing with
// ErrBufferFull. It reports whether it took one: not when msg's partition stopped being stuck meanwhile.
func (b *stuckBudget) acquire(ctx context.Context, block bool, size int64, eng engine, msg *Message, part int32) (bool, error) {
	for {
		gen := b.freed.generation()
		if n, s := b.msgs.Add(1), b.bytes.Add(size); n <= b.maxMsgs && (s <= b.maxBytes || n == 1) {
			if eng.stuckAdmit(b.maxMsgs) {
				return true, nil
			}
		}
		b.msgs.Add(-1)
		b.bytes.Add(-size)
		if !block {
			return false, ErrBufferFull
		}
		t := time.NewTimer(stuckRecheck)
		select {
		case <-b.freed.since(gen):
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		}
		t.Stop()
		if !eng.stuck(msg, part) {
			return false, nil
		}
	}
}

// release gives back n places of size bytes in all.
func (b *stuckBudget) release(n, size int64) {
	b.msgs.Add(-n)
	b.bytes.Add(-size)
	b.freed.notify()
}

// producerState is what decides whether the producer takes a message, and what a failure is
// attributed to: closed, a fatal error, a Close that gave up, a transactional producer's state. The
// intake reads it under a dispatcher shard's lock; Close and the transactional calls change it under
// every shard's lock (dispatcher.lockAll), the fatal error without (a record handed over after it fails
// in the executor).
type producerState struct {
	closed   atomic.Bool
	fatal    atomic.Pointer[fatalError]
	closeErr atomic.Pointer[error] // the error messages failed by an aborted Close carry
	purging  atomic.Int32          // Purge calls in progress: what librdkafka purged from its queue was theirs
	brokers  *brokerState

	transactional bool
	txn           atomic.Int32 // a txnState
	// txnFailed is the first failure of a message of the open transaction.
	txnFailed atomic.Pointer[txnFailure]
}

func newProducerState(brokers *brokerState, transactional bool) *producerState {
	return &producerState{brokers: brokers, transactional: transactional}
}

// usable returns why the producer takes no more messages, or nil.
func (s *producerState) usable() error {
	if f := s.fatal.Load(); f != nil {
		return f
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// takes returns why the producer takes no message now, or nil: usable, and for a transactional
// producer, in a transaction.
func (s *producerState) takes() error {
	if err := s.usable(); err != nil {
		return err
	}
	return s.txnNotOpen()
}

// takesLocked is takes for a caller holding a shard's lock, where closed and the transaction state are
// decided.
func (s *producerState) takesLocked() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if f := s.fatal.Load(); f != nil {
		return f
	}
	return s.txnNotOpen()
}

// closing reports whether Close has begun.
func (s *producerState) closing() bool { return s.closed.Load() }

func (s *producerState) txnState() txnState { return txnState(s.txn.Load()) }

// txnNotOpen is why a transactional producer takes no message now, or nil.
func (s *producerState) txnNotOpen() error {
	if !s.transactional {
		return nil
	}
	if st := s.txnState(); st != txnOpen {
		return errNotInTxn(st)
	}
	return nil
}

// onFailure records a message's failure, if it is the open transaction's first.
func (s *producerState) onFailure(topic string, err error) {
	if s.transactional {
		s.txnFailed.CompareAndSwap(nil, &txnFailure{topic: topic, err: err})
	}
}

// errPurgedInFlight is the cause of a message that an aborted Close purged while a request carrying it was
// in flight.
var errPurgedInFlight = errors.New("purged in flight when Close's context ended: it may be in the log")

// errPurgedCause is the cause of a message that Purge failed: never handed to librdkafka, or purged
// from its queue.
var errPurgedCause = fmt.Errorf("%w by Purge", ErrPurged)

// cause returns what to attach to a message's failure, if the producer knows more than librdkafka's
// error: the fatal error; Close's abort for a message it purged; the unreachable brokers for a message
// that timed out while all were down.
func (s *producerState) cause(err error) error {
	if f := s.fatal.Load(); f != nil {
		return f
	}
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return nil
	}
	if s.transactional && s.txnState() == txnAborting && (ke.Code() == kafka.ErrPurgeQueue || ke.Code() == kafka.ErrPurgeInflight) {
		return ErrTransactionAborted
	}
	switch ke.Code() {
	case kafka.ErrPurgeQueue:
		if ce := s.closeErr.Load(); ce != nil {
			return *ce
		}
		if s.purging.Load() > 0 {
			return errPurgedCause
		}
		if err := s.brokers.authFailed(); err != nil {
			return err
		}
	case kafka.ErrPurgeInflight:
		if s.closeErr.Load() != nil {
			return errPurgedInFlight
		}
	case kafka.ErrMsgTimedOut:
		if err := s.brokers.authFailed(); err != nil {
			return err
		}
		return s.brokers.unreachable()
	}
	return nil
}

package eos

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
)

// transact runs one batch's transaction. It returns nil when the batch was committed, or aborted
// and rewound to be done again.
func (s *Session) transact(ctx context.Context, batch []*kafka.Message) error {
	if err := s.p.BeginTransaction(); err != nil {
		return stopped("BeginTransaction", err)
	}
	s.inTxn = true
	out := &emitter{p: s.p}
	err := s.fn(ctx, batch, out)
	out.close()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // Close aborts
		}
		if aerr := s.abort(ctx, batch, "the transform failed", err); aerr != nil {
			return aerr
		}
		return &TransformError{Err: err, Offsets: firstOffsets(batch)}
	}
	if s.c.AssignmentLost() {
		return s.abort(ctx, batch, "the consumer lost its assignment", nil)
	}
	cgm, err := s.c.GetConsumerGroupMetadata()
	if err != nil {
		return fmt.Errorf("aioproducer/eos: the consumer's group metadata: %w", err)
	}
	offsets := nextOffsets(batch)
	op := "SendOffsetsToTransaction"
	err = s.retry(ctx, op, func() error { return s.p.SendOffsetsToTransaction(ctx, offsets, cgm) })
	if err == nil {
		op = "CommitTransaction"
		err = s.retry(ctx, op, func() error { return s.p.CommitTransaction(ctx) })
	}
	switch {
	case err == nil:
		s.inTxn = false
		s.log.Debug("aioproducer/eos: committed", "messages", len(batch), "offsets", describe(offsets))
		return nil
	case aioproducer.TxnRequiresAbort(err):
		return s.abort(ctx, batch, op+" requires an abort", err)
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return stopped(op, err)
	}
}

// abort aborts the open transaction and rewinds the batch's partitions to the group's committed
// offsets, so that the batch is read again.
func (s *Session) abort(ctx context.Context, batch []*kafka.Message, why string, cause error) error {
	attrs := []any{"why", why, "messages", len(batch), "offsets", describe(firstOffsets(batch))}
	if cause != nil {
		attrs = append(attrs, "error", cause.Error())
	}
	s.log.Warn("aioproducer/eos: aborting the transaction", attrs...)
	if err := s.retry(ctx, "AbortTransaction", func() error { return s.p.AbortTransaction(ctx) }); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return stopped("AbortTransaction", err)
	}
	s.inTxn = false
	s.rewind(ctx, batch)
	return nil
}

// rewind seeks the batch's partitions to the group's committed offsets, or where the batch began in
// those that have none (or when the group cannot say). A partition no longer assigned is left alone:
// its next owner begins at the committed offset.
func (s *Session) rewind(ctx context.Context, batch []*kafka.Message) {
	seek := firstOffsets(batch)
	ms := 10_000
	if dl, ok := ctx.Deadline(); ok {
		ms = max(1, min(ms, int(time.Until(dl).Milliseconds())))
	}
	committed, err := s.c.Committed(seek, ms)
	if err != nil {
		s.log.Warn("aioproducer/eos: the group's committed offsets: rewinding to the batch's first ones", "error", err.Error())
	} else {
		for i, tp := range committed {
			if tp.Error == nil && tp.Offset >= 0 {
				seek[i].Offset = tp.Offset
			}
		}
	}
	res, err := s.c.SeekPartitions(seek)
	if err != nil {
		s.log.Warn("aioproducer/eos: rewinding", "offsets", describe(seek), "error", err.Error())
		return
	}
	for _, tp := range res {
		if tp.Error != nil {
			s.log.Warn("aioproducer/eos: rewinding", "partition", tp.String(), "error", tp.Error.Error())
		}
	}
}

// retry calls call again while it fails with a retriable error (the producer has already retried
// it for a while), backing off from 100 ms to 5 s, until ctx ends.
func (s *Session) retry(ctx context.Context, op string, call func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := call()
		if err == nil || !aioproducer.IsRetriable(err) || ctx.Err() != nil {
			return err
		}
		s.log.Warn("aioproducer/eos: retrying", "op", op, "in", backoff, "error", err.Error())
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// stopped is the error of a transactional call that stops the session: it wraps aioproducer.ErrFatal
// when the error is fatal (fenced, for example).
func stopped(op string, err error) error {
	if aioproducer.IsFatal(err) && !errors.Is(err, aioproducer.ErrFatal) {
		return fmt.Errorf("aioproducer/eos: %s: %w: %w", op, aioproducer.ErrFatal, err)
	}
	return fmt.Errorf("aioproducer/eos: %s: %w", op, err)
}

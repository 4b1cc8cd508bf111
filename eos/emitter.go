package eos

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer"
)

// Transform turns a batch of input messages, in the order of each partition, into output messages it
// hands to out, in the session's open transaction. ctx is Run's, cancelled by Close. An error aborts
// the transaction and Run returns it in a *TransformError. A message that can never be transformed
// (a poison pill) is the transform's to skip: emit nothing for it, or emit it to a dead-letter topic,
// and return nil. msgs is the transform's to keep.
type Transform func(ctx context.Context, msgs []*kafka.Message, out Emitter) error

// Emitter takes the output messages of the open transaction.
type Emitter interface {
	// Emit produces msg in the open transaction (aioproducer.Producer.Produce). Its delivery is
	// checked before the commit: if it fails, the transaction is aborted and the batch done again. An
	// error means msg was not accepted (invalid, ctx ended, the producer failed); return it from the
	// transform. Emit may be called from several goroutines, until the transform returns: then it
	// waits for the calls in progress, and later ones fail.
	Emit(ctx context.Context, msg *aioproducer.Message) error
}

// errEmitAfterReturn is Emit's error once the transform it was given to has returned.
var errEmitAfterReturn = errors.New("aioproducer/eos: Emit after the transform returned")

// emitter is the Emitter of one transform call: closed when the call returns, so that nothing a
// goroutine of the transform emits later lands in the next transaction.
type emitter struct {
	p      *aioproducer.Producer
	mu     sync.RWMutex // held for reading by each Emit, for writing to close
	closed bool
}

func (e *emitter) Emit(ctx context.Context, msg *aioproducer.Message) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return errEmitAfterReturn
	}
	_, err := e.p.Produce(ctx, msg)
	return err
}

// close waits for the Emit calls in progress and fails the later ones.
func (e *emitter) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
}

// TransformError is what Run returns when the transform failed. The transaction was aborted: nothing
// of the batch was committed.
type TransformError struct {
	Err error
	// Offsets is the batch's first offset in each of its partitions, where the group's next owner of
	// each partition begins.
	Offsets []kafka.TopicPartition
}

func (e *TransformError) Error() string {
	return fmt.Sprintf("aioproducer/eos: the transform failed on a batch from %s; its transaction was aborted: %v",
		describe(e.Offsets), e.Err)
}

// Unwrap returns the transform's error.
func (e *TransformError) Unwrap() error { return e.Err }

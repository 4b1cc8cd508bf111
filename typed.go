package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// TypedMessage is one record to produce with a TypedProducer: Key and Value are serialized by the
// producer's serializers, the rest is as in Message.
//
// A null key or value is what its serializer makes of the key or value: a serializer that returns nil
// makes it null. With the built-in serializers, use a type that can be nil (a []byte, a pointer,
// Nullable's *T) for a key or value that may be null.
type TypedMessage[K, V any] struct {
	// Topic is required: see Message.Topic.
	Topic string
	// Key is the record key, before serialization.
	Key K
	// Value is the record value, before serialization.
	Value V
	// Headers are sent in order, before the headers the serializers add. The producer reads them
	// until the message's outcome is known: do not modify them before then.
	Headers []Header
	// Timestamp is the record's CreateTime: see Message.Timestamp.
	Timestamp time.Time
	// Partition pins the message to one partition: see Message.Partition.
	Partition Partition
}

// TypedResult is what a TypedProducer's ProduceChan sends: the typed message, and its delivery or the
// error it failed with.
type TypedResult[K, V any] struct {
	Message  *TypedMessage[K, V]
	Delivery Delivery
	Err      error
}

// TypedProducer produces TypedMessages: it serializes each key and value with its serializers, in the
// caller's goroutine, and hands the resulting Message to a Producer. Everything else (buffering,
// backpressure, futures, callbacks, ordering, exactly one outcome per accepted message, transactions)
// is the Producer's. It is safe for concurrent use.
//
// A TypedProducer is a view of its Producer and holds nothing of its own: several TypedProducers, for
// different types, may share one Producer (and its librdkafka connections), and the Producer stays
// usable directly. Closing either closes the Producer, for every view of it.
type TypedProducer[K, V any] struct {
	p      *Producer
	keys   Serializer[K]
	values Serializer[V]
}

// NewTyped returns a TypedProducer that serializes keys with keys and values with values and produces
// through p. It panics if any of them is nil: that is a programming error.
func NewTyped[K, V any](p *Producer, keys Serializer[K], values Serializer[V]) *TypedProducer[K, V] {
	switch {
	case p == nil:
		panic("aioproducer: NewTyped called with a nil *Producer")
	case keys == nil:
		panic("aioproducer: NewTyped called with a nil key Serializer")
	case values == nil:
		panic("aioproducer: NewTyped called with a nil value Serializer")
	}
	return &TypedProducer[K, V]{p: p, keys: keys, values: values}
}

// Producer returns the Producer tp produces through.
func (tp *TypedProducer[K, V]) Producer() *Producer { return tp.p }

// serialize checks tm as Produce would, then serializes its key and value and returns the Message to
// produce. The checks come first, so that an invalid message or a closed producer costs no
// serialization (and no schema registration).
func (tp *TypedProducer[K, V]) serialize(tm *TypedMessage[K, V]) (*Message, error) {
	if tm == nil {
		return nil, fmt.Errorf("%w: nil message", ErrInvalidMessage)
	}
	msg := &Message{Topic: tm.Topic, Headers: tm.Headers, Timestamp: tm.Timestamp, Partition: tm.Partition}
	if _, err := validateMessage(msg); err != nil {
		return nil, err
	}
	if err := tp.p.state.takes(); err != nil { // closed, failed, or a transactional producer outside a transaction
		return nil, err
	}
	// Clip, so that a serializer's append copies instead of writing into the caller's array.
	sc := &SerializationContext{Topic: tm.Topic, Field: FieldKey, Headers: slices.Clip(tm.Headers)}
	key, err := tp.keys.Serialize(sc, tm.Key)
	if err != nil {
		return nil, &SerializationError{Field: FieldKey, Topic: tm.Topic, Err: err}
	}
	sc.Field = FieldValue
	value, err := tp.values.Serialize(sc, tm.Value)
	if err != nil {
		return nil, &SerializationError{Field: FieldValue, Topic: tm.Topic, Err: err}
	}
	msg.Key, msg.Value, msg.Headers = key, value, sc.Headers
	return msg, nil
}

// Produce serializes tm's key and value, in the calling goroutine, and produces the result as
// Producer.Produce does. A serializer's failure fails this call alone with a *SerializationError:
// nothing is accepted and no outcome follows (in a transaction, the transaction is not affected). The
// other errors are Producer.Produce's; an invalid message, a closed producer, or a transactional
// producer outside a transaction (ErrNotInTransaction) fails before anything is serialized.
//
// ctx bounds the wait for buffer room, as in Producer.Produce, not the serialization: a serializer that
// asks a schema registry is bounded by its client's own timeout.
//
// The Future's Message is the *Message the producer built: the serialized key and value, and the
// headers with those the serializers added.
func (tp *TypedProducer[K, V]) Produce(ctx context.Context, tm *TypedMessage[K, V]) (*Future, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	msg, err := tp.serialize(tm)
	if err != nil {
		return nil, err
	}
	return tp.p.Produce(ctx, msg)
}

// TryProduce is Produce that never blocks on the buffer: when the WithMaxBuffered limits are reached it
// fails with ErrBufferFull, after serializing tm. Serialization itself runs in the calling goroutine,
// as in Produce.
func (tp *TypedProducer[K, V]) TryProduce(tm *TypedMessage[K, V]) (*Future, error) {
	msg, err := tp.serialize(tm)
	if err != nil {
		return nil, err
	}
	return tp.p.TryProduce(msg)
}

// ProduceFunc is Produce with a callback: see Producer.ProduceFunc. fn must not block.
func (tp *TypedProducer[K, V]) ProduceFunc(ctx context.Context, tm *TypedMessage[K, V], fn func(Delivery, error)) error {
	if fn == nil {
		return errors.New("aioproducer: ProduceFunc called with a nil callback: pass the func that takes the outcome")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	msg, err := tp.serialize(tm)
	if err != nil {
		return err
	}
	return tp.p.ProduceFunc(ctx, msg, fn)
}

// ProduceChan is Produce that sends the outcome, as a TypedResult naming tm, on ch, from the producer's
// callback goroutine: see Producer.ProduceChan. Give ch room or read it promptly.
func (tp *TypedProducer[K, V]) ProduceChan(ctx context.Context, tm *TypedMessage[K, V], ch chan<- TypedResult[K, V]) error {
	if ch == nil {
		return errors.New("aioproducer: ProduceChan called with a nil channel: pass the channel that takes the TypedResult")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	msg, err := tp.serialize(tm)
	if err != nil {
		return err
	}
	return tp.p.ProduceFunc(ctx, msg, func(d Delivery, err error) {
		ch <- TypedResult[K, V]{Message: tm, Delivery: d, Err: err}
	})
}

// ProduceBatch serializes every message of tms, in order and in the calling goroutine, then produces
// them as Producer.ProduceBatch does. If a message is invalid or cannot be serialized, none is
// accepted, and the error names its index (and is a *SerializationError for a serializer's failure).
// Otherwise the Futures and errors are Producer.ProduceBatch's: on an error part way, the Futures of
// the messages accepted so far.
func (tp *TypedProducer[K, V]) ProduceBatch(ctx context.Context, tms []*TypedMessage[K, V]) ([]*Future, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	msgs := make([]*Message, len(tms))
	for i, tm := range tms {
		msg, err := tp.serialize(tm)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		msgs[i] = msg
	}
	return tp.p.ProduceBatch(ctx, msgs)
}

// Flush is the Producer's Flush: it waits for the outcome of every message accepted before it, typed
// or not, by any view of the Producer.
func (tp *TypedProducer[K, V]) Flush(ctx context.Context) error { return tp.p.Flush(ctx) }

// Purge fails every message of the Producer not yet sent (see Producer.Purge): those of every
// TypedProducer over it, and its own.
func (tp *TypedProducer[K, V]) Purge(ctx context.Context) error { return tp.p.Purge(ctx) }

// Health is the Producer's (see Producer.Health).
func (tp *TypedProducer[K, V]) Health() error { return tp.p.Health() }

// Close closes the Producer (see Producer.Close), and with it every TypedProducer over it.
func (tp *TypedProducer[K, V]) Close(ctx context.Context) error { return tp.p.Close(ctx) }

// InitTransactions is the Producer's (see Producer.InitTransactions): a TypedProducer over a
// transactional Producer writes in its transactions.
func (tp *TypedProducer[K, V]) InitTransactions(ctx context.Context) error {
	return tp.p.InitTransactions(ctx)
}

// BeginTransaction is the Producer's: the transaction takes the messages of every view of it.
func (tp *TypedProducer[K, V]) BeginTransaction() error { return tp.p.BeginTransaction() }

// SendOffsetsToTransaction is the Producer's.
func (tp *TypedProducer[K, V]) SendOffsetsToTransaction(ctx context.Context, offsets []kafka.TopicPartition, cgm *kafka.ConsumerGroupMetadata) error {
	return tp.p.SendOffsetsToTransaction(ctx, offsets, cgm)
}

// CommitTransaction is the Producer's. A message that failed serialization was never part of the
// transaction: it does not stop the commit.
func (tp *TypedProducer[K, V]) CommitTransaction(ctx context.Context) error {
	return tp.p.CommitTransaction(ctx)
}

// AbortTransaction is the Producer's.
func (tp *TypedProducer[K, V]) AbortTransaction(ctx context.Context) error {
	return tp.p.AbortTransaction(ctx)
}

// Partitions is the Producer's (see Producer.Partitions): topic's partition count.
func (tp *TypedProducer[K, V]) Partitions(ctx context.Context, topic string) (int32, error) {
	return tp.p.Partitions(ctx, topic)
}

// Stats returns the Producer's counters: they count every view of it.
func (tp *TypedProducer[K, V]) Stats() Stats { return tp.p.Stats() }

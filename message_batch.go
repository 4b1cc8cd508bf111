package aioproducer

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// maxTopicLen is the longest topic name Kafka accepts.
const maxTopicLen = 249

// maxTimestamp is the latest Message.Timestamp that can be sent: the last whole millisecond that
// time.Time.UnixNano can represent (2262-04-11).
var maxTimestamp = time.UnixMilli((1<<63 - 1) / int64(time.Millisecond)).UTC()

// record is the producer's own bookkeeping for one accepted message, from Produce to its outcome. It is
// pooled: it goes back to the pool once its outcome has been handed over, when nothing refers to it.
type record struct {
	msg   *Message
	size  int64     // bytes charged to the buffer limit
	ts    time.Time // the CreateTime sent
	epoch *epoch    // the Flush epoch it counts towards

	// Exactly one way to report the outcome is set.
	fut *Future
	fn  func(Delivery, error)
	ch  chan<- Result

	// The outcome, kept here while the record waits for its callback or HookDelivery to run.
	d   Delivery
	err error

	// With a HookDelivery only (zero otherwise): when Produce was called, and how long the outcome
	// took from then.
	start time.Time
	took  time.Duration
}

func (r *record) reset() { *r = record{} }

// validateMessage checks what can be checked before a message is accepted and returns its size in
// bytes (key, value, header keys and values). Every error wraps ErrInvalidMessage.
func validateMessage(m *Message) (int64, error) {
	if m == nil {
		return 0, fmt.Errorf("%w: nil message", ErrInvalidMessage)
	}
	if err := validateTopic(m.Topic); err != nil {
		return 0, err
	}
	if id, ok := m.Partition.ID(); ok && id < 0 {
		return 0, fmt.Errorf("%w: topic %q: negative partition %d", ErrInvalidMessage, m.Topic, id)
	}
	if ts := m.Timestamp; !ts.IsZero() {
		switch {
		case ts.UnixMilli() < 0:
			return 0, fmt.Errorf("%w: topic %q: timestamp %s is before 1970", ErrInvalidMessage, m.Topic,
				ts.UTC().Format(time.RFC3339Nano))
		case ts.UnixMilli() == 0:
			// librdkafka reads a CreateTime of 0 as "not set" and writes the send time instead.
			return 0, fmt.Errorf("%w: topic %q: timestamp %s is in the first millisecond of 1970, which librdkafka reads as unset",
				ErrInvalidMessage, m.Topic, ts.UTC().Format(time.RFC3339Nano))
		case ts.After(maxTimestamp):
			// confluent-kafka-go converts through UnixNano, which overflows after this.
			return 0, fmt.Errorf("%w: topic %q: timestamp %s is after %s, the latest that can be sent",
				ErrInvalidMessage, m.Topic, ts.UTC().Format(time.RFC3339), maxTimestamp.Format(time.RFC3339))
		}
	}
	size := int64(len(m.Key) + len(m.Value))
	for i, h := range m.Headers {
		if !utf8.ValidString(h.Key) {
			return 0, fmt.Errorf("%w: topic %q: header %d key is not valid UTF-8", ErrInvalidMessage, m.Topic, i)
		}
		if strings.IndexByte(h.Key, 0) >= 0 {
			// confluent-kafka-go hands header keys to librdkafka as C strings: a NUL would cut the key.
			return 0, fmt.Errorf("%w: topic %q: header %d key contains a NUL byte", ErrInvalidMessage, m.Topic, i)
		}
		size += int64(len(h.Key) + len(h.Value))
	}
	return size, nil
}

func validateTopic(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("%w: empty topic", ErrInvalidMessage)
	case len(t) > maxTopicLen:
		return fmt.Errorf("%w: topic name of %d characters, more than %d", ErrInvalidMessage, len(t), maxTopicLen)
	case t == "." || t == "..":
		return fmt.Errorf("%w: topic %q is not a legal name", ErrInvalidMessage, t)
	}
	for _, c := range t { // runes, so that the error shows the character the caller wrote
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: topic %q: character %q is not one of [a-zA-Z0-9._-]", ErrInvalidMessage, t, c)
		}
	}
	return nil
}

// recordBuf is a pooled slice of records, the storage of one messageBatch.
type recordBuf struct{ recs []*record }

// messageBatch is an immutable run of accepted messages of one topic, in produce order: the unit the
// batchManager hands to the executor. Nothing changes it after newMessageBatch; the executor gives its
// slice back to the pool when every message in it has been handed to librdkafka or failed.
type messageBatch struct {
	topic string
	buf   *recordBuf
}

// newMessageBatch is messageBatch's factory. It takes ownership of buf, whose records must be non-empty
// and all of topic: a batch that breaks that is a bug in the caller, and it panics.
func newMessageBatch(topic string, buf *recordBuf) messageBatch {
	if len(buf.recs) == 0 {
		panic("aioproducer: empty messageBatch")
	}
	for _, r := range buf.recs {
		if r.msg.Topic != topic {
			panic(fmt.Sprintf("aioproducer: messageBatch of %q holds a message of %q", topic, r.msg.Topic))
		}
	}
	return messageBatch{topic: topic, buf: buf}
}

// records returns the batch's records in produce order; callers must not change the slice.
func (b messageBatch) records() []*record { return b.buf.recs }

// Topic is the topic of every message in the batch.
func (b messageBatch) Topic() string { return b.topic }

// Len is the number of messages in the batch.
func (b messageBatch) Len() int { return len(b.buf.recs) }

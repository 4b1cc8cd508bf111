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

	// stuck: admitted under the stuck budget (its partition was marked unavailable).
	stuck bool
	// placed: the engine chose part for this unkeyed message; offered again after a full queue, it
	// keeps it, so that its partition's order stays the produce order. chosen: the Partitioner chose
	// part when the message was accepted; the engines take it as an explicit partition.
	placed bool
	chosen bool
	part   int32

	// deadline: the record fails if librdkafka has not taken it by then (deadlines.at; 0: never).
	deadline int64

	// With a HookDelivery only (zero otherwise): when Produce was called, and how long the outcome
	// took from then.
	start time.Time
	took  time.Duration
}

func (r *record) reset() { *r = record{} }

// partition returns the partition r was given before the engine: its message's explicit one, or the
// Partitioner's choice; else kafka.PartitionAny and false.
func (r *record) partition() (int32, bool) {
	if r.chosen {
		return r.part, true
	}
	return r.msg.Partition.ID()
}

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

// messageBatch is an immutable run of accepted messages of one topic, in produce order: what the
// batchManager groups by topic. Nothing changes it after newMessageBatch.
type messageBatch struct {
	topic string
	recs  []*record
	bytes int64 // of keys, values and headers
}

// newMessageBatch is messageBatch's factory. Its records must be non-empty and all of topic: a batch
// that breaks that is a bug in the caller, and it panics.
func newMessageBatch(topic string, recs []*record) messageBatch {
	if len(recs) == 0 {
		panic("aioproducer: empty messageBatch")
	}
	var size int64
	for _, r := range recs {
		if r.msg.Topic != topic {
			panic(fmt.Sprintf("aioproducer: messageBatch of %q holds a message of %q", topic, r.msg.Topic))
		}
		size += r.size
	}
	return messageBatch{topic: topic, recs: recs, bytes: size}
}

// Topic is the topic of every message in the batch.
func (b messageBatch) Topic() string { return b.topic }

// Len is the number of messages in the batch.
func (b messageBatch) Len() int { return len(b.recs) }

// job is what a worker hands to the engine in one call: the messageBatches of one or more topics, their
// records one after the other in recs (each topic's a run, in produce order). It is sized by messages
// and bytes across topics, so a call stays large however widely the load is spread. Pooled.
type job struct {
	batches []messageBatch
	recs    []*record
	bytes   int64

	// With a HookBatch: per batch, what librdkafka took of it.
	hookMsgs  []int
	hookBytes []int64
	hookRun   int // the batch of the last untake
	hookPos   int // the position in recs where that batch starts
}

// reset empties j for reuse.
func (j *job) reset() {
	clear(j.batches)
	clear(j.recs)
	j.batches, j.recs, j.bytes = j.batches[:0], j.recs[:0], 0
}

// beginHooks counts every batch as taken whole; untake takes back what failed.
func (j *job) beginHooks() {
	j.hookMsgs, j.hookBytes = j.hookMsgs[:0], j.hookBytes[:0]
	for _, b := range j.batches {
		j.hookMsgs = append(j.hookMsgs, b.Len())
		j.hookBytes = append(j.hookBytes, b.bytes)
	}
	j.hookRun, j.hookPos = 0, 0
}

// untake takes recs, at position pos of j.recs on, off their batches' counts. Positions only grow from
// one call to the next, and the engine reorders records only within a batch.
func (j *job) untake(pos int, recs []*record) {
	for i, r := range recs {
		for pos+i >= j.hookPos+j.batches[j.hookRun].Len() {
			j.hookPos += j.batches[j.hookRun].Len()
			j.hookRun++
		}
		j.hookMsgs[j.hookRun]--
		j.hookBytes[j.hookRun] -= r.size
	}
}

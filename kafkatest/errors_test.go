//go:build kafka

package kafkatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
)

// TestCompressionCodecs produces with every compression codec and reads the messages back intact.
func TestCompressionCodecs(t *testing.T) {
	bs := singleBroker(t)
	for _, codec := range []string{"gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			const n, partitions = 2000, 2
			topic := topicName(t, codec)
			createTopic(t, bs, topic, partitions, 1, nil)
			p := newProducer(t, bs, kafka.ConfigMap{"compression.type": codec, "linger.ms": 20})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()

			msgs := make([]*aioproducer.Message, n)
			for i := range msgs {
				m := &aioproducer.Message{
					Topic:   topic,
					Key:     []byte("k" + strconv.Itoa(i%13)),
					Value:   []byte(strings.Repeat(fmt.Sprintf("%s message %d is quite compressible. ", codec, i), 1+i%40)),
					Headers: []aioproducer.Header{{Key: "id", Value: []byte(strconv.Itoa(i))}},
				}
				switch i % 100 {
				case 7:
					m.Value = nil // tombstone
				case 8:
					m.Value = payload(i) // barely compressible
				}
				msgs[i] = m
			}
			futs, err := p.ProduceBatch(ctx, msgs)
			require.NoError(t, err)
			require.Len(t, futs, n)
			where := map[string]aioproducer.Delivery{}
			for i, f := range futs {
				d, err := f.Wait(ctx)
				require.NoError(t, err, "message %d", i)
				where[strconv.Itoa(i)] = d
			}
			require.NoError(t, p.Close(ctx))

			got := consumeAll(t, bs, topic, time.Minute)
			require.Len(t, got, n)
			problems := &capped{t: t, max: 10}
			for _, m := range got {
				idb, _ := m.Header("id")
				i, err := strconv.Atoi(string(idb))
				if err != nil || i < 0 || i >= n {
					problems.errorf("bad id header %q", idb)
					continue
				}
				want := msgs[i]
				if !bytes.Equal(m.Key, want.Key) || !bytes.Equal(m.Value, want.Value) || (m.Value == nil) != (want.Value == nil) {
					problems.errorf("message %d: key %q value %d bytes, want key %q value %d bytes", i, m.Key, len(m.Value), want.Key, len(want.Value))
				}
				d := where[string(idb)]
				if d.Partition != m.Partition || d.Offset != m.Offset {
					problems.errorf("message %d: delivered at %d@%d, read at %v", i, d.Partition, d.Offset, m)
				}
			}
			problems.done(codec)
		})
	}
}

// TestMessageSizeLimit sends one message just under and one just over the topic's max.message.bytes,
// with the producer's own message.max.bytes far above it, so that the broker is the one that refuses:
// the first is delivered, the second fails its own future with MSG_SIZE_TOO_LARGE, and the messages
// around it are delivered. A message over the producer's own limit fails alone as well.
func TestMessageSizeLimit(t *testing.T) {
	bs := singleBroker(t)
	const limit = 64 << 10
	topic := topicName(t, "")
	createTopic(t, bs, topic, 3, 1, map[string]string{"max.message.bytes": strconv.Itoa(limit)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	p := newProducer(t, bs, kafka.ConfigMap{"message.max.bytes": 4 << 20, "linger.ms": 0})
	send := func(part int32, value []byte, id string) *aioproducer.Future {
		t.Helper()
		f, err := p.Produce(ctx, &aioproducer.Message{
			Topic: topic, Partition: aioproducer.ExplicitPartition(part), Value: value,
			Headers: []aioproducer.Header{{Key: "id", Value: []byte(id)}},
		})
		require.NoError(t, err, "Produce %s: the producer must accept it and leave the verdict to the broker", id)
		return f
	}
	mustDeliver := func(f *aioproducer.Future, what string) aioproducer.Delivery {
		t.Helper()
		d, err := f.Wait(ctx)
		require.NoError(t, err, "%s must be delivered", what)
		return d
	}

	// A record batch of one record costs about 72 bytes more than its value.
	under := bytes.Repeat([]byte{'u'}, limit-512)
	over := bytes.Repeat([]byte{'o'}, limit+512)

	mustDeliver(send(0, []byte("before"), "before"), "the message before")
	mustDeliver(send(0, under, "under"), "the message just under the limit")

	// The oversized one alone in partition 0, neighbours in flight at the same time on 1 and 2.
	var neighbours []*aioproducer.Future
	for i := 0; i < 10; i++ {
		neighbours = append(neighbours, send(1, []byte("n"+strconv.Itoa(i)), "n1-"+strconv.Itoa(i)))
	}
	fOver := send(0, over, "over")
	for i := 0; i < 10; i++ {
		neighbours = append(neighbours, send(2, []byte("n"+strconv.Itoa(i)), "n2-"+strconv.Itoa(i)))
	}
	_, err := fOver.Wait(ctx)
	require.Error(t, err, "a message over the topic's max.message.bytes must fail")
	var kerr kafka.Error
	require.True(t, errors.As(err, &kerr), "errors.As(%v, kafka.Error)", err)
	assert.Equal(t, kafka.ErrMsgSizeTooLarge, kerr.Code(), "error %v", err)
	var derr *aioproducer.DeliveryError
	if assert.True(t, errors.As(err, &derr), "errors.As(%T, *DeliveryError)", err) {
		assert.Equal(t, topic, derr.Topic)
	}
	assert.Contains(t, strings.ToLower(err.Error()), "too large", "error text should say what went wrong: %v", err)
	assert.False(t, aioproducer.IsFatal(err), "a refused message must not be fatal: %v", err)
	t.Logf("oversized message failed with: %v", err)
	for i, f := range neighbours {
		mustDeliver(f, fmt.Sprintf("neighbour %d", i))
	}
	mustDeliver(send(0, []byte("after"), "after"), "the message after, on the same partition")

	// Over the producer's own message.max.bytes: Produce refuses it at once, naming the setting.
	small := newProducer(t, bs, kafka.ConfigMap{"message.max.bytes": 100_000})
	_, err = small.Produce(ctx, &aioproducer.Message{Topic: topic, Value: bytes.Repeat([]byte{'x'}, 200_000)})
	require.ErrorIs(t, err, aioproducer.ErrInvalidMessage)
	assert.Contains(t, err.Error(), "message.max.bytes (100000)")

	// Under it, but over it with the record's framing: librdkafka refuses it when it is handed over;
	// it fails alone, in the middle of a ProduceBatch whose other messages are delivered in order.
	batch := []*aioproducer.Message{}
	for i := 0; i < 5; i++ {
		batch = append(batch, &aioproducer.Message{Topic: topic, Partition: aioproducer.ExplicitPartition(1),
			Value: []byte("b" + strconv.Itoa(i)), Headers: []aioproducer.Header{{Key: "id", Value: []byte("b" + strconv.Itoa(i))}}})
	}
	batch[2].Value = bytes.Repeat([]byte{'x'}, 99_990)
	futs, err := small.ProduceBatch(ctx, batch)
	require.NoError(t, err)
	var prev int64 = -1
	for i, f := range futs {
		d, err := f.Wait(ctx)
		if i == 2 {
			require.Error(t, err, "a message over the producer's message.max.bytes must fail")
			code, ok := kafkaCode(err)
			assert.True(t, ok && code == kafka.ErrMsgSizeTooLarge, "want MSG_SIZE_TOO_LARGE, got %v", err)
			continue
		}
		require.NoError(t, err, "batch message %d", i)
		assert.Greater(t, d.Offset, prev, "batch message %d out of order", i)
		prev = d.Offset
	}
	require.NoError(t, small.Close(ctx))
	require.NoError(t, p.Close(ctx))

	got := consumeAll(t, bs, topic, time.Minute)
	ids := map[string]int{}
	for _, m := range got {
		id, _ := m.Header("id")
		ids[string(id)]++
	}
	for _, id := range []string{"before", "under", "after", "n1-0", "n2-9", "b0", "b1", "b3", "b4"} {
		assert.Equal(t, 1, ids[id], "message %s in the log", id)
	}
	assert.Zero(t, ids["over"], "the refused message must not be in the log")
	assert.Zero(t, ids["b2"], "the refused batch message must not be in the log")
	assert.Len(t, got, 3+20+4, "messages in the log")
}

// TestUnknownTopic produces to a topic that does not exist, with topic auto-creation off: every
// message fails with a typed error within message.timeout.ms, nothing hangs, a message to an existing
// topic from the same producer is delivered, and the topic is not created.
func TestUnknownTopic(t *testing.T) {
	bs := singleBroker(t)
	const timeout = 5 * time.Second
	missing := topicName(t, "missing")
	existing := topicName(t, "existing")
	createTopic(t, bs, existing, 1, 1, nil)

	p := newProducer(t, bs, kafka.ConfigMap{
		"message.timeout.ms":       int(timeout / time.Millisecond),
		"allow.auto.create.topics": false,
	})
	// Every outcome must be known by message.timeout.ms plus generous slack for the broker round trips.
	ctx, cancel := context.WithTimeout(context.Background(), timeout+20*time.Second)
	defer cancel()
	start := time.Now()

	var futs []*aioproducer.Future
	for i := 0; i < 10; i++ {
		f, err := p.Produce(ctx, &aioproducer.Message{Topic: missing, Key: []byte{byte(i)}, Value: []byte("x")})
		require.NoError(t, err, "Produce accepts a message for a topic it does not know yet")
		futs = append(futs, f)
	}
	batch := make([]*aioproducer.Message, 5)
	for i := range batch {
		batch[i] = &aioproducer.Message{Topic: missing, Value: []byte("b"), Partition: aioproducer.ExplicitPartition(int32(i % 2))}
	}
	bf, err := p.ProduceBatch(ctx, batch)
	require.NoError(t, err)
	futs = append(futs, bf...)
	type outcome struct {
		err error
		at  time.Duration
	}
	cbs := make(chan outcome, 5)
	for i := 0; i < 5; i++ {
		require.NoError(t, p.ProduceFunc(ctx, &aioproducer.Message{Topic: missing, Value: []byte("f")}, func(_ aioproducer.Delivery, err error) {
			cbs <- outcome{err, time.Since(start)}
		}))
	}
	ok, err := p.Produce(ctx, &aioproducer.Message{Topic: existing, Value: []byte("fine")})
	require.NoError(t, err)

	var outcomes []outcome
	for i, f := range futs {
		_, err := f.Wait(ctx)
		require.NotErrorIs(t, err, context.DeadlineExceeded, "future %d unresolved %v after message.timeout.ms=%v", i, time.Since(start), timeout)
		outcomes = append(outcomes, outcome{err, time.Since(start)})
	}
	for i := 0; i < 5; i++ {
		select {
		case o := <-cbs:
			outcomes = append(outcomes, o)
		case <-ctx.Done():
			t.Fatalf("callback %d not called %v after message.timeout.ms=%v", i, time.Since(start), timeout)
		}
	}
	codes := map[kafka.ErrorCode]int{}
	var slowest time.Duration
	for i, o := range outcomes {
		require.Error(t, o.err, "message %d to a missing topic must fail", i)
		var kerr kafka.Error
		require.True(t, errors.As(o.err, &kerr), "message %d: errors.As(%v, kafka.Error)", i, o.err)
		switch kerr.Code() {
		case kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownTopic, kafka.ErrMsgTimedOut:
		default:
			t.Errorf("message %d: unexpected error code %v: %v", i, kerr.Code(), o.err)
		}
		var derr *aioproducer.DeliveryError
		if assert.True(t, errors.As(o.err, &derr), "message %d: %T is not a *DeliveryError", i, o.err) {
			assert.Equal(t, missing, derr.Topic)
		}
		codes[kerr.Code()]++
		slowest = max(slowest, o.at)
	}
	t.Logf("%d messages to a missing topic failed, slowest after %v: %v; e.g. %v", len(outcomes), slowest.Round(time.Millisecond), codes, outcomes[0].err)

	_, err = ok.Wait(ctx)
	require.NoError(t, err, "a message to an existing topic from the same producer")

	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelClose()
	require.NoError(t, p.Close(closeCtx), "Close after the failures")
	assert.False(t, topicExists(t, bs, missing), "topic %s was created", missing)
}

// TestUnknownPartition pins messages to a partition the topic does not have: each fails alone with
// kafka.ErrUnknownPartition (whether or not the producer knew the topic's metadata yet), and messages
// to real partitions around them are delivered.
func TestUnknownPartition(t *testing.T) {
	bs := singleBroker(t)
	topic := topicName(t, "")
	createTopic(t, bs, topic, 2, 1, nil)
	p := newProducer(t, bs, kafka.ConfigMap{"message.timeout.ms": 10_000})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for round := 0; round < 2; round++ { // round 0: metadata not known yet; round 1: known
		var futs []*aioproducer.Future
		for i := 0; i < 6; i++ {
			part := int32(i % 2)
			if i == 3 {
				part = 7
			}
			f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Partition: aioproducer.ExplicitPartition(part), Value: []byte{byte(i)}})
			require.NoError(t, err)
			futs = append(futs, f)
		}
		for i, f := range futs {
			d, err := f.Wait(ctx)
			if i != 3 {
				require.NoError(t, err, "round %d: message %d to partition %d", round, i, i%2)
				assert.Equal(t, int32(i%2), d.Partition)
				continue
			}
			require.Error(t, err, "round %d: a message to partition 7 of a 2-partition topic", round)
			code, ok := kafkaCode(err)
			assert.True(t, ok && code == kafka.ErrUnknownPartition, "round %d: want ErrUnknownPartition, got %v", round, err)
			t.Logf("round %d: %v", round, err)
		}
	}
}

// TestUnknownTopicFailsWithinPropagationTime: with topic auto-creation off, a message to a topic that
// does not exist fails with librdkafka's unknown-topic error, naming the topic, once
// topic.metadata.propagation.max.ms has passed (librdkafka waits that long for a topic just created
// elsewhere to reach the broker it asks), long before message.timeout.ms.
func TestUnknownTopicFailsWithinPropagationTime(t *testing.T) {
	bs := singleBroker(t)
	const propagation, timeout = 3 * time.Second, 60 * time.Second
	missing := topicName(t, "missing")
	p := newProducer(t, bs, kafka.ConfigMap{
		"message.timeout.ms":                 int(timeout / time.Millisecond),
		"topic.metadata.propagation.max.ms":  int(propagation / time.Millisecond),
		"allow.auto.create.topics":           false,
		"topic.metadata.refresh.interval.ms": 1000,
	})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	var futs []*aioproducer.Future
	for i := 0; i < 5; i++ {
		f, err := p.Produce(ctx, &aioproducer.Message{Topic: missing, Key: []byte{byte(i)}, Value: []byte("x")})
		require.NoError(t, err)
		futs = append(futs, f)
		f, err = p.Produce(ctx, &aioproducer.Message{Topic: missing, Value: []byte("unkeyed")})
		require.NoError(t, err)
		futs = append(futs, f)
	}
	var slowest time.Duration
	var example error
	for i, f := range futs {
		_, err := f.Wait(ctx)
		require.Error(t, err, "message %d", i)
		example = err
		require.NotErrorIs(t, err, context.DeadlineExceeded, "message %d has no outcome after %v", i, time.Since(start))
		code, ok := kafkaCode(err)
		require.True(t, ok, "message %d: %v", i, err)
		assert.Contains(t, []kafka.ErrorCode{kafka.ErrUnknownTopic, kafka.ErrUnknownTopicOrPart}, code,
			"message %d: want an unknown-topic error, not %v: %v", i, code, err)
		assert.Contains(t, err.Error(), missing, "the error names the topic")
		assert.False(t, aioproducer.IsOutcomeUnknown(err), "never sent: %v", err)
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("%d messages to a missing topic failed within %v (topic.metadata.propagation.max.ms %v, message.timeout.ms %v): %v",
		len(futs), slowest.Round(time.Millisecond), propagation, timeout, example)
	assert.Less(t, slowest, propagation+10*time.Second, "failed after the propagation time, not message.timeout.ms")
}

// TestAFailedMessageAndTheRestOfItsPartition states what the messages after a failed one of the same
// partition get. By default (idempotence on) a message the broker refuses fails alone and the next
// ones of its partition are delivered: the log has a gap where it would have been. With
// enable.gapless.guarantee=true librdkafka refuses to leave a gap: the refusal is a fatal error, and
// the producer fails everything after it (ErrFatal) and must be replaced. (librdkafka does not cover a
// message that fails at message.timeout.ms with the guarantee: see its CONFIGURATION.md.)
func TestAFailedMessageAndTheRestOfItsPartition(t *testing.T) {
	bs := singleBroker(t)
	const limit = 64 << 10
	for _, gapless := range []bool{false, true} {
		t.Run(fmt.Sprintf("gapless=%v", gapless), func(t *testing.T) {
			topic := topicName(t, "")
			createTopic(t, bs, topic, 1, 1, map[string]string{"max.message.bytes": strconv.Itoa(limit)})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p := newProducer(t, bs, kafka.ConfigMap{
				"message.max.bytes": 4 << 20, "linger.ms": 0, "enable.gapless.guarantee": gapless,
			})
			send := func(value []byte) *aioproducer.Future {
				f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: value})
				require.NoError(t, err)
				return f
			}
			_, err := send([]byte("before")).Wait(ctx)
			require.NoError(t, err)
			over := send(bytes.Repeat([]byte{'o'}, limit+512))
			_, overErr := over.Wait(ctx)
			require.Error(t, overErr, "over the topic's max.message.bytes")
			if !gapless {
				after := send([]byte("after"))
				_, afterErr := after.Wait(ctx)
				t.Logf("the refused message: %v; the next one: %v; Health: %v", overErr, afterErr, p.Health())
				assert.False(t, aioproducer.IsFatal(overErr), "%v", overErr)
				require.NoError(t, afterErr, "the next message of the partition is delivered")
				assert.NoError(t, p.Health())
				return
			}
			// The refusal itself is the fatal error; Produce refuses what comes after it.
			_, afterErr := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("after")})
			t.Logf("the refused message: %v; Produce after it: %v; Health: %v", overErr, afterErr, p.Health())
			assert.ErrorIs(t, overErr, aioproducer.ErrFatal, "a gap is fatal")
			assert.Contains(t, overErr.Error(), "gap-less guarantee")
			assert.ErrorIs(t, afterErr, aioproducer.ErrFatal, "nothing is accepted after a gap")
			assert.ErrorIs(t, p.Health(), aioproducer.ErrFatal)
		})
	}
}

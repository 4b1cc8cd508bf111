//go:build kafka

package kafkatest

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
)

// planned is one message of a test run and its outcome.
type planned struct {
	msg   *aioproducer.Message
	topic int    // index into the run's topics
	group string // per-key (or per explicit partition) ordering group
	d     aioproducer.Delivery
	err   error
}

// TestDeliveryIntegrity produces 100k messages over 3 topics of 4 partitions with acks=all and
// idempotence, through Produce, ProduceBatch and ProduceFunc from several goroutines, and reads them
// all back: none lost, none duplicated, order kept per key (and per explicit partition), keys,
// values, headers and timestamps intact, and every delivery's partition and offset is where the
// message was read.
func TestDeliveryIntegrity(t *testing.T) {
	bs := singleBroker(t)
	const (
		nTopics    = 3
		partitions = 4
		workers    = 4
		batchLen   = 256
	)
	total := 100_000
	if testing.Short() {
		total = 10_000
	}
	topics := make([]string, nTopics)
	for i := range topics {
		topics[i] = topicName(t, strconv.Itoa(i))
		createTopic(t, bs, topics[i], partitions, 1, nil)
	}

	// Plan the messages. Every ordering group belongs to one worker, which produces its messages in
	// id order, so the log must hold each group's messages in increasing id order.
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	plan := make([]*planned, total)
	perWorker := make([][]*planned, workers)
	for i := range plan {
		ti := i % nTopics
		m := &aioproducer.Message{
			Topic: topics[ti],
			Value: payload(i),
			Headers: []aioproducer.Header{
				{Key: "id", Value: []byte(strconv.Itoa(i))},
				{Key: "bin", Value: []byte{byte(i), 0, byte(i >> 8), 0xff}},
			},
		}
		if i%5 == 0 {
			m.Headers = append(m.Headers, aioproducer.Header{Key: "null", Value: nil})
		}
		if i%2 == 0 {
			m.Timestamp = base.Add(time.Duration(i) * time.Millisecond)
		}
		var group string
		if i%10 == 9 {
			// keyless, pinned to a partition
			part := int32((i / 10) % partitions)
			m.Partition = aioproducer.ExplicitPartition(part)
			group = fmt.Sprintf("%d/p%d", ti, part)
		} else {
			m.Key = []byte(fmt.Sprintf("key-%03d", (i/nTopics)%97))
			group = fmt.Sprintf("%d/%s", ti, m.Key)
		}
		pl := &planned{msg: m, topic: ti, group: group}
		plan[i] = pl
		h := fnv.New32a()
		h.Write([]byte(group))
		w := int(h.Sum32() % workers)
		perWorker[w] = append(perWorker[w], pl)
	}

	p := newProducer(t, bs, kafka.ConfigMap{"linger.ms": 5})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	start := time.Now()
	var callbacks sync.WaitGroup
	futures := make([]*aioproducer.Future, total)
	index := make(map[*planned]int, total)
	for i, pl := range plan {
		index[pl] = i
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(mine []*planned) {
			defer wg.Done()
			var batch []*planned
			sendBatch := func() error {
				if len(batch) == 0 {
					return nil
				}
				msgs := make([]*aioproducer.Message, len(batch))
				for i, pl := range batch {
					msgs[i] = pl.msg
				}
				futs, err := p.ProduceBatch(ctx, msgs)
				if err != nil {
					return fmt.Errorf("ProduceBatch: %w", err)
				}
				for i, f := range futs {
					futures[index[batch[i]]] = f
				}
				batch = batch[:0]
				return nil
			}
			for _, pl := range mine {
				switch pl.topic {
				case 0:
					f, err := p.Produce(ctx, pl.msg)
					if err != nil {
						errs <- fmt.Errorf("Produce: %w", err)
						return
					}
					futures[index[pl]] = f
				case 1:
					batch = append(batch, pl)
					if len(batch) == batchLen {
						if err := sendBatch(); err != nil {
							errs <- err
							return
						}
					}
				case 2:
					callbacks.Add(1)
					pl := pl
					err := p.ProduceFunc(ctx, pl.msg, func(d aioproducer.Delivery, err error) {
						pl.d, pl.err = d, err
						callbacks.Done()
					})
					if err != nil {
						callbacks.Done()
						errs <- fmt.Errorf("ProduceFunc: %w", err)
						return
					}
				}
			}
			if err := sendBatch(); err != nil {
				errs <- err
			}
		}(perWorker[w])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	require.NoError(t, p.Flush(ctx), "Flush")
	callbacks.Wait()
	for i, f := range futures {
		if f == nil {
			continue // ProduceFunc
		}
		select {
		case <-f.Done():
		default:
			t.Fatalf("message %d: Flush returned before its future was done", i)
		}
		plan[i].d, plan[i].err = f.Wait(ctx)
	}
	elapsed := time.Since(start)
	t.Logf("produced %d messages in %v (%.0f msg/s); stats %+v", total, elapsed.Round(time.Millisecond),
		float64(total)/elapsed.Seconds(), p.Stats())
	require.NoError(t, p.Close(ctx), "Close")

	failed := &capped{t: t, max: 10}
	for i, pl := range plan {
		if pl.err != nil {
			failed.errorf("message %d: %v", i, pl.err)
		}
	}
	failed.done("delivery failures")
	if t.Failed() {
		return
	}

	// Read everything back.
	problems := &capped{t: t, max: 20}
	seen := make([]int, total)
	lastID := map[string]int{}
	keyPartition := map[string]int32{}
	for ti, topic := range topics {
		got := consumeAll(t, bs, topic, 3*time.Minute)
		for _, m := range got {
			idb, ok := m.Header("id")
			id, err := strconv.Atoi(string(idb))
			if !ok || err != nil || id < 0 || id >= total {
				problems.errorf("%s: message without a valid id header at %v", topic, m)
				continue
			}
			seen[id]++
			pl := plan[id]
			tp := m
			if pl.topic != ti {
				problems.errorf("message %d: read from %s, produced to %s", id, topic, topics[pl.topic])
			}
			if pl.d.Topic != topic || pl.d.Partition != tp.Partition || pl.d.Offset != tp.Offset {
				problems.errorf("message %d: delivery said %s/%d@%d, read at %s/%d@%d", id,
					pl.d.Topic, pl.d.Partition, pl.d.Offset, topic, tp.Partition, tp.Offset)
			}
			if want, ok := pl.msg.Partition.ID(); ok && tp.Partition != want {
				problems.errorf("message %d: pinned to partition %d, read from %d", id, want, tp.Partition)
			}
			if !bytes.Equal(m.Key, pl.msg.Key) || (m.Key == nil) != (pl.msg.Key == nil) {
				problems.errorf("message %d: key %q, want %q", id, m.Key, pl.msg.Key)
			}
			if !bytes.Equal(m.Value, pl.msg.Value) {
				problems.errorf("message %d: value of %d bytes differs from the %d produced", id, len(m.Value), len(pl.msg.Value))
			}
			if !sameHeaders(m.Headers, pl.msg.Headers) {
				problems.errorf("message %d: headers %v, want %v", id, m.Headers, pl.msg.Headers)
			}
			wantTS := pl.d.Timestamp
			if !pl.msg.Timestamp.IsZero() {
				wantTS = pl.msg.Timestamp
				if !pl.d.Timestamp.Equal(pl.msg.Timestamp) {
					problems.errorf("message %d: delivery timestamp %v, want the message's %v", id, pl.d.Timestamp, pl.msg.Timestamp)
				}
			}
			if m.TimestampType != kafka.TimestampCreateTime || m.Timestamp.UnixMilli() != wantTS.UnixMilli() {
				problems.errorf("message %d: timestamp %v (%v), want CreateTime %v", id, m.Timestamp, m.TimestampType, wantTS)
			}
			if prev, ok := lastID[pl.group]; ok && prev >= id {
				problems.errorf("group %s: message %d read after %d: order lost", pl.group, id, prev)
			}
			lastID[pl.group] = id
			if pl.msg.Key != nil {
				if kp, ok := keyPartition[pl.group]; ok && kp != tp.Partition {
					problems.errorf("key group %s: in partitions %d and %d", pl.group, kp, tp.Partition)
				}
				keyPartition[pl.group] = tp.Partition
			}
		}
	}
	lost, dup := 0, 0
	for id, n := range seen {
		switch {
		case n == 0:
			lost++
			problems.errorf("message %d lost (delivered to %s/%d@%d)", id, plan[id].d.Topic, plan[id].d.Partition, plan[id].d.Offset)
		case n > 1:
			dup++
			problems.errorf("message %d read %d times", id, n)
		}
	}
	problems.done("read-back")
	t.Logf("read back %d messages: %d lost, %d duplicated, %d ordering groups", total-lost, lost, dup, len(lastID))
}

// payload returns message i's value: an id, then 0 to 199 bytes of every byte value.
func payload(i int) []byte {
	b := []byte(fmt.Sprintf("id=%07d;", i))
	for j := 0; j < i%200; j++ {
		b = append(b, byte(i*31+j*7))
	}
	return b
}

// sameHeaders compares headers by key and bytes (a null value reads back as nil or empty).
func sameHeaders(got, want []kafka.Header) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) {
			return false
		}
	}
	return true
}

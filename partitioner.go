package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

// partitionerOf returns the rdk kind of the partitioner cm configures ("partitioner", default
// consistent_random) when the engine can place keyed messages itself with it, so that it can group
// them by partition: consistent_random, murmur2_random (Java's) and fnv1a_random, which the engine's
// C helper calls exactly as librdkafka would. Otherwise rdk.PartitionerNone: random, and consistent,
// murmur2 and fnv1a, which librdkafka recognizes by their addresses to treat null keys specially, are
// left to librdkafka alone.
func partitionerOf(cm kafka.ConfigMap) int {
	name := "consistent_random"
	var find func(m kafka.ConfigMap)
	find = func(m kafka.ConfigMap) {
		for k, v := range m {
			if sub, ok := v.(kafka.ConfigMap); ok {
				find(sub)
			} else if k == "partitioner" {
				name, _ = settingValue(v)
			}
		}
	}
	find(cm)
	switch name {
	case "consistent_random":
		return rdk.PartitionerConsistentRandom
	case "murmur2_random":
		return rdk.PartitionerMurmur2Random
	case "fnv1a_random":
		return rdk.PartitionerFNV1aRandom
	}
	return rdk.PartitionerNone
}

// stickyLinger is how long unkeyed messages of a topic go to the same partition, as cm configures
// librdkafka's sticky partitioner: sticky.partitioning.linger.ms, by default twice linger.ms (itself 5
// ms by default).
func stickyLinger(cm kafka.ConfigMap) time.Duration {
	ms := func(keys ...string) (float64, bool) {
		var val float64
		found := false
		var find func(m kafka.ConfigMap)
		find = func(m kafka.ConfigMap) {
			for k, v := range m {
				if sub, ok := v.(kafka.ConfigMap); ok {
					find(sub)
					continue
				}
				for _, want := range keys {
					if k == want {
						s, _ := settingValue(v)
						if f, err := strconv.ParseFloat(s, 64); err == nil {
							val, found = f, true
						}
					}
				}
			}
		}
		find(cm)
		return val, found
	}
	if v, ok := ms("sticky.partitioning.linger.ms"); ok {
		return time.Duration(v * float64(time.Millisecond))
	}
	linger := 5.0
	if v, ok := ms("linger.ms", "queue.buffering.max.ms"); ok {
		linger = v
	}
	return time.Duration(2 * linger * float64(time.Millisecond))
}

// Partitioner chooses the partition of a message that has none of its own (its Partition is the zero
// value), keyed or not: partitions is the topic's partition count, as the producer last learned it from
// the cluster's metadata (at least 1). It must return a partition in [0, partitions); any other result
// fails that message's Produce call with an error wrapping ErrInvalidMessage, and the producer goes on.
//
// It runs in the goroutine that calls Produce (or one of its variants), before the message is accepted,
// and may run for many goroutines at once: it must be safe for concurrent use, fast, and must not modify
// msg. A panic propagates to the caller, as a serializer's does; nothing has been accepted then.
//
// See WithPartitioner.
type Partitioner func(msg *Message, partitions int32) int32

// WithPartitioner makes fn choose the partition of every message produced without an explicit one
// (Message.Partition), keyed or not; the partition it returns is then used as if the message had set
// it, so messages fn places in one partition keep their produce order there. Default: none, and
// librdkafka's "partitioner" setting places keyed messages (consistent_random: CRC-32; murmur2_random
// places keys as the Java client's default partitioner and franz-go's do).
//
// fn needs the topic's partition count: the first message to a topic waits for it from the cluster
// (Produce's ctx bounds the wait, as max.block.ms bounds the Java producer's send), later ones read it
// from memory, and it is asked for again every 5 minutes while the topic is in use, so partitions added
// to a topic get messages too. TryProduce never waits: while the count is unknown it asks for it and
// fails with an error wrapping ErrBufferFull, which a retry a moment later gets past. A topic that does
// not exist (and that the cluster does not create on first use: allow.auto.create.topics, the broker's
// auto.create.topics.enable) fails Produce with the metadata error, naming the topic. See
// Producer.Partitions.
//
// A nil fn fails New with a *ConfigError.
func WithPartitioner(fn Partitioner) Option {
	return func(c *config) { c.partitioner, c.partitionerSet = fn, true }
}

// place returns the partition in.part chooses for msg, and true; false when msg needs no choice (no
// Partitioner, or an explicit partition). It waits for the topic's partition count with block (ctx
// bounding the wait); without, it fails while the count is not known.
func (in *intake) place(ctx context.Context, msg *Message, block bool) (int32, bool, error) {
	if in.part == nil {
		return 0, false, nil
	}
	if _, explicit := msg.Partition.ID(); explicit {
		return 0, false, nil
	}
	n := in.eng.knownPartitions(msg.Topic) // asks for it when not known
	if n <= 0 {
		if !block {
			return 0, false, fmt.Errorf("%w: topic %q: its partition count is not known yet (WithPartitioner), and TryProduce does not wait for it: it was asked for, try again",
				ErrBufferFull, msg.Topic)
		}
		var err error
		if n, err = in.eng.partitions(ctx, msg.Topic); err != nil {
			return 0, false, err
		}
	}
	p := in.part(msg, n)
	if p < 0 || p >= n {
		return 0, false, fmt.Errorf("%w: topic %q: the Partitioner chose partition %d, not within [0, %d), the topic's %d partitions",
			ErrInvalidMessage, msg.Topic, p, n, n)
	}
	return p, true, nil
}

// partitionCounts is what the librdkafka engine knows of topics' partition counts, for the Partitioner
// and Producer.Partitions. A known count is an atomic behind a sync.Map lookup; an unknown one is asked
// for on a goroutine of its own (one request per topic at a time, however many callers wait), which
// callers wait for as long as their ctx lets them. The engine's metadataLoop refreshes the counts of
// the topics in use (store); forget drops those of idle topics.
type partitionCounts struct {
	fetch func(topic string) (int32, error) // one metadata request, bounded in time

	topics sync.Map // topic → *topicCount

	mu      sync.Mutex // guards closed and the WaitGroup's Add
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
}

// topicCount is one topic's partition count.
type topicCount struct {
	n  atomic.Int32 // 0 while unknown
	at atomic.Int64 // when n was learned, UnixNano

	mu       sync.Mutex
	fetching chan struct{} // closed when the request in progress ends; nil while none is
	err      error         // the last request's error; nil once one succeeded
}

// countRetry is how soon a caller still waiting asks again after a request that failed for a reason
// that may pass (a timeout, a topic being created whose leaders are not elected yet).
const countRetry = 100 * time.Millisecond

func newPartitionCounts(fetch func(topic string) (int32, error)) *partitionCounts {
	return &partitionCounts{fetch: fetch, closing: make(chan struct{})}
}

// known returns topic's partition count, 0 while it is not known; then it asks for it.
func (c *partitionCounts) known(topic string) int32 {
	if v, ok := c.topics.Load(topic); ok {
		if n := v.(*topicCount).n.Load(); n > 0 {
			return n
		}
	}
	_, _ = c.ask(topic, c.entry(topic), false)
	return 0
}

// has reports whether topic's count is followed (it was asked for, and not forgotten since).
func (c *partitionCounts) has(topic string) bool {
	_, ok := c.topics.Load(topic)
	return ok
}

// entry returns topic's count, made on first use.
func (c *partitionCounts) entry(topic string) *topicCount {
	if v, ok := c.topics.Load(topic); ok {
		return v.(*topicCount)
	}
	v, _ := c.topics.LoadOrStore(topic, new(topicCount))
	return v.(*topicCount)
}

// wait returns topic's partition count, asking the cluster while it is not known, until ctx ends. A
// count older than metaEvery is returned as it is, and asked for again.
func (c *partitionCounts) wait(ctx context.Context, topic string) (int32, error) {
	for {
		t := c.entry(topic)
		if n := t.n.Load(); n > 0 {
			if time.Since(time.Unix(0, t.at.Load())) > metaEvery {
				_, _ = c.ask(topic, t, true)
			}
			return n, nil
		}
		done, err := c.ask(topic, t, false)
		if err != nil {
			return 0, err
		}
		select {
		case <-done:
		case <-c.closing:
			return 0, ErrClosed
		case <-ctx.Done():
			return 0, c.waitError(topic, t, ctx.Err())
		}
		if n := t.n.Load(); n > 0 {
			return n, nil
		}
		t.mu.Lock()
		err = t.err
		t.mu.Unlock()
		if missingTopic(err) {
			return 0, fmt.Errorf("aioproducer: partition count of topic %q: %w", topic, err)
		}
		pause := time.NewTimer(countRetry)
		select {
		case <-pause.C:
		case <-c.closing:
			pause.Stop()
			return 0, ErrClosed
		case <-ctx.Done():
			pause.Stop()
			return 0, c.waitError(topic, t, ctx.Err())
		}
	}
}

// waitError is the error of a wait for topic's count that ctx ended: ctxErr, and the last request's
// error if one failed.
func (c *partitionCounts) waitError(topic string, t *topicCount, ctxErr error) error {
	t.mu.Lock()
	last := t.err
	t.mu.Unlock()
	if last != nil {
		return fmt.Errorf("aioproducer: waiting for the partition count of topic %q: %w (last metadata request: %w)", topic, ctxErr, last)
	}
	return fmt.Errorf("aioproducer: waiting for the partition count of topic %q: %w", topic, ctxErr)
}

// ask starts a request for topic's count unless one is in progress, and returns the channel closed
// when it ends; without refresh, none starts once the count is known (a request that ended since the
// caller looked). It fails with ErrClosed once close has begun.
func (c *partitionCounts) ask(topic string, t *topicCount, refresh bool) (<-chan struct{}, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fetching != nil {
		return t.fetching, nil
	}
	if !refresh && t.n.Load() > 0 {
		return closedChan, nil
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.wg.Add(1)
	c.mu.Unlock()
	done := make(chan struct{})
	t.fetching = done
	go func() {
		defer c.wg.Done()
		n, err := c.fetch(topic)
		if err == nil && n > 0 {
			t.at.Store(time.Now().UnixNano())
			t.n.Store(n)
		}
		t.mu.Lock()
		t.err, t.fetching = err, nil
		t.mu.Unlock()
		close(done)
	}()
	return done, nil
}

// store records a count the engine learned for topic by itself, if the topic is followed.
func (c *partitionCounts) store(topic string, n int32) {
	if v, ok := c.topics.Load(topic); ok && n > 0 {
		t := v.(*topicCount)
		t.at.Store(time.Now().UnixNano())
		t.n.Store(n)
	}
}

// forget stops following topics that went idle: a later message asks for the count again.
func (c *partitionCounts) forget(topics []string) {
	for _, name := range topics {
		c.topics.Delete(name)
	}
}

// close fails the callers still waiting with ErrClosed and waits for the requests in progress; none
// starts after it.
func (c *partitionCounts) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.closing)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// missingTopic reports whether err says the topic does not exist (or may not be described): asking again
// at once will not help.
func missingTopic(err error) bool {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke.Code() {
	case kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownTopic, kafka.ErrTopicAuthorizationFailed, kafka.ErrTopicException:
		return true
	}
	return false
}

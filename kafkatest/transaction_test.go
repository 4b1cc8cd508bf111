//go:build kafka

package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
)

// txnProducer is a transactional producer with a unique transactional.id, initialized.
func txnProducer(t *testing.T, bootstrap, id string, extra kafka.ConfigMap) *aioproducer.Producer {
	t.Helper()
	cm := kafka.ConfigMap{"transactional.id": id}
	for k, v := range extra {
		cm[k] = v
	}
	p := newProducer(t, bootstrap, cm)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, p.InitTransactions(ctx))
	return p
}

// readValues reads partition 0 of topic from the beginning to its end as a consumer with isolation
// level iso sees it, and returns the values.
func readValues(t *testing.T, bootstrap, topic, iso string) []string {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":    bootstrap,
		"group.id":             "read-" + topic,
		"isolation.level":      iso,
		"enable.partition.eof": true,
		"enable.auto.commit":   false,
	})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}))
	var out []string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			out = append(out, string(e.Value))
		case kafka.PartitionEOF:
			return out
		case kafka.Error:
			require.False(t, e.IsFatal(), "consumer: %v", e)
		}
	}
	t.Fatalf("no end of %s[0] within a minute, after %d messages", topic, len(out))
	return nil
}

func produceValues(t *testing.T, ctx context.Context, p *aioproducer.Producer, topic, prefix string, n int) ([]*aioproducer.Future, []string) {
	t.Helper()
	futs := make([]*aioproducer.Future, n)
	vals := make([]string, n)
	for i := range futs {
		vals[i] = fmt.Sprintf("%s-%04d", prefix, i)
		var err error
		futs[i], err = p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte(vals[i])})
		require.NoError(t, err)
	}
	return futs, vals
}

func waitAll(t *testing.T, ctx context.Context, futs []*aioproducer.Future) {
	t.Helper()
	for i, f := range futs {
		_, err := f.Wait(ctx)
		require.NoError(t, err, "message %d", i)
	}
}

// An aborted transaction's messages, even written ones, are invisible to read_committed consumers and
// visible to read_uncommitted ones; a committed one's are visible once, in order.
func TestTransactionAbortHidesWrittenMessages(t *testing.T) {
	bs := singleBroker(t)
	topic := topicName(t, "")
	createTopic(t, bs, topic, 1, 1, nil)
	p := txnProducer(t, bs, topic, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	require.NoError(t, p.BeginTransaction())
	futs, aborted := produceValues(t, ctx, p, topic, "aborted", 100)
	waitAll(t, ctx, futs) // written to the log, in the open transaction
	require.NoError(t, p.AbortTransaction(ctx))

	require.NoError(t, p.BeginTransaction())
	futs, committed := produceValues(t, ctx, p, topic, "committed", 100)
	require.NoError(t, p.CommitTransaction(ctx))
	waitAll(t, ctx, futs)

	assert.Equal(t, committed, readValues(t, bs, topic, "read_committed"))
	assert.Equal(t, append(aborted, committed...), readValues(t, bs, topic, "read_uncommitted"))
}

// A second producer with the same transactional.id fences the first: its next transactional call
// fails with a fatal error, Produce fails with ErrFatal, every future resolves and Close returns.
func TestTransactionFencedByANewerProducer(t *testing.T) {
	bs := singleBroker(t)
	topic := topicName(t, "")
	createTopic(t, bs, topic, 1, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	old := txnProducer(t, bs, topic, nil)
	require.NoError(t, old.BeginTransaction())
	futs, _ := produceValues(t, ctx, old, topic, "old", 50)
	waitAll(t, ctx, futs)

	txnProducer(t, bs, topic, nil) // fences old

	err := old.CommitTransaction(ctx)
	require.Error(t, err)
	t.Logf("the fenced producer's commit: %v", err)
	assert.True(t, aioproducer.IsFatal(err), "%v", err)
	assert.False(t, aioproducer.IsRetriable(err), "%v", err)
	_, err = old.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("late")})
	require.ErrorIs(t, err, aioproducer.ErrFatal)
	require.NoError(t, old.Close(ctx))
	assert.Empty(t, readValues(t, bs, topic, "read_committed"))
}

// Consume-transform-produce: the consumer's offsets are committed with the output, atomically.
func TestSendOffsetsToTransactionCommitsTheConsumersOffsets(t *testing.T) {
	bs := singleBroker(t)
	in, out := topicName(t, "in"), topicName(t, "out")
	createTopic(t, bs, in, 1, 1, nil)
	createTopic(t, bs, out, 1, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	plain := newProducer(t, bs, nil)
	futs, inputs := produceValues(t, ctx, plain, in, "in", 50)
	waitAll(t, ctx, futs)

	group := "g-" + in
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bs, "group.id": group, "isolation.level": "read_committed",
		"enable.auto.commit": false, "auto.offset.reset": "earliest",
	})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Subscribe(in, nil))

	p := txnProducer(t, bs, out, nil)
	require.NoError(t, p.BeginTransaction())
	var outputs []string
	for len(outputs) < len(inputs) {
		ev := c.Poll(100)
		m, ok := ev.(*kafka.Message)
		if !ok {
			require.NoError(t, ctx.Err(), "read %d of %d inputs", len(outputs), len(inputs))
			continue
		}
		v := "out(" + string(m.Value) + ")"
		_, err := p.Produce(ctx, &aioproducer.Message{Topic: out, Value: []byte(v)})
		require.NoError(t, err)
		outputs = append(outputs, v)
	}
	pos, err := c.Position([]kafka.TopicPartition{{Topic: &in, Partition: 0}})
	require.NoError(t, err)
	cgm, err := c.GetConsumerGroupMetadata()
	require.NoError(t, err)
	require.NoError(t, p.SendOffsetsToTransaction(ctx, pos, cgm))
	require.NoError(t, p.CommitTransaction(ctx))

	committed, err := c.Committed([]kafka.TopicPartition{{Topic: &in, Partition: 0}}, 10000)
	require.NoError(t, err)
	assert.EqualValues(t, 50, committed[0].Offset, "the group's offset, committed by the transaction")
	assert.Equal(t, outputs, readValues(t, bs, out, "read_committed"))
}

// javaHashCode is Java's String.hashCode, by which Kafka places a transactional.id on a partition of
// __transaction_state (abs(hash) % partitions; Kafka's Utils.abs maps MinInt32 to 0).
func javaHashCode(s string) int32 {
	var h int32
	for _, r := range s { // ASCII ids: one UTF-16 unit per rune
		h = 31*h + r
	}
	return h
}

// The 3-node cluster: kill -9 the broker that coordinates the transaction while it is open. The
// producer commits, or aborts when the commit says so, and what read_committed consumers see matches
// what the API reported: all of it after a commit, none after an abort.
func TestTransactionCoordinatorKilledMidTransaction(t *testing.T) {
	c := cluster3(t)
	topic := topicName(t, "")
	createTopic(t, c.bootstrap, topic, 1, 3, map[string]string{"min.insync.replicas": "2"})
	id := topic
	p := txnProducer(t, c.bootstrap, id, kafka.ConfigMap{"message.timeout.ms": 120_000, "transaction.timeout.ms": 120_000})
	h := javaHashCode(id) // InitTransactions made __transaction_state, with kafka.sh's 10 partitions
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	coordinator := partitionLeader(t, c.bootstrap, "__transaction_state", h%10)
	node := strconv.Itoa(int(coordinator))
	t.Logf("transaction %s is coordinated by broker %d", id, coordinator)
	t.Cleanup(func() {
		if _, err := c.run(t, 10*time.Second, "pid", node); err != nil {
			if _, err := c.run(t, 3*time.Minute, "restart", node); err != nil {
				t.Errorf("could not restart broker %s: %v", node, err)
			}
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	require.NoError(t, p.BeginTransaction())
	futs1, vals1 := produceValues(t, ctx, p, topic, "before", 500)
	waitAll(t, ctx, futs1)
	_, err := c.run(t, 30*time.Second, "kill", node)
	require.NoError(t, err)
	futs2, vals2 := produceValues(t, ctx, p, topic, "after", 500)

	start := time.Now()
	var outcome string
	for attempt := 1; ; attempt++ {
		err := p.CommitTransaction(ctx)
		if err == nil {
			outcome = "committed"
			break
		}
		t.Logf("commit attempt %d after %v: %v", attempt, time.Since(start).Round(time.Millisecond), err)
		switch {
		case aioproducer.TxnRequiresAbort(err):
			require.NoError(t, p.AbortTransaction(ctx))
			outcome = "aborted"
		case aioproducer.IsRetriable(err) && ctx.Err() == nil:
			continue
		default:
			t.Fatalf("commit: %v", err)
		}
		break
	}
	t.Logf("outcome after the coordinator's kill: %s, %v after the first commit", outcome, time.Since(start).Round(time.Millisecond))
	for i, f := range futs2 {
		select {
		case <-f.Done():
		default:
			t.Fatalf("message %d: future not done after the transaction ended", i)
		}
	}
	got := readValues(t, c.bootstrap, topic, "read_committed")
	if outcome == "committed" {
		assert.Equal(t, append(vals1, vals2...), got, "a committed transaction: all of it, once, in order")
	} else {
		assert.Empty(t, got, "an aborted transaction: none of it")
	}
	var fails int
	for _, f := range futs2 {
		if _, err := f.Wait(ctx); err != nil && !errors.Is(err, aioproducer.ErrTransactionAborted) {
			fails++
		}
	}
	t.Logf("messages produced after the kill that failed other than by the abort: %d", fails)
}

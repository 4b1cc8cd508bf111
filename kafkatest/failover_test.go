//go:build kafka

package kafkatest

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
)

// TestLeaderFailover runs 200k messages into a topic replicated 3 times (min.insync.replicas=2) on the
// 3-node cluster, kills the leader of partition 0 with SIGKILL while messages are in flight, and
// restarts it part way through. Every future must resolve; every message reported delivered must be
// in the log exactly once, at its reported offset; failed messages are counted (and may be in the log
// at most once, when their outcome was unknown); order per key holds among the delivered ones.
func TestLeaderFailover(t *testing.T) {
	c := cluster3(t)
	const partitions = 6
	total := 200_000
	if testing.Short() {
		total = 30_000
	}
	topic := topicName(t, "")
	createTopic(t, c.bootstrap, topic, partitions, 3, map[string]string{"min.insync.replicas": "2"})
	leader := partitionLeader(t, c.bootstrap, topic, 0)
	node := strconv.Itoa(int(leader))
	t.Logf("partition 0 of %s is led by broker %d", topic, leader)
	// Whatever happens, leave the cluster whole for the tests after this one.
	t.Cleanup(func() {
		if _, err := c.run(t, 10*time.Second, "pid", node); err != nil {
			if _, err := c.run(t, 3*time.Minute, "restart", node); err != nil {
				t.Errorf("could not restart broker %s: %v", node, err)
			}
		}
	})

	errLines := &errorLines{}
	p := newProducer(t, c.bootstrap, kafka.ConfigMap{
		"message.timeout.ms": 120_000,
		"linger.ms":          5,
	}, aioproducer.WithLogger(slog.New(errLines.tee(t))))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	msgs := make([]*aioproducer.Message, total)
	for i := range msgs {
		id := strconv.Itoa(i)
		msgs[i] = &aioproducer.Message{
			Topic:   topic,
			Key:     []byte("k" + strconv.Itoa(i%1000)),
			Value:   []byte(fmt.Sprintf("failover message %07d with some padding to make it less tiny", i)),
			Headers: []aioproducer.Header{{Key: "id", Value: []byte(id)}},
		}
	}
	futs := make([]*aioproducer.Future, total)
	rejected := 0
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			f, err := p.Produce(ctx, msgs[i])
			if err != nil {
				if rejected < 5 {
					t.Logf("Produce %d refused: %v", i, err)
				}
				rejected++
				continue
			}
			futs[i] = f
		}
	}

	start := time.Now()
	phase1, phase2 := total*35/100, total*65/100
	produce(0, phase1)
	inFlight := p.Stats()
	_, err := c.run(t, 30*time.Second, "kill", node)
	require.NoError(t, err, "kill broker %s", node)
	killedAt := time.Now()
	t.Logf("killed broker %s after %v with %d messages held by the producer (%d delivered)", node,
		time.Since(start).Round(time.Millisecond), inFlight.HeldMessages, inFlight.Delivered)
	produce(phase1, phase2)

	// Restart only once the cluster has moved the partition to another leader, so that the producer
	// has to follow a real leader change (not merely reconnect to the same broker).
	newLeader := waitLeader(t, c.bootstrap, topic, 0, leader, 60*time.Second)
	t.Logf("partition 0 moved to broker %d %v after the kill", newLeader, time.Since(killedAt).Round(time.Millisecond))

	var restartErr error
	var restarted sync.WaitGroup
	restarted.Add(1)
	go func() {
		defer restarted.Done()
		t0 := time.Now()
		_, restartErr = c.run(t, 3*time.Minute, "restart", node)
		if restartErr == nil {
			t.Logf("broker %s back after %v", node, time.Since(t0).Round(time.Millisecond))
		}
	}()
	produce(phase2, total)
	restarted.Wait()
	require.NoError(t, restartErr, "restart broker %s", node)

	// Every future must resolve: librdkafka retries until message.timeout.ms at most.
	delivered := make([]aioproducer.Delivery, total)
	ok := make([]bool, total)
	failedCodes := map[string]int{}
	nDelivered, nFailed, nUnknown := 0, 0, 0
	var examples []string
	for i, f := range futs {
		if f == nil {
			continue
		}
		d, err := f.Wait(ctx)
		if ctx.Err() != nil {
			t.Fatalf("future %d unresolved after %v", i, time.Since(start))
		}
		if err == nil {
			delivered[i], ok[i] = d, true
			nDelivered++
			continue
		}
		nFailed++
		if aioproducer.IsOutcomeUnknown(err) {
			nUnknown++
		}
		code, _ := kafkaCode(err)
		failedCodes[code.String()]++
		if len(examples) < 5 {
			examples = append(examples, fmt.Sprintf("message %d: %v", i, err))
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d messages in %v: %d delivered, %d failed (%d with unknown outcome), %d refused by Produce; failures by code %v",
		total, elapsed.Round(time.Millisecond), nDelivered, nFailed, nUnknown, rejected, failedCodes)
	for _, e := range examples {
		t.Logf("  %s", e)
	}
	t.Logf("stats %+v", p.Stats())
	require.NoError(t, p.Close(ctx))
	// What heals by itself logs no ERROR line: a failover that lost nothing needed no human.
	if nFailed == 0 && rejected == 0 {
		assert.Empty(t, errLines.lines(), "ERROR lines during a failover that lost no message")
	}

	// Read everything back.
	got := consumeAll(t, c.bootstrap, topic, 5*time.Minute)
	count := make([]int, total)
	problems := &capped{t: t, max: 20}
	lastByKey := map[string]int{}
	for _, m := range got {
		idb, _ := m.Header("id")
		id, err := strconv.Atoi(string(idb))
		if err != nil || id < 0 || id >= total {
			problems.errorf("message with bad id header %q at %v", idb, m)
			continue
		}
		count[id]++
		if ok[id] {
			d := delivered[id]
			if d.Partition != m.Partition || d.Offset != m.Offset {
				problems.errorf("message %d: delivered at %d@%d, read at %d@%d", id, d.Partition, d.Offset,
					m.Partition, m.Offset)
			}
			if prev, seen := lastByKey[string(m.Key)]; seen && prev > id {
				problems.errorf("key %s: delivered message %d after %d: order lost", m.Key, id, prev)
			}
			lastByKey[string(m.Key)] = id
		}
	}
	var lost, dups, failedPresent, failedDup []int
	for id, n := range count {
		switch {
		case ok[id] && n == 0:
			lost = append(lost, id)
		case ok[id] && n > 1:
			dups = append(dups, id)
		case !ok[id] && n == 1:
			failedPresent = append(failedPresent, id)
		case !ok[id] && n > 1:
			failedDup = append(failedDup, id)
		}
	}
	t.Logf("read back %d records: delivered & present once %d, delivered but lost %d, delivered & duplicated %d, failed but present %d, failed & duplicated %d",
		len(got), nDelivered-len(lost)-len(dups), len(lost), len(dups), len(failedPresent), len(failedDup))
	for what, ids := range map[string][]int{"delivered but not in the log": lost, "delivered but duplicated": dups, "failed but in the log more than once": failedDup} {
		if len(ids) > 0 {
			sort.Ints(ids)
			problems.errorf("%d messages %s, e.g. %v", len(ids), what, ids[:min(len(ids), 10)])
		}
	}
	problems.done("failover read-back")
	require.Zero(t, rejected, "Produce must not refuse messages while a broker fails over")
}

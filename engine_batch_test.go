package aioproducer

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// AIOPRODUCER_TEST_ENGINE=batch|kafka runs every test of this binary (the package's own and the
// aioproducer_test ones) on that engine: it sets the default engine, so producers the tests create
// without WithEngine use it too.
func init() {
	if v := os.Getenv("AIOPRODUCER_TEST_ENGINE"); v != "" {
		e, err := ParseEngine(v)
		if err != nil {
			panic("AIOPRODUCER_TEST_ENGINE: " + err.Error())
		}
		defaultEngine = e
	}
}

func newBatchTestProducer(t *testing.T, bootstrap string, extra kafka.ConfigMap, opts ...Option) *Producer {
	t.Helper()
	return newTestProducer(t, bootstrap, extra, append([]Option{WithEngine(EngineBatch)}, opts...)...)
}

func TestBatchEngineIsSelected(t *testing.T) {
	mc := newMockCluster(t, 1)
	p := newBatchTestProducer(t, mc.BootstrapServers(), nil)
	_, ok := p.eng.(*batchEngine)
	require.True(t, ok, "engine %T", p.eng)
}

func TestWithEngineRefusesAnUnknownEngine(t *testing.T) {
	_, err := New(kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:1"}, WithEngine(Engine(42)))
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "WithEngine", ce.Key)
}

func TestBatchEngineNamesTheRefusedKey(t *testing.T) {
	for key, v := range map[string]any{"no.such.key": 1, "batch.num.messages": "many"} {
		_, err := New(kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:1", key: v}, WithEngine(EngineBatch))
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, key)
		assert.Equal(t, key, ce.Key)
		var ke kafka.Error
		require.ErrorAs(t, err, &ke, key)
		assert.NotEqual(t, kafka.ErrNoError, ke.Code())
	}
}

func TestBatchEngineDeliversHeadersKeysAndTimestamps(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("hk", 3, 1))
	p := newBatchTestProducer(t, mc.BootstrapServers(), nil)
	ctx := ctxTimeout(t, 30*time.Second)
	ts := time.UnixMilli(1_700_000_000_123)
	msgs := []*Message{
		{Topic: "hk", Key: []byte("k1"), Value: []byte("v1"), Timestamp: ts,
			Headers: []Header{{Key: "a", Value: []byte("1")}, {Key: "null"}, {Key: "empty", Value: []byte{}}}},
		{Topic: "hk", Value: []byte("no key"), Partition: ExplicitPartition(2), Timestamp: ts},
		{Topic: "hk", Key: []byte{}, Value: nil, Partition: ExplicitPartition(1), Timestamp: ts},
	}
	futs, err := p.ProduceBatch(ctx, msgs)
	require.NoError(t, err)
	for i, f := range futs {
		d, err := f.Wait(ctx)
		require.NoError(t, err, "message %d", i)
		assert.Equal(t, ts, d.Timestamp)
	}
	got := consumeAll(t, mc.BootstrapServers(), "hk", len(msgs))
	byValue := map[string]consumed{}
	for _, c := range got {
		byValue[string(c.Value)] = c
		assert.Equal(t, ts.UnixMilli(), c.Timestamp.UnixMilli())
	}
	c := byValue["v1"]
	assert.Equal(t, []byte("k1"), c.Key)
	require.Len(t, c.Headers, 3)
	assert.Equal(t, "a", c.Headers[0].Key)
	assert.Equal(t, []byte("1"), c.Headers[0].Value)
	assert.Nil(t, c.Headers[1].Value)
	assert.Equal(t, "empty", c.Headers[2].Key)
	assert.Nil(t, byValue["no key"].Key)
	assert.Equal(t, int32(2), byValue["no key"].Partition)
}

func TestBatchEngineQueueFullKeepsOrder(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("qf", 1, 1))
	p := newBatchTestProducer(t, mc.BootstrapServers(), kafka.ConfigMap{"queue.buffering.max.messages": 50}, WithBatchSize(200))
	ctx := ctxTimeout(t, 60*time.Second)
	const n = 2000
	msgs := make([]*Message, n)
	for i := range msgs {
		msgs[i] = &Message{Topic: "qf", Key: []byte("k"), Value: []byte(fmt.Sprint(i))}
	}
	futs, err := p.ProduceBatch(ctx, msgs)
	require.NoError(t, err)
	last := int64(-1)
	for i, f := range futs {
		d, err := f.Wait(ctx)
		require.NoError(t, err, "message %d", i)
		require.Greater(t, d.Offset, last, "message %d out of order", i)
		last = d.Offset
	}
	assert.Positive(t, p.Stats().QueueFullWaits, "the small librdkafka queue filled")
}

// TestBatchEngineSteadyStateAllocations: in steady state, the batch engine makes at most 0.1 heap
// allocations per message with Produce + Future.Wait (issue #5's target: the Futures, 16 to a block),
// and at most 0.02 with ProduceFunc or ProduceChan, which allocate nothing per message (what is left is
// per batch), measured over bursts of 1000.
func TestBatchEngineSteadyStateAllocations(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation measurement: not in -short, and meaningless under -race")
	}
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("alloc", 1, 1))
	p := newBatchTestProducer(t, mc.BootstrapServers(), nil)
	ctx := context.Background()
	const burst = 1000
	msgs := make([]Message, burst)
	for i := range msgs {
		msgs[i] = Message{Topic: "alloc", Value: make([]byte, 100)}
	}
	futs := make([]*Future, burst)
	var done sync.WaitGroup
	onDelivery := func(Delivery, error) { done.Done() }
	results := make(chan Result, burst)
	for _, tc := range []struct {
		name string
		max  float64
		run  func()
	}{
		{"Produce + Future.Wait", 0.1, func() {
			for i := range msgs {
				f, err := p.Produce(ctx, &msgs[i])
				require.NoError(t, err)
				futs[i] = f
			}
			for _, f := range futs {
				_, err := f.Wait(ctx)
				require.NoError(t, err)
			}
		}},
		{"ProduceFunc", 0.02, func() {
			done.Add(burst)
			for i := range msgs {
				require.NoError(t, p.ProduceFunc(ctx, &msgs[i], onDelivery))
			}
			done.Wait()
		}},
		{"ProduceChan", 0.02, func() {
			for i := range msgs {
				require.NoError(t, p.ProduceChan(ctx, &msgs[i], results))
			}
			for range burst {
				require.NoError(t, (<-results).Err)
			}
		}},
	} {
		tc.run() // warm the pools
		perMsg := testing.AllocsPerRun(20, tc.run) / burst
		t.Logf("batch engine, %s: %.3f allocs per message", tc.name, perMsg)
		assert.LessOrEqual(t, perMsg, tc.max, "%s: heap allocations per message", tc.name)
	}
}

// raiseTestFatal raises a fatal librdkafka error in p's engine, whichever it is: tests that raise one
// should call it instead of asserting p.eng to *kafkaEngine, so that they run on both engines.
func raiseTestFatal(p *Producer, code kafka.ErrorCode, reason string) {
	switch e := p.eng.(type) {
	case *kafkaEngine:
		e.kp.TestFatalError(code, reason)
	case *batchEngine:
		e.testFatalError(code, reason)
	default:
		panic(fmt.Sprintf("raiseTestFatal: engine %T", p.eng))
	}
}

// The batch engine hands librdkafka the strings New checked, converted as confluent-kafka-go converts
// them: a list joined by commas, the go.* keys left out, default.topic.config flattened.
func TestLibrdkafkaSettingsConvertValuesAsTheyWereChecked(t *testing.T) {
	kv := librdkafkaSettings(kafka.ConfigMap{
		"bootstrap.servers":    []kafka.ConfigValue{"127.0.0.1:1", "127.0.0.1:2"},
		"enable.idempotence":   true,
		"linger.ms":            5,
		"go.delivery.reports":  true,
		"default.topic.config": kafka.ConfigMap{"message.timeout.ms": "3000"},
	})
	assert.Equal(t, [][2]string{
		{"bootstrap.servers", "127.0.0.1:1,127.0.0.1:2"},
		{"enable.idempotence", "true"},
		{"linger.ms", "5"},
		{"message.timeout.ms", "3000"},
	}, kv)
}

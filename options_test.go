package aioproducer

import (
	"errors"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seed-f937cf20/aioproducer/internal/rdk"
)

func TestNewRefusesInvalidConfigurationNamingTheKey(t *testing.T) {
	const bs = "127.0.0.1:1"
	tests := []struct {
		name string
		cm   kafka.ConfigMap
		opts []Option
		key  string
	}{
		{"missing bootstrap.servers", kafka.ConfigMap{}, nil, "bootstrap.servers"},
		{"unknown librdkafka key", kafka.ConfigMap{"bootstrap.servers": bs, "no.such.key": 1}, nil, "no.such.key"},
		{"invalid librdkafka value", kafka.ConfigMap{"bootstrap.servers": bs, "batch.num.messages": "many"}, nil, "batch.num.messages"},
		{"idempotence with acks=0", kafka.ConfigMap{"bootstrap.servers": bs, "acks": 0, "enable.idempotence": true}, nil, "acks"},
		{"idempotence with acks=1", kafka.ConfigMap{"bootstrap.servers": bs, "acks": "1", "enable.idempotence": "true"}, nil, "acks"},
		{"managed go setting", kafka.ConfigMap{"bootstrap.servers": bs, "go.delivery.report.fields": "all"}, nil, "go.delivery.report.fields"},
		{"experimental batch producer", kafka.ConfigMap{"bootstrap.servers": bs, "go.batch.producer": true}, nil, "go.batch.producer"},
		{"batch size 0", kafka.ConfigMap{"bootstrap.servers": bs}, []Option{WithBatchSize(0)}, "WithBatchSize"},
		{"no workers", kafka.ConfigMap{"bootstrap.servers": bs}, []Option{WithWorkers(0)}, "WithWorkers"},
		{"too many workers", kafka.ConfigMap{"bootstrap.servers": bs}, []Option{WithWorkers(maxWorkers + 1)}, "WithWorkers"},
		{"no buffered messages", kafka.ConfigMap{"bootstrap.servers": bs}, []Option{WithMaxBuffered(0, 1)}, "WithMaxBuffered"},
		{"no buffered bytes", kafka.ConfigMap{"bootstrap.servers": bs}, []Option{WithMaxBuffered(1, 0)}, "WithMaxBuffered"},
		{"nil logger", kafka.ConfigMap{"bootstrap.servers": bs}, []Option{WithLogger(nil)}, "WithLogger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			p, err := New(tt.cm, tt.opts...)
			require.Error(t, err)
			assert.Nil(t, p)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.key, ce.Key)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.key)
		})
	}
}

func TestLibrdkafkaRefusalUnwrapsToKafkaError(t *testing.T) {
	_, err := New(kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:1", "no.such.key": 1})
	var ke kafka.Error
	require.ErrorAs(t, err, &ke)
	assert.NotEqual(t, kafka.ErrNoError, ke.Code())
}

func TestDefaultsAreSafe(t *testing.T) {
	tests := []struct {
		name     string
		user     kafka.ConfigMap
		wantAcks any
		wantIdem any // nil: left to librdkafka (off)
	}{
		{"nothing set", kafka.ConfigMap{}, "all", true},
		{"acks=all", kafka.ConfigMap{"acks": "all"}, "all", true},
		{"acks=-1", kafka.ConfigMap{"acks": -1}, -1, true},
		{"acks=1 leaves idempotence off", kafka.ConfigMap{"acks": 1}, 1, nil},
		{"idempotence off", kafka.ConfigMap{"enable.idempotence": false}, "all", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.user["bootstrap.servers"] = "127.0.0.1:1"
			keys := len(tt.user)
			cm, _, err := kafkaConfig(tt.user)
			require.NoError(t, err)
			assert.Equal(t, tt.wantAcks, cm["acks"])
			assert.Equal(t, tt.wantIdem, cm["enable.idempotence"])
			assert.Len(t, tt.user, keys, "the caller's map was modified")
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	c := defaultConfig()
	require.NoError(t, c.validate())
	assert.Equal(t, DefaultBatchSize, c.batchSize)
	assert.Equal(t, DefaultWorkers(), c.workers)
	assert.Equal(t, DefaultMaxBufferedMsgs, c.maxMsgs)
	assert.EqualValues(t, DefaultMaxBufferedSize, c.maxBytes)
	assert.NotNil(t, c.logger)
}

func TestErrorHelpersTellErrorsApart(t *testing.T) {
	timedOut := &DeliveryError{Topic: "t", Err: kafka.NewError(kafka.ErrMsgTimedOut, "timed out", false)}
	purgedInFlight := &DeliveryError{Topic: "t", Err: kafka.NewError(kafka.ErrPurgeInflight, "purged", false)}
	purgedQueued := &DeliveryError{Topic: "t", Err: kafka.NewError(kafka.ErrPurgeQueue, "purged", false)}
	tooLarge := &DeliveryError{Topic: "t", Err: kafka.NewError(kafka.ErrMsgSizeTooLarge, "too large", false)}
	fatalKE := kafka.NewError(kafka.ErrOutOfOrderSequenceNumber, "oos", true)
	fatal := &DeliveryError{Topic: "t", Err: kafka.NewError(kafka.ErrPurgeQueue, "purged", false), cause: &fatalError{err: fatalKE}}

	assert.True(t, IsOutcomeUnknown(timedOut))
	assert.True(t, IsOutcomeUnknown(purgedInFlight))
	assert.False(t, IsOutcomeUnknown(purgedQueued))
	assert.False(t, IsOutcomeUnknown(tooLarge))
	assert.False(t, IsOutcomeUnknown(errors.New("other")))

	assert.True(t, IsFatal(fatal))
	assert.True(t, IsFatal(&fatalError{err: fatalKE}))
	assert.False(t, IsFatal(tooLarge))
	assert.ErrorIs(t, fatal, ErrFatal)

	assert.True(t, IsRetriable(kafka.NewError(kafka.ErrNotEnoughReplicas, "retry", false)) ||
		!kafka.NewError(kafka.ErrNotEnoughReplicas, "retry", false).IsRetriable(),
		"IsRetriable follows librdkafka's retriable flag")
	assert.False(t, IsRetriable(fatal))
	assert.False(t, IsRetriable(ErrClosed))

	var ke kafka.Error
	require.ErrorAs(t, tooLarge, &ke)
	assert.Equal(t, kafka.ErrMsgSizeTooLarge, ke.Code())
	assert.Contains(t, tooLarge.Error(), `aioproducer: delivery to "t" failed`)
}

// TestLibrdkafkaQueueNeverHoldsTheBufferBack: New sizes librdkafka's queue from WithMaxBuffered where
// the configuration leaves it unset, and lowers the buffer to a queue the configuration sets smaller,
// so that librdkafka's queue is never full while the buffer has room.
func TestLibrdkafkaQueueNeverHoldsTheBufferBack(t *testing.T) {
	tests := []struct {
		name             string
		user             kafka.ConfigMap
		msgs             int
		bytes            int64
		wantQueueMsgs    any // what cm says; nil: the user's value, left alone
		wantQueueKBytes  any
		wantBufMsgs      int
		wantBufBytes     int64
		defaultTopicConf bool
	}{
		{"defaults: librdkafka's larger defaults are kept", nil, DefaultMaxBufferedMsgs, DefaultMaxBufferedSize,
			defaultQueueMsgs, defaultQueueKBytes, DefaultMaxBufferedMsgs, DefaultMaxBufferedSize, false},
		{"a larger buffer raises the queue, bytes rounded up to KiB", nil, 300_000, 3<<30 + 1,
			300_000, 3<<20 + 1, 300_000, 3<<30 + 1, false},
		{"the queue's maxima cap it", nil, 1 << 40, 1 << 50,
			maxQueueSetting, maxQueueSetting, maxQueueSetting, maxQueueSetting * 1024, false},
		{"a smaller queue lowers the buffer", kafka.ConfigMap{"queue.buffering.max.messages": 10, "queue.buffering.max.kbytes": "64"},
			1000, 1 << 20, nil, nil, 10, 64 << 10, false},
		{"a larger queue leaves the buffer", kafka.ConfigMap{"queue.buffering.max.messages": 5000, "queue.buffering.max.kbytes": 4096},
			1000, 1 << 20, nil, nil, 1000, 1 << 20, false},
		{"no message limit in librdkafka leaves the buffer", kafka.ConfigMap{"queue.buffering.max.messages": 0},
			1000, 1 << 20, nil, defaultQueueKBytes, 1000, 1 << 20, false},
		{"in default.topic.config too", kafka.ConfigMap{"queue.buffering.max.messages": 10},
			1000, 1 << 20, nil, defaultQueueKBytes, 10, 1 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:1"}
			if tt.defaultTopicConf {
				user["default.topic.config"] = tt.user
			} else {
				for k, v := range tt.user {
					user[k] = v
				}
			}
			cm, ks, err := kafkaConfig(user)
			require.NoError(t, err)
			cfg := defaultConfig()
			WithMaxBuffered(tt.msgs, tt.bytes)(&cfg)
			cfg.kafka = ks
			sizeQueue(cm, &cfg)
			for key, want := range map[string]any{"queue.buffering.max.messages": tt.wantQueueMsgs, "queue.buffering.max.kbytes": tt.wantQueueKBytes} {
				if want == nil {
					want = tt.user[key]
				}
				if tt.defaultTopicConf && tt.user[key] != nil {
					assert.NotContains(t, cm, key, "set in default.topic.config: not set again")
					continue
				}
				assert.EqualValues(t, want, cm[key], key)
			}
			assert.Equal(t, tt.wantBufMsgs, cfg.maxMsgs, "the buffer's messages")
			assert.Equal(t, tt.wantBufBytes, cfg.maxBytes, "the buffer's bytes")
			for _, kv := range librdkafkaSettings(cm) {
				require.NoError(t, rdk.CheckSetting(kv[0], kv[1]), "librdkafka takes %s=%s", kv[0], kv[1])
			}
		})
	}
}

// TestTryProduceFailsWhenASmallerLibrdkafkaQueueIsFull: with queue.buffering.max.messages=10 the buffer
// holds 10 messages, whatever WithMaxBuffered says: with the broker down, the 11th TryProduce fails
// with ErrBufferFull instead of waiting in the producer for librdkafka's room.
func TestTryProduceFailsWhenASmallerLibrdkafkaQueueIsFull(t *testing.T) {
	mc := newMockCluster(t, 1)
	require.NoError(t, mc.CreateTopic("small-queue", 1, 1))
	p, err := New(kafka.ConfigMap{"bootstrap.servers": mc.BootstrapServers(), "queue.buffering.max.messages": 10},
		WithLogger(quietLogger))
	require.NoError(t, err)
	require.NoError(t, mc.SetBrokerDown(1))
	var futs []*Future
	for i := range 10 {
		f, err := p.TryProduce(&Message{Topic: "small-queue", Value: []byte{byte(i)}})
		require.NoError(t, err, "message %d of 10", i)
		futs = append(futs, f)
	}
	_, err = p.TryProduce(&Message{Topic: "small-queue", Value: []byte("11th")})
	require.ErrorIs(t, err, ErrBufferFull)
	assert.EqualValues(t, 10, p.Stats().HeldMessages)
	assert.Zero(t, p.Stats().QueueFullWaits, "no worker waited for librdkafka's room")

	require.NoError(t, mc.SetBrokerUp(1))
	require.NoError(t, p.Close(ctxTimeout(t, 30*time.Second)))
	for i, f := range futs {
		_, err := f.Wait(t.Context())
		require.NoError(t, err, "message %d", i)
	}
}

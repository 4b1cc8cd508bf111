package aioproducer

import (
	"errors"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
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

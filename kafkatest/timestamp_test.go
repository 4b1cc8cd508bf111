//go:build kafka

package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
)

// On a topic with message.timestamp.type=LogAppendTime the broker replaces the CreateTime with its own
// clock. The producer reports the broker's time in Delivery.Timestamp, the time the log holds (the raw
// kafka.Producer of confluent-kafka-go does not pass it on). librdkafka's mock cluster answers a fake
// LogAppendTime, so only a real broker can show this.
func TestDeliveryTimestampIsTheBrokersLogAppendTime(t *testing.T) {
	bs := singleBroker(t)
	topic := topicName(t, "")
	createTopic(t, bs, topic, 1, 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := newProducer(t, bs, nil)

	sent := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	before := time.Now().Add(-time.Minute) // the broker's clock is this machine's
	f, err := p.Produce(ctx, &aioproducer.Message{Topic: topic, Value: []byte("stamped"), Timestamp: sent})
	require.NoError(t, err)
	d, err := f.Wait(ctx)
	require.NoError(t, err)

	got := consumeAll(t, bs, topic, time.Minute)
	require.Len(t, got, 1)
	require.Equal(t, kafka.TimestampLogAppendTime, got[0].TimestampType)
	logTime := got[0].Timestamp
	assert.True(t, logTime.After(before), "the log holds the broker's time, %v", logTime)
	assert.Equal(t, logTime.UnixMilli(), d.Timestamp.UnixMilli(), "Delivery.Timestamp is what the log holds")
	require.NoError(t, p.Close(ctx))
}

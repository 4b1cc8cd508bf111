package aiootel

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/seed-f937cf20/aioproducer"
)

var (
	errType   = attribute.Key("error.type")
	dest      = attribute.Key("messaging.destination.name")
	operation = attribute.Key("messaging.operation.name")
)

func TestMeterRecordsOutcomes(t *testing.T) {
	mp, r := newMetrics(t)
	m := NewMeter(WithMeterProvider(mp), WithDurationBuckets([]float64{0.01, 1}))
	ctx := context.Background()
	a := &aioproducer.Message{Topic: "a"}
	for range 3 {
		m.OnProduce(ctx, a)
	}
	m.OnDelivery(aioproducer.DeliveryEvent{Message: a, Delivery: aioproducer.Delivery{Topic: "a"}, Latency: 5 * time.Millisecond})
	m.OnDelivery(aioproducer.DeliveryEvent{Message: a, Err: kafka.NewError(kafka.ErrMsgTimedOut, "", false), Latency: 2 * time.Second})
	m.OnDelivery(aioproducer.DeliveryEvent{Message: a, Err: fmt.Errorf("%w", aioproducer.ErrBufferFull), Refused: true})
	m.OnBatch(aioproducer.BatchEvent{Topic: "a", Messages: 2, Bytes: 300})
	m.OnError(kafka.NewError(kafka.ErrTransport, "", false))

	got := collect(t, r)
	n, _ := sum(t, got["aioproducer.messages.produced"], dest.String("a"))
	assert.EqualValues(t, 3, n)
	n, pts := sum(t, got["messaging.client.sent.messages"], dest.String("a"), operation.String("send"))
	assert.EqualValues(t, 2, n)
	assert.Equal(t, 2, pts, "a point without error.type and one with it")
	n, _ = sum(t, got["messaging.client.sent.messages"], errType.String("local_message_timed_out"))
	assert.EqualValues(t, 1, n)
	n, _ = sum(t, got["aioproducer.messages.refused"], errType.String("buffer_full"))
	assert.EqualValues(t, 1, n)
	n, _ = sum(t, got["aioproducer.client.errors"], errType.String("local_broker_transport_failure"))
	assert.EqualValues(t, 1, n)
	assert.EqualValues(t, 2, histCount(t, got["messaging.client.operation.duration"], dest.String("a")))
	assert.EqualValues(t, 1, histCount(t, got["aioproducer.batch.messages"]))
	assert.EqualValues(t, 1, histCount(t, got["aioproducer.batch.size"]))

	d := got["messaging.client.operation.duration"]
	assert.Equal(t, "s", d.Unit)
	h := d.Data.(metricdata.Histogram[float64])
	require.NotEmpty(t, h.DataPoints)
	assert.Equal(t, []float64{0.01, 1}, h.DataPoints[0].Bounds)
}

package serde

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/serde/internal/fakeregistry"
)

// Payment is the record type of the Avro and JSON Schema tests.
type Payment struct {
	ID     string  `avro:"id" json:"id"`
	Amount float64 `avro:"amount" json:"amount"`
	Note   string  `avro:"note" json:"note"`
}

// payment returns the i-th test payment.
func payment(i int) Payment {
	return Payment{ID: fmt.Sprintf("p-%d", i), Amount: float64(i) + 0.25, Note: fmt.Sprintf("note %d: ünïcode", i)}
}

// mockClient returns a client of confluent-kafka-go's in-memory mock registry: a fresh registry per
// call, shared by everything that uses the returned client.
func mockClient(t testing.TB) schemaregistry.Client {
	t.Helper()
	c, err := schemaregistry.NewClient(schemaregistry.NewConfig("mock://" + t.Name()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// fakeRegistry starts an HTTP registry on 127.0.0.1, stopped at cleanup; unhandled requests fail the
// test.
func fakeRegistry(t testing.TB) *fakeregistry.Server {
	t.Helper()
	fr := fakeregistry.New()
	t.Cleanup(func() {
		fr.Close()
		require.Empty(t, fr.Unhandled(), "requests the fake registry did not speak")
	})
	return fr
}

// httpClient returns a registry client for url (a fresh cache each time), closed at cleanup.
func httpClient(t testing.TB, url string) schemaregistry.Client {
	t.Helper()
	c, err := schemaregistry.NewClient(schemaregistry.NewConfig(url))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// quietLogger discards the producer's log.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// brokerEnv names a real Kafka cluster for the read-back tests (make test-kafka sets it); without it
// they run on librdkafka's in-process mock cluster.
const brokerEnv = "KAFKA_BOOTSTRAP"

// cluster returns a cluster's bootstrap servers and topics of one partition each, named after names:
// on the mock cluster, names themselves; on the real cluster of brokerEnv, names with a suffix of the
// test's own, created now and deleted at cleanup.
func cluster(t testing.TB, names ...string) (string, []string) {
	t.Helper()
	bootstrap := os.Getenv(brokerEnv)
	if bootstrap == "" {
		mc, err := kafka.NewMockCluster(1)
		require.NoError(t, err)
		t.Cleanup(mc.Close)
		for _, topic := range names {
			require.NoError(t, mc.CreateTopic(topic, 1, 1))
		}
		return mc.BootstrapServers(), names
	}
	ac, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	require.NoError(t, err)
	t.Cleanup(ac.Close)
	suffix := fmt.Sprintf("-%d", time.Now().UnixNano())
	topics := make([]string, len(names))
	specs := make([]kafka.TopicSpecification, len(names))
	for i, n := range names {
		topics[i] = "serde-" + n + suffix
		specs[i] = kafka.TopicSpecification{Topic: topics[i], NumPartitions: 1, ReplicationFactor: 1}
	}
	ctx := ctxTimeout(t, 60*time.Second)
	res, err := ac.CreateTopics(ctx, specs, kafka.SetAdminOperationTimeout(30*time.Second))
	require.NoError(t, err)
	for _, r := range res {
		require.Equal(t, kafka.ErrNoError, r.Error.Code(), "create %s: %v", r.Topic, r.Error)
	}
	t.Cleanup(func() { _, _ = ac.DeleteTopics(ctxTimeout(t, 30*time.Second), topics) })
	t.Logf("%s=%s: topics %v", brokerEnv, bootstrap, topics)
	return bootstrap, topics
}

// newProducer returns an aioproducer Producer for bootstrap, closed at cleanup.
func newProducer(t testing.TB, bootstrap string) *aioproducer.Producer {
	t.Helper()
	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap}, aioproducer.WithLogger(quietLogger))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, p.Close(ctx))
	})
	return p
}

// record is a message read back from the cluster.
type record struct {
	Key, Value []byte
	Headers    []kafka.Header
	Offset     int64
}

// readBack reads n messages of topic's partition 0 from the beginning.
func readBack(t testing.TB, bootstrap, topic string, n int) []record {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"group.id":           "readback",
		"enable.auto.commit": false,
	})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}))
	var out []record
	deadline := time.Now().Add(60 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			out = append(out, record{Key: e.Key, Value: e.Value, Headers: e.Headers, Offset: int64(e.TopicPartition.Offset)})
		case kafka.Error:
			if e.IsFatal() {
				t.Fatalf("consumer: %v", e)
			}
		}
	}
	require.Len(t, out, n, "messages read back from %s", topic)
	return out
}

// ctxTimeout is a context for one test step.
func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

package serde

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
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

// registryEnv names a real Schema Registry by the base URL of its Confluent API (make test-serde starts
// Apicurio Registry with scripts/registry.sh and sets it to http://127.0.0.1:PORT/apis/ccompat/v7).
// Without it, the tests that need a registry over HTTP use the fake, and the unit tests confluent's
// mock:// registry.
const registryEnv = "SCHEMA_REGISTRY_URL"

// realRegistry returns the URL of registryEnv ("" when unset).
func realRegistry() string { return os.Getenv(registryEnv) }

// needRealRegistry returns the URL of registryEnv, or skips the test: it shows what only a real
// registry does (compatibility checks).
func needRealRegistry(t testing.TB) string {
	t.Helper()
	u := realRegistry()
	if u == "" {
		t.Skipf("needs a real Schema Registry: set %s (make test-serde starts one)", registryEnv)
	}
	return u
}

// registry returns a Schema Registry over HTTP, stopped at cleanup: the fake, or, when registryEnv
// names a real registry, a proxy in front of it that counts the requests as the fake does.
func registry(t testing.TB) *fakeregistry.Server {
	t.Helper()
	u := realRegistry()
	if u == "" {
		return fakeRegistry(t)
	}
	fr, err := fakeregistry.NewProxy(u)
	require.NoError(t, err)
	t.Cleanup(fr.Close)
	t.Logf("%s=%s: the registry is real", registryEnv, u)
	return fr
}

// testClient returns a registry client for the unit tests: of confluent's mock:// registry, or of
// the real registry of registryEnv (through registry's proxy: closing it closes the client's
// connections, which confluent's client leaves open).
func testClient(t testing.TB) schemaregistry.Client {
	t.Helper()
	if realRegistry() != "" {
		return httpClient(t, registry(t).URL())
	}
	return mockClient(t)
}

// uniques numbers the names that unique hands out.
var uniques atomic.Int64

// runID tells this run's subjects from those of earlier runs on the same registry.
var runID = time.Now().UnixNano()

// unique returns topic itself on a registry of the test's own (mock:// or the fake), and topic with a
// suffix of its own on a real registry, which keeps its subjects (<topic>-key, <topic>-value) from one
// test and one run to the next.
func unique(topic string) string {
	if realRegistry() == "" {
		return topic
	}
	return fmt.Sprintf("%s-%d-%d", topic, runID, uniques.Add(1))
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
// on the mock cluster, unique(name); on the real cluster of brokerEnv, names with a suffix of the
// test's own, created now and deleted at cleanup.
func cluster(t testing.TB, names ...string) (string, []string) {
	t.Helper()
	bootstrap := os.Getenv(brokerEnv)
	if bootstrap == "" {
		mc, err := kafka.NewMockCluster(1)
		require.NoError(t, err)
		t.Cleanup(mc.Close)
		topics := make([]string, len(names))
		for i, n := range names {
			topics[i] = unique(n)
			require.NoError(t, mc.CreateTopic(topics[i], 1, 1))
		}
		return mc.BootstrapServers(), topics
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

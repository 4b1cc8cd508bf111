// Command schemaregistry produces Avro records with aioproducer's typed producer and a Confluent Schema
// Registry, then reads them back and decodes them with confluent-kafka-go's Avro deserializer.
//
//	cd serde && go run ./examples/schemaregistry          # mock:// registry, in-process mock cluster
//	SCHEMA_REGISTRY_URL=http://localhost:8081 KAFKA_BOOTSTRAP=localhost:9092 go run ./examples/schemaregistry
//	SCHEMA_REGISTRY_URL=$(../scripts/registry.sh up) go run ./examples/schemaregistry   # Apicurio Registry
//
// SCHEMA_REGISTRY_URL names the registry (default "mock://example": confluent-kafka-go's in-memory
// registry, which lives in this process only; Apicurio's base URL ends in /apis/ccompat/v7); KAFKA_BOOTSTRAP the cluster (default: librdkafka's
// in-process mock cluster); KAFKA_TOPIC the topic (default "payments"; on a real cluster it must exist,
// or the brokers must create topics automatically). Either may be real while the other is not. The
// schema is registered under the subject "<topic>-value".
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	confluent "github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/avrov2"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/serde"
)

// Payment is the record: avrov2 derives its Avro schema from the struct and the "avro" tags.
type Payment struct {
	ID       string  `avro:"id"`
	Amount   float64 `avro:"amount"`
	Currency string  `avro:"currency"`
}

const closeTimeout = 10 * time.Second

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "schemaregistry:", err)
		os.Exit(1)
	}
}

func run() error {
	registryURL := envOr("SCHEMA_REGISTRY_URL", "mock://example")
	topic := envOr("KAFKA_TOPIC", "payments")
	bootstrap := os.Getenv("KAFKA_BOOTSTRAP")
	if bootstrap == "" {
		// The mock cluster's own internal client logs a CONFWARN about bootstrap.servers: expected.
		fmt.Fprintln(os.Stderr, "KAFKA_BOOTSTRAP is not set: starting an in-process mock cluster "+
			"(its internal client's CONFWARN \"No `bootstrap.servers` configured\" is expected and harmless)")
		mc, err := kafka.NewMockCluster(1)
		if err != nil {
			return fmt.Errorf("mock cluster: %w", err)
		}
		defer mc.Close()
		if err := mc.CreateTopic(topic, 1, 1); err != nil {
			return fmt.Errorf("mock cluster: create topic %q: %w", topic, err)
		}
		bootstrap = mc.BootstrapServers()
	}
	fmt.Printf("registry %s, cluster %s, topic %q\n", registryURL, bootstrap, topic)

	// One registry client and one serializer for the whole program: they cache the schema id, so the
	// registry is asked once for the schema, not once per message.
	client, err := schemaregistry.NewClient(schemaregistry.NewConfig(registryURL))
	if err != nil {
		return fmt.Errorf("registry client: %w", err)
	}
	defer client.Close()
	values, err := serde.NewAvro[Payment](client, nil)
	if err != nil {
		return err
	}
	defer values.Close()

	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": bootstrap, "client.id": "aioproducer-schemaregistry"})
	if err != nil {
		return err
	}
	payments := aioproducer.NewTyped(p, aioproducer.StringSerializer{}, values)

	err = produce(payments, topic)
	cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if cerr := payments.Close(cctx); cerr != nil { // closes p
		err = errors.Join(err, fmt.Errorf("close: %w", cerr))
	}
	if err != nil {
		return err
	}
	return readBack(client, bootstrap, topic, 3)
}

// produce sends three payments and prints where each went.
func produce(payments *aioproducer.TypedProducer[string, Payment], topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var futs []*aioproducer.Future
	for i, amount := range []float64{9.99, 120, 0.5} {
		f, err := payments.Produce(ctx, &aioproducer.TypedMessage[string, Payment]{
			Topic: topic,
			Key:   fmt.Sprintf("customer-%d", i%2),
			Value: Payment{ID: fmt.Sprintf("pay-%d", i), Amount: amount, Currency: "EUR"},
		})
		if err != nil {
			return err // a *aioproducer.SerializationError if the registry refused the schema
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		d, err := f.Wait(ctx)
		if err != nil {
			return err
		}
		v := f.Message().Value // the wire format: magic byte 0, schema id, Avro binary
		fmt.Printf("produced %s[%d]@%d: key %s, %d bytes, schema id %d\n",
			d.Topic, d.Partition, d.Offset, f.Message().Key, len(v), int(v[1])<<24|int(v[2])<<16|int(v[3])<<8|int(v[4]))
	}
	return nil
}

// readBack reads n messages of topic from the beginning and decodes them with confluent-kafka-go's
// avrov2 deserializer, as any consumer of the topic would.
func readBack(client schemaregistry.Client, bootstrap, topic string, n int) error {
	d, err := avrov2.NewDeserializer(client, confluent.ValueSerde, avrov2.NewDeserializerConfig())
	if err != nil {
		return err
	}
	defer d.Close()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"group.id":           "aioproducer-schemaregistry-example",
		"enable.auto.commit": false,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for read := 0; read < n; {
		if time.Now().After(deadline) {
			return fmt.Errorf("read back %d of %d messages within 30 s", read, n)
		}
		m, ok := c.Poll(100).(*kafka.Message)
		if !ok {
			continue
		}
		var pay Payment
		if err := d.DeserializeWithHeadersInto(topic, m.Headers, m.Value, &pay); err != nil {
			return fmt.Errorf("offset %v: %w", m.TopicPartition.Offset, err)
		}
		fmt.Printf("consumed @%v: key %s, %+v\n", m.TopicPartition.Offset, m.Key, pay)
		read++
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

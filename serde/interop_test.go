package serde

import (
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	confluent "github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/avrov2"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/jsonschema"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/protobuf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/seed-f937cf20/aioproducer"
)

// interopMessages is how many messages each format's topic gets.
const interopMessages = 200

// keyOf is the key of the i-th message; failKey is the one key the key serializer refuses.
func keyOf(i int) string { return fmt.Sprintf("k-%03d", i) }

const failKey = "k-100"

// keysFailingOn serializes string keys and fails for bad.
func keysFailingOn(bad string) aioproducer.Serializer[string] {
	return aioproducer.SerializerFunc[string](func(sc *aioproducer.SerializationContext, k string) ([]byte, error) {
		if k == bad {
			return nil, fmt.Errorf("key %q refused", k)
		}
		return aioproducer.StringSerializer{}.Serialize(sc, k)
	})
}

// produceAll produces interopMessages messages of topic with tp, the failKey one failing, and waits for
// every delivery. It returns the indexes of the messages produced.
func produceAll[V any](t *testing.T, tp *aioproducer.TypedProducer[string, V], topic string, value func(int) V) []int {
	t.Helper()
	ctx := ctxTimeout(t, 60*time.Second)
	var futs []*aioproducer.Future
	var sent []int
	for i := range interopMessages {
		f, err := tp.Produce(ctx, &aioproducer.TypedMessage[string, V]{Topic: topic, Key: keyOf(i), Value: value(i)})
		if keyOf(i) == failKey {
			var se *aioproducer.SerializationError
			require.ErrorAs(t, err, &se, "message %d", i)
			assert.True(t, se.IsKey())
			continue
		}
		require.NoError(t, err, "message %d", i)
		futs = append(futs, f)
		sent = append(sent, i)
	}
	for _, f := range futs {
		_, err := f.Wait(ctx)
		require.NoError(t, err)
	}
	return sent
}

// TestMessagesReadBackFromTheBrokerDecodeWithConfluentsDeserializers produces Avro, Protobuf and JSON
// Schema values through a TypedProducer to librdkafka's mock cluster (or to the real cluster of
// KAFKA_BOOTSTRAP), with a registry over HTTP (the fake, or the real one of SCHEMA_REGISTRY_URL),
// reads them back with a consumer and decodes them with confluent-kafka-go's deserializers and a
// registry client of their own (so they fetch the schemas by id). A key serializer's failure costs
// only its own message. The registry is asked once per subject, not per message, and holds one
// version per subject.
func TestMessagesReadBackFromTheBrokerDecodeWithConfluentsDeserializers(t *testing.T) {
	bootstrap, topics := cluster(t, "avro", "proto", "json")
	avroTopic, protoTopic, jsonTopic := topics[0], topics[1], topics[2]
	fr := registry(t)
	client := httpClient(t, fr.URL())
	p := newProducer(t, bootstrap)
	keys := keysFailingOn(failKey)

	avroValues, err := NewAvro[Payment](client, nil)
	require.NoError(t, err)
	protoValues, err := NewProtobuf[*wrapperspb.StringValue](client, nil)
	require.NoError(t, err)
	jsonValues, err := NewJSONSchema[*Payment](client, nil)
	require.NoError(t, err)

	sentAvro := produceAll(t, aioproducer.NewTyped(p, keys, avroValues), avroTopic, payment)
	sentProto := produceAll(t, aioproducer.NewTyped(p, keys, protoValues), protoTopic,
		func(i int) *wrapperspb.StringValue { return wrapperspb.String(fmt.Sprint("text ", i)) })
	sentJSON := produceAll(t, aioproducer.NewTyped(p, keys, jsonValues), jsonTopic,
		func(i int) *Payment { v := payment(i); return &v })

	// Once per subject: 3 × 200 messages, 3 registrations and 3 association look-ups.
	assert.ElementsMatch(t, []string{avroTopic + "-value", protoTopic + "-value", jsonTopic + "-value"}, fr.Subjects())
	reqs := fr.Requests()
	assert.Equal(t, 3, reqs["POST /subjects/{subject}/versions"], "registrations: %v", reqs)
	assert.Equal(t, 3, reqs["GET /associations/resources/{namespace}/{name}"], "subject look-ups: %v", reqs)
	assert.Equal(t, 6, fr.Total(), "every request: %v", reqs)

	// The consumer side: a client of its own, so the deserializers fetch each schema by id, once.
	reader := httpClient(t, fr.URL())
	for _, topic := range topics {
		versions, err := reader.GetAllVersions(topic + "-value")
		require.NoError(t, err)
		assert.Equal(t, []int{1}, versions, "one version of %s-value after %d messages", topic, interopMessages)
	}
	before := fr.Requests()["GET /schemas/ids/{id}"]
	decode := func(t *testing.T, topic string, sent []int, check func(i int, r record)) {
		recs := readBack(t, bootstrap, topic, len(sent))
		for j, r := range recs {
			i := sent[j]
			assert.EqualValues(t, j, r.Offset)
			assert.Equal(t, keyOf(i), string(r.Key))
			check(i, r)
		}
	}
	t.Run("avro", func(t *testing.T) {
		d, err := avrov2.NewDeserializer(reader, confluent.ValueSerde, avrov2.NewDeserializerConfig())
		require.NoError(t, err)
		decode(t, avroTopic, sentAvro, func(i int, r record) {
			var got Payment
			require.NoError(t, d.DeserializeWithHeadersInto(avroTopic, r.Headers, r.Value, &got))
			assert.Equal(t, payment(i), got)
		})
	})
	t.Run("protobuf", func(t *testing.T) {
		d, err := protobuf.NewDeserializer(reader, confluent.ValueSerde, protobuf.NewDeserializerConfig())
		require.NoError(t, err)
		decode(t, protoTopic, sentProto, func(i int, r record) {
			var got wrapperspb.StringValue
			require.NoError(t, d.DeserializeWithHeadersInto(protoTopic, r.Headers, r.Value, &got))
			assert.Equal(t, fmt.Sprint("text ", i), got.GetValue())
		})
	})
	t.Run("json schema", func(t *testing.T) {
		conf := jsonschema.NewDeserializerConfig()
		conf.EnableValidation = true
		d, err := jsonschema.NewDeserializer(reader, confluent.ValueSerde, conf)
		require.NoError(t, err)
		decode(t, jsonTopic, sentJSON, func(i int, r record) {
			var got Payment
			require.NoError(t, d.DeserializeWithHeadersInto(jsonTopic, r.Headers, r.Value, &got))
			assert.Equal(t, payment(i), got)
		})
	})
	assert.LessOrEqual(t, fr.Requests()["GET /schemas/ids/{id}"]-before, 3, "schema fetches by id: %v", fr.Requests())
	assert.Equal(t, 3, fr.Requests()["POST /subjects/{subject}/versions"], "no registration after the first")
}

// TestMockRegistryClientServesTheSameSchemaIDsPerSubject checks the mock:// path the example uses: a
// serializer created once registers each schema once, however many messages, and the ids it writes
// are the registry's.
func TestMockRegistryClientServesTheSameSchemaIDsPerSubject(t *testing.T) {
	client := mockClient(t)
	counting := &countingClient{Client: client}
	s, err := NewAvro[Payment](counting, nil)
	require.NoError(t, err)
	for i := range 100 {
		b, _ := serialize[Payment](t, s, "payments", aioproducer.FieldValue, payment(i))
		checkFraming(t, client, "payments-value", b)
	}
	// confluent's serializer asks its client on every message; the client answers from its cache.
	assert.Equal(t, 100, counting.registers, "RegisterFullResponse calls")
	versions, err := client.GetAllVersions("payments-value")
	require.NoError(t, err)
	assert.Equal(t, []int{1}, versions, "one schema version, however many messages")
}

// countingClient counts RegisterFullResponse calls of the client it wraps.
type countingClient struct {
	schemaregistry.Client
	registers int
}

func (c *countingClient) RegisterFullResponse(subject string, schema schemaregistry.SchemaInfo, normalize bool) (schemaregistry.SchemaMetadata, error) {
	c.registers++
	return c.Client.RegisterFullResponse(subject, schema, normalize)
}

package serde

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	confluent "github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/avrov2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
)

// produceAvro produces v to topic through a TypedProducer over p with a fresh Avro serializer
// (automatic registration) and waits for its delivery. It returns the schema id written in the
// value, or the error of Produce.
func produceAvro[V any](t *testing.T, p *aioproducer.Producer, client schemaregistry.Client, topic string, v V) (int, error) {
	t.Helper()
	s, err := NewAvro[V](client, nil)
	require.NoError(t, err)
	defer s.Close()
	ctx := ctxTimeout(t, 30*time.Second)
	f, err := aioproducer.NewTyped(p, aioproducer.StringSerializer{}, s).Produce(ctx,
		&aioproducer.TypedMessage[string, V]{Topic: topic, Key: "k", Value: v})
	if err != nil {
		return 0, err
	}
	_, err = f.Wait(ctx)
	require.NoError(t, err)
	return int(binary.BigEndian.Uint32(f.Message().Value[1:5])), nil
}

// TestSchemaEvolutionFollowsTheRegistrysCompatibility needs a real registry, with BACKWARD
// compatibility (Confluent's default; make test-serde sets it on Apicurio, whose default is NONE):
// a compatible change of the Go type registers a new version of the subject at the next Produce, and
// an incompatible one fails Produce with a SerializationError that names the subject and registers
// nothing. avrov2 names the record after the Go type, so each version is a type named Payment.
//
// Adding a field is incompatible: avrov2 gives every derived field a default, but registers the
// schema's canonical form, which has none, so a reader of the new schema cannot read old records.
func TestSchemaEvolutionFollowsTheRegistrysCompatibility(t *testing.T) {
	needRealRegistry(t)
	bootstrap, topics := cluster(t, "evolution")
	topic, subject := topics[0], topics[0]+"-value"
	client := httpClient(t, registry(t).URL())
	p := newProducer(t, bootstrap)
	incompatible := func(t *testing.T, err error) {
		t.Helper()
		var se *aioproducer.SerializationError
		require.ErrorAs(t, err, &se, "an incompatible change")
		assert.False(t, se.IsKey())
		assert.Equal(t, topic, se.Topic)
		assert.ErrorContains(t, err, subject, "the error names the subject")
		t.Logf("incompatible: %v", err)
	}

	id1, err := produceAvro(t, p, client, topic, payment(1)) // id, amount, note
	require.NoError(t, err)
	{
		// note removed: a reader of the new schema skips it in old records.
		type Payment struct {
			ID     string  `avro:"id"`
			Amount float64 `avro:"amount"`
		}
		id2, err := produceAvro(t, p, client, topic, Payment{ID: "p-2", Amount: 2.5})
		require.NoError(t, err, "a compatible change")
		assert.NotEqual(t, id1, id2, "the new version has a schema id of its own")
	}
	versions, err := client.GetAllVersions(subject)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, versions)
	t.Run("a field added", func(t *testing.T) {
		type Payment struct {
			ID       string  `avro:"id"`
			Amount   float64 `avro:"amount"`
			Currency string  `avro:"currency"`
		}
		_, err := produceAvro(t, p, client, topic, Payment{ID: "p-3", Amount: 3.5, Currency: "EUR"})
		incompatible(t, err)
	})
	t.Run("a field's type changed", func(t *testing.T) {
		type Payment struct {
			ID     string `avro:"id"`
			Amount string `avro:"amount"` // double → string
		}
		_, err := produceAvro(t, p, client, topic, Payment{ID: "p-4", Amount: "4.5"})
		incompatible(t, err)
	})
	versions, err = client.GetAllVersions(subject)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, versions, "the incompatible schemas were not registered")
}

// TestLatestVersionWithoutAutoRegistration: with AutoRegisterSchemas off and UseLatestVersion on, the
// serializer writes with the subject's latest schema, registered beforehand by someone else (a
// deployment step), and never registers one; before that, Produce fails naming the subject. Runs on
// the fake, or on the real registry of registryEnv.
func TestLatestVersionWithoutAutoRegistration(t *testing.T) {
	bootstrap, topics := cluster(t, "latest")
	topic, subject := topics[0], topics[0]+"-value"
	fr := registry(t)
	p := newProducer(t, bootstrap)
	conf := avrov2.NewSerializerConfig()
	conf.AutoRegisterSchemas = false
	conf.UseLatestVersion = true
	values, err := NewAvro[Payment](httpClient(t, fr.URL()), conf)
	require.NoError(t, err)
	defer values.Close()
	tp := aioproducer.NewTyped(p, aioproducer.StringSerializer{}, values)
	ctx := ctxTimeout(t, 60*time.Second)
	msg := func(i int) *aioproducer.TypedMessage[string, Payment] {
		return &aioproducer.TypedMessage[string, Payment]{Topic: topic, Key: keyOf(i), Value: payment(i)}
	}

	_, err = tp.Produce(ctx, msg(0))
	var se *aioproducer.SerializationError
	require.ErrorAs(t, err, &se, "no schema registered yet")
	assert.ErrorContains(t, err, subject)
	t.Logf("nothing registered: %v", err)

	// The deployment registers the schema, with a client of its own.
	schema, err := avrov2.StructToSchema(reflect.TypeFor[Payment]())
	require.NoError(t, err)
	id, err := httpClient(t, fr.URL()).Register(subject, schemaregistry.SchemaInfo{Schema: schema.String()}, false)
	require.NoError(t, err)

	const n = 50
	var futs []*aioproducer.Future
	for i := range n {
		f, err := tp.Produce(ctx, msg(i))
		require.NoError(t, err, "message %d", i)
		futs = append(futs, f)
	}
	for _, f := range futs {
		_, err := f.Wait(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, id, binary.BigEndian.Uint32(f.Message().Value[1:5]), "the registered schema's id")
	}
	assert.Equal(t, 1, fr.Requests()["POST /subjects/{subject}/versions"], "the deployment's registration only: %v", fr.Requests())

	reader := httpClient(t, fr.URL())
	versions, err := reader.GetAllVersions(subject)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, versions)
	d, err := avrov2.NewDeserializer(reader, confluent.ValueSerde, avrov2.NewDeserializerConfig())
	require.NoError(t, err)
	defer d.Close()
	for i, r := range readBack(t, bootstrap, topic, n) {
		var got Payment
		require.NoError(t, d.DeserializeWithHeadersInto(topic, r.Headers, r.Value, &got))
		assert.Equal(t, payment(i), got)
	}
}

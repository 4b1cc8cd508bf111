package serde

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	confluent "github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/avrov2"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/jsonschema"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/protobuf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/serde/internal/fakeregistry"
)

// fields are both fields, with the confluent serde type of each.
var fields = []struct {
	field aioproducer.Field
	st    confluent.Type
}{{aioproducer.FieldKey, confluent.KeySerde}, {aioproducer.FieldValue, confluent.ValueSerde}}

// serialize runs s for topic and field, with no headers, and returns the bytes and the headers added.
func serialize[T any](t *testing.T, s aioproducer.Serializer[T], topic string, field aioproducer.Field, v T) ([]byte, []aioproducer.Header) {
	t.Helper()
	sc := &aioproducer.SerializationContext{Topic: topic, Field: field}
	b, err := s.Serialize(sc, v)
	require.NoError(t, err)
	return b, sc.Headers
}

// checkFraming checks the Schema Registry framing: magic byte 0, then the id the registry holds for
// the subject's latest version, and returns the rest.
func checkFraming(t *testing.T, client schemaregistry.Client, subject string, b []byte) []byte {
	t.Helper()
	require.Greater(t, len(b), 5)
	assert.Zero(t, b[0], "magic byte")
	md, err := client.GetLatestSchemaMetadata(subject)
	require.NoError(t, err, "subject %s", subject)
	assert.EqualValues(t, md.ID, binary.BigEndian.Uint32(b[1:5]), "schema id")
	return b[5:]
}

// The round trips run on confluent's mock:// registry, or on the real one of registryEnv.

func TestAvroRoundTripsThroughConfluentsDeserializer(t *testing.T) {
	client := testClient(t)
	topic := unique("payments")
	s, err := NewAvro[Payment](client, nil)
	require.NoError(t, err)
	defer s.Close()
	ps, err := NewAvro[*Payment](client, nil) // a pointer type works too; nil is null
	require.NoError(t, err)
	defer ps.Close()
	for _, f := range fields {
		t.Run(f.field.String(), func(t *testing.T) {
			d, err := avrov2.NewDeserializer(client, f.st, avrov2.NewDeserializerConfig())
			require.NoError(t, err)
			defer d.Close()
			want := payment(7)
			b, hs := serialize[Payment](t, s, topic, f.field, want)
			assert.Empty(t, hs)
			checkFraming(t, client, topic+"-"+f.field.String(), b)
			var got Payment
			require.NoError(t, d.DeserializeInto(topic, b, &got))
			assert.Equal(t, want, got)

			pb, _ := serialize[*Payment](t, ps, topic, f.field, &want)
			assert.Equal(t, b, pb, "*Payment and Payment serialize alike")
			nb, _ := serialize[*Payment](t, ps, topic, f.field, nil)
			assert.Nil(t, nb, "a nil *Payment is null")
		})
	}
}

func TestProtobufRoundTripsThroughConfluentsDeserializer(t *testing.T) {
	client := testClient(t)
	texts, times := unique("texts"), unique("times")
	// StringValue is the 8th message of google/protobuf/wrappers.proto: its message indexes are [7].
	sv, err := NewProtobuf[*wrapperspb.StringValue](client, nil)
	require.NoError(t, err)
	defer sv.Close()
	// Timestamp is the only message of google/protobuf/timestamp.proto: indexes [0], written as 0.
	ts, err := NewProtobuf[*timestamppb.Timestamp](client, nil)
	require.NoError(t, err)
	defer ts.Close()
	for _, f := range fields {
		t.Run(f.field.String(), func(t *testing.T) {
			d, err := protobuf.NewDeserializer(client, f.st, protobuf.NewDeserializerConfig())
			require.NoError(t, err)
			defer d.Close()

			b, hs := serialize(t, aioproducer.Serializer[*wrapperspb.StringValue](sv), texts, f.field, wrapperspb.String("héllo"))
			assert.Empty(t, hs)
			rest := checkFraming(t, client, texts+"-"+f.field.String(), b)
			require.GreaterOrEqual(t, len(rest), 2)
			assert.Equal(t, []byte{2, 14}, rest[:2], "message indexes: one index (zigzag 2), 7 (zigzag 14)")
			var got wrapperspb.StringValue
			require.NoError(t, d.DeserializeInto(texts, b, &got))
			assert.Equal(t, "héllo", got.GetValue())

			when := timestamppb.New(time.Date(2026, 12, 1, 10, 30, 0, 123, time.UTC))
			b, _ = serialize(t, aioproducer.Serializer[*timestamppb.Timestamp](ts), times, f.field, when)
			rest = checkFraming(t, client, times+"-"+f.field.String(), b)
			assert.Equal(t, byte(0), rest[0], "message indexes [0] are written as a single 0")
			var gotTS timestamppb.Timestamp
			require.NoError(t, d.DeserializeInto(times, b, &gotTS))
			assert.True(t, proto.Equal(when, &gotTS), "got %v", &gotTS)

			nb, _ := serialize(t, aioproducer.Serializer[*timestamppb.Timestamp](ts), times, f.field, nil)
			assert.Nil(t, nb)
		})
	}
}

func TestJSONSchemaRoundTripsThroughConfluentsDeserializer(t *testing.T) {
	client := testClient(t)
	topic := unique("payments")
	s, err := NewJSONSchema[Payment](client, nil)
	require.NoError(t, err)
	defer s.Close()
	for _, f := range fields {
		t.Run(f.field.String(), func(t *testing.T) {
			conf := jsonschema.NewDeserializerConfig()
			conf.EnableValidation = true // the payload must match the registered schema
			d, err := jsonschema.NewDeserializer(client, f.st, conf)
			require.NoError(t, err)
			defer d.Close()
			want := payment(3)
			b, _ := serialize[Payment](t, s, topic, f.field, want)
			rest := checkFraming(t, client, topic+"-"+f.field.String(), b)
			assert.JSONEq(t, `{"id":"p-3","amount":3.25,"note":"note 3: ünïcode"}`, string(rest))
			var got Payment
			require.NoError(t, d.DeserializeInto(topic, b, &got))
			assert.Equal(t, want, got)
		})
	}
}

func TestHeadersFromConfluentsSerializerAreAdded(t *testing.T) {
	client := mockClient(t)
	// A serializer that puts the schema GUID in a header instead of the id in the payload.
	values, err := avrov2.NewSerializer(client, confluent.ValueSerde, avrov2.NewSerializerConfig())
	require.NoError(t, err)
	values.SchemaIDSerializer = confluent.HeaderSchemaIDSerializer
	s := Wrap[Payment]("avro", nil, values)
	defer s.Close()

	own := []aioproducer.Header{{Key: "trace", Value: []byte("t-1")}}
	sc := &aioproducer.SerializationContext{Topic: "payments", Field: aioproducer.FieldValue, Headers: own}
	want := payment(1)
	b, err := s.Serialize(sc, want)
	require.NoError(t, err)
	require.Len(t, sc.Headers, 2)
	assert.Equal(t, own[0], sc.Headers[0], "the message's own header comes first")
	assert.Equal(t, confluent.ValueSchemaIDHeader, sc.Headers[1].Key)
	assert.Equal(t, confluent.MagicByteV1, sc.Headers[1].Value[0], "a GUID header")
	assert.NotZero(t, b[0], "no id prefix in the payload: the schema is named by the header")

	d, err := avrov2.NewDeserializer(client, confluent.ValueSerde, avrov2.NewDeserializerConfig())
	require.NoError(t, err)
	defer d.Close()
	var got Payment
	require.NoError(t, d.DeserializeWithHeadersInto("payments", sc.Headers, b, &got))
	assert.Equal(t, want, got)

	_, err = s.Serialize(&aioproducer.SerializationContext{Topic: "payments", Field: aioproducer.FieldKey}, want)
	assert.EqualError(t, err, "aioproducer/serde: avro: no serializer for the key")
}

func TestRegistrySerializerErrorsNameTheFormat(t *testing.T) {
	client := mockClient(t)
	type unmappable struct{ C chan int }
	s, err := NewAvro[unmappable](client, nil)
	require.NoError(t, err)
	_, err = s.Serialize(&aioproducer.SerializationContext{Topic: "t", Field: aioproducer.FieldValue}, unmappable{})
	require.Error(t, err)
	assert.Regexp(t, `^aioproducer/serde: avro: .*chan`, err.Error())

	// A registry that cannot be reached fails the call with the client's error.
	down := fakeregistry.New()
	down.Close()
	conf := schemaregistry.NewConfig(down.URL())
	conf.MaxRetries = 0
	unreachable, err := schemaregistry.NewClient(conf)
	require.NoError(t, err)
	js, err := NewJSONSchema[Payment](unreachable, nil)
	require.NoError(t, err)
	_, err = js.Serialize(&aioproducer.SerializationContext{Topic: "t", Field: aioproducer.FieldValue}, payment(1))
	require.Error(t, err)
	assert.Regexp(t, `^aioproducer/serde: json schema: .*(refused|connect)`, err.Error())

	_, err = NewAvro[Payment](nil, nil)
	assert.ErrorContains(t, err, "aioproducer/serde: avro key serializer: schema registry client missing")
}

// The real (HTTP) client: confluent's mock:// client is not safe for concurrent first registrations
// (its id counter is a plain int, a data race under -race). The registry is the fake, or the real one
// of registryEnv.
func TestRegistrySerializersAreSafeForConcurrentUse(t *testing.T) {
	client := httpClient(t, registry(t).URL())
	c, cp, cj := unique("c"), unique("cp"), unique("cj")
	avro, err := NewAvro[Payment](client, nil)
	require.NoError(t, err)
	pb, err := NewProtobuf[*wrapperspb.StringValue](client, nil)
	require.NoError(t, err)
	js, err := NewJSONSchema[Payment](client, nil)
	require.NoError(t, err)
	d, err := avrov2.NewDeserializer(client, confluent.ValueSerde, avrov2.NewDeserializerConfig())
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 8*100*3)
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				sc := &aioproducer.SerializationContext{Topic: c, Field: aioproducer.FieldValue}
				want := payment(g*1000 + i)
				b, err := avro.Serialize(sc, want)
				if err != nil {
					errs <- err
					continue
				}
				var got Payment
				if err := d.DeserializeInto(c, b, &got); err != nil || got != want {
					errs <- errors.Join(err, errors.New("avro round trip differs"))
				}
				if _, err := pb.Serialize(&aioproducer.SerializationContext{Topic: cp, Field: aioproducer.FieldValue}, wrapperspb.String("x")); err != nil {
					errs <- err
				}
				if _, err := js.Serialize(&aioproducer.SerializationContext{Topic: cj, Field: aioproducer.FieldKey}, want); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestProtobufSerializerWithoutRegistry(t *testing.T) {
	var s ProtobufSerializer[*timestamppb.Timestamp]
	when := timestamppb.New(time.Date(2026, 12, 1, 0, 0, 1, 5, time.UTC))
	b, hs := serialize(t, aioproducer.Serializer[*timestamppb.Timestamp](s), "t", aioproducer.FieldValue, when)
	assert.Empty(t, hs)
	want, err := proto.Marshal(when)
	require.NoError(t, err)
	assert.Equal(t, want, b, "plain proto.Marshal bytes, no framing")
	var got timestamppb.Timestamp
	require.NoError(t, proto.Unmarshal(b, &got))
	assert.True(t, proto.Equal(when, &got))

	b, _ = serialize(t, aioproducer.Serializer[*timestamppb.Timestamp](s), "t", aioproducer.FieldValue, nil)
	assert.Nil(t, b, "nil is null")
	b, _ = serialize(t, aioproducer.Serializer[*timestamppb.Timestamp](s), "t", aioproducer.FieldValue, &timestamppb.Timestamp{})
	assert.NotNil(t, b, "an empty message is empty, not null")
	assert.Empty(t, b)

	// A message with a field that is not valid UTF-8 fails to marshal.
	_, err = ProtobufSerializer[*wrapperspb.StringValue]{}.Serialize(&aioproducer.SerializationContext{}, wrapperspb.String("\xff"))
	assert.ErrorContains(t, err, "aioproducer/serde: protobuf:")
}

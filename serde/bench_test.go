package serde

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/avrov2"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/jsonschema"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/seed-f937cf20/aioproducer"
)

// benchPayment is the record of the benchmarks: about 60 bytes of Avro, 90 of JSON.
var benchPayment = Payment{ID: "pay-0123456789", Amount: 1234.5, Note: "monthly subscription, plan B, EUR"}

// benchSerialize measures s.Serialize per message, after one warm-up call (which registers the
// schema).
func benchSerialize[T any](b *testing.B, s aioproducer.Serializer[T], v T) {
	sc := &aioproducer.SerializationContext{Topic: "bench", Field: aioproducer.FieldValue}
	out, err := s.Serialize(sc, v)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		sc.Headers = sc.Headers[:0]
		if _, err := s.Serialize(sc, v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(out)), "bytes/msg")
}

// BenchmarkSerialize is the cost of serialization alone, per message, in-process: no broker, and no
// registry request after the first message (the "registry-requests" metric counts them, in all).
func BenchmarkSerialize(b *testing.B) {
	value := []byte("pay-0123456789 1234.5 monthly subscription, plan B, EUR pay-0123456789 1234.5 monthly subscr")
	b.Run("bytes", func(b *testing.B) {
		benchSerialize(b, aioproducer.Serializer[[]byte](aioproducer.BytesSerializer{}), value)
	})
	b.Run("string", func(b *testing.B) {
		benchSerialize(b, aioproducer.Serializer[string](aioproducer.StringSerializer{}), string(value))
	})
	b.Run("json", func(b *testing.B) {
		benchSerialize(b, aioproducer.Serializer[Payment](aioproducer.JSONSerializer[Payment]{}), benchPayment)
	})
	b.Run("protobuf-plain", func(b *testing.B) {
		benchSerialize(b, aioproducer.Serializer[*timestamppb.Timestamp](ProtobufSerializer[*timestamppb.Timestamp]{}), timestamppb.Now())
	})
	b.Run("avro-mock", func(b *testing.B) {
		s, err := NewAvro[Payment](mockClient(b), nil)
		require.NoError(b, err)
		benchSerialize(b, s, benchPayment)
	})
	b.Run("avro-mock-latest", func(b *testing.B) {
		// Registered beforehand, and the serializer told to use the subject's latest version
		// (auto.register.schemas=false, use.latest.version=true): no schema derived per message.
		client := mockClient(b)
		schema, err := avrov2.StructToSchema(reflect.TypeFor[Payment]())
		require.NoError(b, err)
		_, err = client.Register("bench-value", schemaregistry.SchemaInfo{Schema: schema.String()}, false)
		require.NoError(b, err)
		conf := avrov2.NewSerializerConfig()
		conf.AutoRegisterSchemas = false
		conf.UseLatestVersion = true
		s, err := NewAvro[Payment](client, conf)
		require.NoError(b, err)
		benchSerialize(b, s, benchPayment)
	})
	b.Run("avro-http", func(b *testing.B) {
		fr := fakeRegistry(b)
		s, err := NewAvro[Payment](httpClient(b, fr.URL()), nil)
		require.NoError(b, err)
		benchSerialize(b, s, benchPayment)
		b.ReportMetric(float64(fr.Total()), "registry-requests")
	})
	b.Run("protobuf-mock", func(b *testing.B) {
		s, err := NewProtobuf[*timestamppb.Timestamp](mockClient(b), nil)
		require.NoError(b, err)
		benchSerialize(b, s, timestamppb.Now())
	})
	b.Run("jsonschema-mock", func(b *testing.B) {
		s, err := NewJSONSchema[Payment](mockClient(b), nil)
		require.NoError(b, err)
		benchSerialize(b, s, benchPayment)
	})
	b.Run("jsonschema-mock-latest", func(b *testing.B) {
		// As avro-mock-latest: no schema reflected per message.
		client := mockClient(b)
		warm, err := NewJSONSchema[Payment](client, nil) // registers the schema it derives
		require.NoError(b, err)
		_, err = warm.Serialize(&aioproducer.SerializationContext{Topic: "bench", Field: aioproducer.FieldValue}, benchPayment)
		require.NoError(b, err)
		conf := jsonschema.NewSerializerConfig()
		conf.AutoRegisterSchemas = false
		conf.UseLatestVersion = true
		s, err := NewJSONSchema[Payment](client, conf)
		require.NoError(b, err)
		benchSerialize(b, s, benchPayment)
	})
	b.Run("jsonschema-http", func(b *testing.B) {
		fr := fakeRegistry(b)
		s, err := NewJSONSchema[Payment](httpClient(b, fr.URL()), nil)
		require.NoError(b, err)
		benchSerialize(b, s, benchPayment)
		b.ReportMetric(float64(fr.Total()), "registry-requests")
	})
}

// benchProduce produces b.N messages with tp to the in-process mock cluster, keeping the futures, and
// waits for all of them: the producer's cost per message plus the serializers'.
func benchProduce[V any](b *testing.B, newTyped func(p *aioproducer.Producer) *aioproducer.TypedProducer[string, V], v V) {
	bootstrap, topics := cluster(b, "bench")
	tp := newTyped(newProducer(b, bootstrap))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	msg := &aioproducer.TypedMessage[string, V]{Topic: topics[0], Key: "customer-1", Value: v}
	// Warm up: connection, producer id, schema registration.
	f, err := tp.Produce(ctx, msg)
	require.NoError(b, err)
	_, err = f.Wait(ctx)
	require.NoError(b, err)
	futs := make([]*aioproducer.Future, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f, err := tp.Produce(ctx, msg)
		if err != nil {
			b.Fatal(err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		if _, err := f.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProduce is Produce with futures, per message, through the typed producer to librdkafka's
// in-process mock cluster: raw bytes next to the same record as JSON and as Avro.
func BenchmarkProduce(b *testing.B) {
	value := []byte("pay-0123456789 1234.5 monthly subscription, plan B, EUR pay-0123456789 1234.5 monthly subscr")
	b.Run("bytes", func(b *testing.B) {
		benchProduce(b, func(p *aioproducer.Producer) *aioproducer.TypedProducer[string, []byte] {
			return aioproducer.NewTyped(p, aioproducer.StringSerializer{}, aioproducer.BytesSerializer{})
		}, value)
	})
	b.Run("json", func(b *testing.B) {
		benchProduce(b, func(p *aioproducer.Producer) *aioproducer.TypedProducer[string, Payment] {
			return aioproducer.NewTyped(p, aioproducer.StringSerializer{}, aioproducer.JSONSerializer[Payment]{})
		}, benchPayment)
	})
	b.Run("avro-mock", func(b *testing.B) {
		s, err := NewAvro[Payment](mockClient(b), nil)
		require.NoError(b, err)
		benchProduce(b, func(p *aioproducer.Producer) *aioproducer.TypedProducer[string, Payment] {
			return aioproducer.NewTyped(p, aioproducer.StringSerializer{}, s)
		}, benchPayment)
	})
}

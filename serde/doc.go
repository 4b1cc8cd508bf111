// Package serde holds aioproducer Serializers for Confluent Schema Registry formats (Avro, Protobuf and
// JSON Schema) and for Protobuf without a registry. It is a module of its own
// (github.com/seed-f937cf20/aioproducer/serde), so that users of aioproducer who do not need it download
// none of its dependencies (Avro, Protobuf, the registry client).
//
// The registry serializers are adapters over confluent-kafka-go's own (schemaregistry/serde/avrov2,
// protobuf and jsonschema): the bytes are exactly what confluent's deserializers, and the Java and
// Python clients', expect: the magic byte, the 4-byte schema id, then, for Protobuf, the message
// indexes, then the encoded record (or, with a serializer configured for it, the schema GUID in a
// header, which the adapter adds to the record's headers).
//
//	client, err := schemaregistry.NewClient(schemaregistry.NewConfig("http://registry:8081"))
//	values, err := serde.NewAvro[Payment](client, nil) // once: it caches the schema ids
//	payments := aioproducer.NewTyped(p, aioproducer.StringSerializer{}, values)
//	fut, err := payments.Produce(ctx, &aioproducer.TypedMessage[string, Payment]{Topic: "payments", Key: id, Value: pay})
//
// Create each serializer once and share it: it is safe for concurrent use, and it and its registry
// client cache what the registry said, so the registry is asked once per schema and subject, not per
// message. A serializer created per message would ask the registry every time.
//
// Serialization runs in the goroutine that calls Produce, before the message is accepted. The first
// message of a schema waits for the registry (registration or lookup, bounded by the client's request
// timeout, schemaregistry.Config.RequestTimeoutMs), not for the Produce context; a failure fails that
// call alone with an *aioproducer.SerializationError.
package serde

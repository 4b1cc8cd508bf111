package serde

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	confluent "github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/avrov2"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/jsonschema"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde/protobuf"
	"google.golang.org/protobuf/proto"

	"github.com/seed-f937cf20/aioproducer"
)

// RegistrySerializer is an aioproducer.Serializer[T] over a pair of confluent-kafka-go Schema Registry
// serializers: one configured for keys (subject "<topic>-key" with the default subject name strategy)
// and one for values ("<topic>-value"); the SerializationContext's Field picks one. Create it with
// NewAvro, NewProtobuf, NewJSONSchema, or Wrap. It is safe for concurrent use: create it once and
// share it.
//
// A nil T (a nil pointer, or a nil interface) serializes to nil, a null key or value, as confluent's
// serializers do for a nil message. Headers that the confluent serializer returns (the schema GUID,
// when it is configured to put it in a header) are appended to the record's headers.
type RegistrySerializer[T any] struct {
	format string
	keys   confluent.Serializer
	values confluent.Serializer
	ptr    bool // T is a pointer or interface: passed as it is; otherwise its address is passed
}

var _ aioproducer.Serializer[struct{}] = (*RegistrySerializer[struct{}])(nil)

// Wrap returns a RegistrySerializer over confluent serializers that the caller created and
// configured: keys for FieldKey (created with confluent's serde.KeySerde) and values for FieldValue
// (serde.ValueSerde). Either may be nil if the serializer is used for the other field only; using it
// for a field without a serializer fails that call. format names the format in errors ("avro").
//
// T must be what the confluent serializer takes: Wrap passes a pointer or interface T as it is, and the
// address of any other T (confluent's serializers take pointers to records).
func Wrap[T any](format string, keys, values confluent.Serializer) *RegistrySerializer[T] {
	k := reflect.TypeFor[T]().Kind()
	return &RegistrySerializer[T]{format: format, keys: keys, values: values, ptr: k == reflect.Pointer || k == reflect.Interface}
}

// NewAvro returns a RegistrySerializer of T values in Avro, over confluent-kafka-go's avrov2
// serializer, configured by conf (nil: avrov2.NewSerializerConfig(), which registers the schema
// automatically). T is a Go struct (or a pointer to one) that avrov2 maps to an Avro record, by default
// deriving the schema from the struct (avrov2.StructToSchema: field names from the "avro" tag).
func NewAvro[T any](client schemaregistry.Client, conf *avrov2.SerializerConfig) (*RegistrySerializer[T], error) {
	if conf == nil {
		conf = avrov2.NewSerializerConfig()
	}
	return newPair[T]("avro", func(st confluent.Type) (confluent.Serializer, error) {
		return avrov2.NewSerializer(client, st, conf)
	})
}

// NewProtobuf returns a RegistrySerializer of protobuf messages, over confluent-kafka-go's protobuf
// serializer, configured by conf. With a nil conf it uses protobuf.NewSerializerConfig() with
// CacheSchemas on: the schema of a message's .proto file is derived once, not per message (turn it off
// only if one process produces several versions of the same .proto file).
func NewProtobuf[T proto.Message](client schemaregistry.Client, conf *protobuf.SerializerConfig) (*RegistrySerializer[T], error) {
	if conf == nil {
		conf = protobuf.NewSerializerConfig()
		conf.CacheSchemas = true
	}
	return newPair[T]("protobuf", func(st confluent.Type) (confluent.Serializer, error) {
		return protobuf.NewSerializer(client, st, conf)
	})
}

// NewJSONSchema returns a RegistrySerializer of T values as JSON with a JSON Schema, over
// confluent-kafka-go's jsonschema serializer, configured by conf (nil:
// jsonschema.NewSerializerConfig()). The schema is derived from T by reflection
// (github.com/invopop/jsonschema) and the value encoded by encoding/json.
func NewJSONSchema[T any](client schemaregistry.Client, conf *jsonschema.SerializerConfig) (*RegistrySerializer[T], error) {
	if conf == nil {
		conf = jsonschema.NewSerializerConfig()
	}
	return newPair[T]("json schema", func(st confluent.Type) (confluent.Serializer, error) {
		return jsonschema.NewSerializer(client, st, conf)
	})
}

// newPair creates the key and the value serializer with create.
func newPair[T any](format string, create func(confluent.Type) (confluent.Serializer, error)) (*RegistrySerializer[T], error) {
	keys, err := create(confluent.KeySerde)
	if err != nil {
		return nil, fmt.Errorf("aioproducer/serde: %s key serializer: %w", format, err)
	}
	values, err := create(confluent.ValueSerde)
	if err != nil {
		return nil, fmt.Errorf("aioproducer/serde: %s value serializer: %w", format, err)
	}
	return Wrap[T](format, keys, values), nil
}

// Serialize serializes v for sc.Topic with the key or value serializer (sc.Field), and appends the
// headers it returns to sc.Headers.
func (s *RegistrySerializer[T]) Serialize(sc *aioproducer.SerializationContext, v T) ([]byte, error) {
	cs := s.values
	if sc.Field == aioproducer.FieldKey {
		cs = s.keys
	}
	if cs == nil {
		return nil, fmt.Errorf("aioproducer/serde: %s: no serializer for the %s", s.format, sc.Field)
	}
	if isNil(v) {
		return nil, nil
	}
	var msg any
	if s.ptr {
		msg = v
	} else {
		msg = &v
	}
	hs, b, err := cs.SerializeWithHeaders(sc.Topic, msg)
	if err != nil {
		return nil, fmt.Errorf("aioproducer/serde: %s: %w", s.format, err)
	}
	sc.Headers = append(sc.Headers, hs...)
	return b, nil
}

// Close closes both confluent serializers (it releases what their rule executors hold; the registry
// client is the caller's).
func (s *RegistrySerializer[T]) Close() error {
	var errs []error
	for _, cs := range []confluent.Serializer{s.keys, s.values} {
		if cs != nil {
			if err := cs.Close(); err != nil {
				errs = append(errs, fmt.Errorf("aioproducer/serde: %s: close: %w", s.format, err))
			}
		}
	}
	return errors.Join(errs...)
}

// isNil reports whether v is a nil pointer, map, slice or interface (or an interface holding a nil
// one).
func isNil[T any](v T) bool {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
	default:
		return false
	}
	a := any(v)
	if a == nil {
		return true
	}
	switch rv := reflect.ValueOf(a); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func:
		return rv.IsNil()
	}
	return false
}

package aioproducer

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// Field says which part of a record a Serializer serializes: the key or the value.
type Field uint8

const (
	// FieldKey is the record key.
	FieldKey Field = iota + 1
	// FieldValue is the record value.
	FieldValue
)

// String returns "key" or "value".
func (f Field) String() string {
	switch f {
	case FieldKey:
		return "key"
	case FieldValue:
		return "value"
	}
	return fmt.Sprintf("Field(%d)", uint8(f))
}

// SerializationContext is what a Serializer knows of the record it serializes for, as in confluent's
// and the Python client's serializers: the topic, whether it serializes the key or the value, and the
// record's headers so far.
type SerializationContext struct {
	// Topic is the record's topic.
	Topic string
	// Field is FieldKey or FieldValue.
	Field Field
	// Headers are the record's headers so far: the TypedMessage's own, then, for the value, those the
	// key serializer added. A serializer may append headers (a schema id in a header, a content type):
	// they are sent with the record after the message's own, in the order added. Appending never
	// writes into the TypedMessage's slice. A serializer must not change or remove the headers it
	// found: they are the caller's.
	Headers []Header
}

// Serializer turns a key or value of type T into the bytes of a record. It runs in the goroutine that
// calls the TypedProducer's Produce (or a variant), before the message is accepted. It must be safe for
// concurrent use and must not keep sc after it returns.
//
// A nil result makes the key or value null: a null key, or a null value (a tombstone on compacted
// topics). The built-in serializers return nil for a nil input (a nil slice, pointer, map or
// interface), never for a non-nil one; Nullable maps a nil pointer to null for any serializer.
//
// An error fails the Produce call with a *SerializationError that wraps it: nothing is accepted and
// no outcome follows.
type Serializer[T any] interface {
	Serialize(sc *SerializationContext, v T) ([]byte, error)
}

// SerializerFunc adapts a func to a Serializer.
type SerializerFunc[T any] func(sc *SerializationContext, v T) ([]byte, error)

// Serialize calls f(sc, v).
func (f SerializerFunc[T]) Serialize(sc *SerializationContext, v T) ([]byte, error) { return f(sc, v) }

// BytesSerializer sends a []byte as it is; nil is null. The producer reads the bytes until the
// message's outcome is known, as with Message.
type BytesSerializer struct{}

// Serialize returns v.
func (BytesSerializer) Serialize(_ *SerializationContext, v []byte) ([]byte, error) { return v, nil }

// StringSerializer sends a string's bytes as they are (Go strings hold UTF-8 by convention: it does
// not check). The empty string is an empty key or value, not a null one: use Nullable(StringSerializer{})
// with a *string for one that may be null.
type StringSerializer struct{}

// Serialize returns v's bytes.
func (StringSerializer) Serialize(_ *SerializationContext, v string) ([]byte, error) {
	if v == "" {
		return []byte{}, nil // empty, not null
	}
	return []byte(v), nil
}

// JSONSerializer sends a value as JSON, encoded by encoding/json's Marshal (so <, > and & are escaped
// as \u003c, \u003e and \u0026, which every JSON decoder reads back as they were). A nil pointer, map,
// slice or interface is null, not the JSON text null (as the Python client's JSON serializers do for
// None). It adds no header and registers no schema: see the serde module for JSON Schema.
type JSONSerializer[T any] struct{}

// Serialize returns v as JSON, or nil for a nil v.
func (JSONSerializer[T]) Serialize(_ *SerializationContext, v T) ([]byte, error) {
	if isNil(v) {
		return nil, nil
	}
	return json.Marshal(v)
}

// Nullable returns a Serializer of *T that serializes what a non-nil pointer points to with s, and
// makes a nil pointer null: Nullable(StringSerializer{}) for a string key that may be absent.
func Nullable[T any](s Serializer[T]) Serializer[*T] {
	return SerializerFunc[*T](func(sc *SerializationContext, v *T) ([]byte, error) {
		if v == nil {
			return nil, nil
		}
		return s.Serialize(sc, *v)
	})
}

// isNil reports whether v is a nil pointer, map, slice, channel, func or interface (or an interface
// holding one of those, nil).
func isNil[T any](v T) bool {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
	default:
		return false
	}
	a := any(v)
	if a == nil {
		return true
	}
	switch rv := reflect.ValueOf(a); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

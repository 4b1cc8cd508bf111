package serde

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/seed-f937cf20/aioproducer"
)

// ProtobufSerializer sends protobuf messages as proto.Marshal encodes them, without a schema registry:
// no magic byte, no schema id, just the message (what a consumer reads with proto.Unmarshal into the
// same type). A nil message is null; an empty non-nil one is an empty, not a null, key or value. Use
// NewProtobuf for the Schema Registry wire format.
type ProtobufSerializer[T proto.Message] struct {
	// MarshalOptions are the options of the encoding; the zero value is proto.Marshal's.
	// Deterministic makes equal messages encode to equal bytes (map entries sorted), which matters
	// for keys.
	MarshalOptions proto.MarshalOptions
}

var _ aioproducer.Serializer[proto.Message] = ProtobufSerializer[proto.Message]{}

// Serialize returns v encoded, or nil for a nil v.
func (s ProtobufSerializer[T]) Serialize(_ *aioproducer.SerializationContext, v T) ([]byte, error) {
	if isNil(v) {
		return nil, nil
	}
	b, err := s.MarshalOptions.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("aioproducer/serde: protobuf: %w", err)
	}
	if b == nil {
		b = []byte{} // a message with every field unset: empty, not null
	}
	return b, nil
}

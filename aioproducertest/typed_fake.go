package aioproducertest

import (
	"testing"

	"github.com/seed-f937cf20/aioproducer"
)

// NewTypedFake returns a TypedProducer over a new Fake, for unit tests of code that takes an
// aioproducer.TypedClient: the TypedProducer serializes with keys and values as in production, and
// the Fake shows what it sent (Messages, History: the serialized bytes) and completes it as it
// would for a plain Producer (ManualCompletion, FailWith, ...). Both are one producer, closed at the
// end of the test (t.Cleanup); closing either closes it. An invalid producer option fails the test.
func NewTypedFake[K, V any](t testing.TB, keys aioproducer.Serializer[K], values aioproducer.Serializer[V],
	opts ...FakeOption,
) (*aioproducer.TypedProducer[K, V], *Fake) {
	t.Helper()
	f := NewFake(t, opts...)
	return aioproducer.NewTyped(f.Producer, keys, values), f
}

// StartTypedFake is NewTypedFake without a test: the caller closes the producer (through either).
// It fails with the Producer's *aioproducer.ConfigError for an invalid producer option.
func StartTypedFake[K, V any](keys aioproducer.Serializer[K], values aioproducer.Serializer[V],
	opts ...FakeOption,
) (*aioproducer.TypedProducer[K, V], *Fake, error) {
	f, err := StartFake(opts...)
	if err != nil {
		return nil, nil, err
	}
	return aioproducer.NewTyped(f.Producer, keys, values), f, nil
}

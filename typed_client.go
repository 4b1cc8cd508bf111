package aioproducer

import "context"

// TypedClient is the part of *TypedProducer that code producing typed messages calls: the typed
// counterpart of Client. Accept a TypedClient where your code produces typed keys and values, pass it
// a *TypedProducer in production and, in unit tests, the one aioproducertest.NewTypedFake returns
// over a Fake. Like Client, it holds no transactional method.
type TypedClient[K, V any] interface {
	Produce(ctx context.Context, tm *TypedMessage[K, V]) (*Future, error)
	ProduceBatch(ctx context.Context, tms []*TypedMessage[K, V]) ([]*Future, error)
	ProduceFunc(ctx context.Context, tm *TypedMessage[K, V], fn func(Delivery, error)) error
	ProduceChan(ctx context.Context, tm *TypedMessage[K, V], ch chan<- TypedResult[K, V]) error
	TryProduce(tm *TypedMessage[K, V]) (*Future, error)
	Flush(ctx context.Context) error
	Purge(ctx context.Context) error
	Health() error
	Close(ctx context.Context) error
}

var _ TypedClient[string, string] = (*TypedProducer[string, string])(nil)

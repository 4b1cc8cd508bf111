package aioproducer

import "context"

// Client is the part of *Producer that code producing messages calls. Accept a Client where your code
// produces, pass it a *Producer in production and an aioproducertest.Fake in unit tests (like the Java
// producer's Producer interface and its MockProducer). It holds no transactional method: code that
// runs transactions needs the *Producer's exact semantics and tests them against a cluster
// (aioproducertest.NewCluster).
type Client interface {
	Produce(ctx context.Context, msg *Message) (*Future, error)
	ProduceBatch(ctx context.Context, msgs []*Message) ([]*Future, error)
	ProduceFunc(ctx context.Context, msg *Message, fn func(Delivery, error)) error
	ProduceChan(ctx context.Context, msg *Message, ch chan<- Result) error
	TryProduce(msg *Message) (*Future, error)
	Flush(ctx context.Context) error
	Purge(ctx context.Context) error
	Health() error
	Close(ctx context.Context) error
}

var _ Client = (*Producer)(nil)

// Package aioproducer is an asynchronous Kafka producer for Go on confluent-kafka-go (librdkafka).
//
// Produce accepts a message and returns a Future at once; Wait on the future (or select on its Done
// channel) for the delivery. ProduceFunc and ProduceChan deliver the outcome to a callback or a
// channel instead, ProduceBatch accepts many messages at a time, and TryProduce never blocks.
//
//	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": "localhost:9092"})
//	if err != nil { ... }
//	defer p.Close(context.Background())
//	fut, err := p.Produce(ctx, &aioproducer.Message{Topic: "events", Key: k, Value: v})
//	if err != nil { ... }           // not accepted: invalid, closed, fatal, or ctx ended while the buffer was full
//	d, err := fut.Wait(ctx)         // delivered to d.Topic[d.Partition]@d.Offset, or failed with err
//
// # Delivery semantics
//
// Every message Produce accepts gets exactly one outcome: a Delivery, or an error. The library drains
// librdkafka's delivery reports itself, so futures resolve without the caller polling or flushing.
// Messages with the same key, or the same explicit partition, are delivered in produce order, whatever
// the number of workers (WithWorkers) and of goroutines calling Produce from one goroutine each. The
// defaults are acks=all and enable.idempotence=true, so librdkafka's retries neither duplicate nor
// reorder messages.
//
// An error outcome is a *DeliveryError that unwraps to librdkafka's kafka.Error, or an error wrapping
// ErrClosed (Close failed the message before it reached librdkafka) or ErrFatal. IsOutcomeUnknown
// tells the errors after which the message may still be in the log (it timed out, or was purged in
// flight); IsRetriable and IsFatal tell the others apart.
//
// # Buffering and backpressure
//
// Accepted messages count against WithMaxBuffered until their outcome is handed over. When the
// buffer is full, Produce waits until room frees or its context ends; TryProduce fails with
// ErrBufferFull. A full librdkafka queue never fails a message: the producer waits for deliveries and
// offers it again.
//
// # Shutdown
//
// Flush waits for the outcomes of everything accepted before it. Close stops intake, sends what is
// buffered, waits for every outcome and releases librdkafka; if its context ends first it fails what
// is left and still returns with every outcome handed over and no goroutine left.
package aioproducer

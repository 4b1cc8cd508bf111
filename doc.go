// Package aioproducer is an asynchronous Kafka producer for Go on confluent-kafka-go (librdkafka).
//
// Produce accepts a message and returns a Future at once; Wait on the future (or select on its Done
// channel) for the delivery. ProduceFunc and ProduceChan deliver the outcome to a callback or a
// channel instead, ProduceBatch accepts many messages at a time, and TryProduce never blocks.
//
//	p, err := aioproducer.New(kafka.ConfigMap{"bootstrap.servers": "localhost:9092"})
//	if err != nil { ... }           // a *ConfigError names the bad key; nothing was started
//	defer func() {
//		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
//		defer cancel()
//		_ = p.Close(ctx)            // sends what is buffered; a deadline bounds the wait
//	}()
//	fut, err := p.Produce(ctx, &aioproducer.Message{Topic: "events", Key: k, Value: v})
//	if err != nil { ... }           // not accepted: invalid, closed, fatal, or ctx ended while the buffer was full
//	d, err := fut.Wait(ctx)         // delivered to d.Topic[d.Partition]@d.Offset, or failed with err
//
// # Delivery semantics
//
// Every message Produce accepts gets exactly one outcome: a Delivery, or an error. The library drains
// librdkafka's delivery reports itself, so futures resolve without the caller polling or flushing.
// Messages with the same key, or the same explicit partition, are delivered in the order Produce
// accepted them, whatever the number of workers (WithWorkers): in call order when one goroutine
// produces them, and in the order the calls returned when several goroutines do. The
// defaults are acks=all and enable.idempotence=true, so librdkafka's retries neither duplicate nor
// reorder messages.
//
// An error outcome is a *DeliveryError that unwraps to librdkafka's kafka.Error, or an error wrapping
// ErrClosed (a Close whose context ended failed the message before it was sent) or ErrFatal.
// IsOutcomeUnknown tells the errors after which the message may still be in the log (it was sent but
// timed out, or was purged in flight); IsRetriable and IsFatal tell the others apart.
//
// # librdkafka
//
// The producer drives its own handle on the librdkafka that confluent-kafka-go bundles: one cgo call
// enqueues a batch, one drains a burst of delivery reports, and each failed message says whether it
// may be in the log (rd_kafka_message_status). It takes the kafka.ConfigMap, errors and types of
// confluent-kafka-go, but not its kafka.Producer.
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
// is left and still returns with every outcome handed over and no goroutine left. Both send at once,
// without waiting for librdkafka's linger.ms. Give Close a deadline: with no
// broker reachable it would otherwise wait until librdkafka times the messages out
// (message.timeout.ms, 5 minutes by default).
package aioproducer

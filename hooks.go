package aioproducer

import (
	"context"
	"time"
)

// Hook is a value that implements one or more of the hook interfaces below (HookProduce, HookBatch,
// HookDelivery, HookError, HookStats); WithHooks registers it, and the producer calls each method the
// value implements. This follows franz-go's kgo hooks: one small interface per event, so a hook
// implements only what it needs and an event no hook wants costs nothing.
//
// Hooks run on the producer's goroutines, never on the one that drains librdkafka's delivery reports:
// a slow hook delays other hooks and callbacks, and while it holds outcomes back their messages keep
// their room in the buffer (WithMaxBuffered), so Produce blocks. It never stalls delivery reports,
// never resolves a Future late, and never grows an unbounded queue. A hook that panics is recovered
// and counted in Stats.HookPanics, like a panicking callback; the event is lost for that hook only.
type Hook any

// HookProduce is told of every message handed to Produce, TryProduce, ProduceBatch, ProduceFunc or
// ProduceChan (and so of the TypedProducer's), on the calling goroutine, before the message is
// validated. It may add headers to m (a tracing hook injects the trace context of ctx; see the
// aioproducer/otel module): the producer sizes and sends the message after the hook returns. It must not
// keep ctx past the message's HookDelivery event.
type HookProduce interface {
	OnProduce(ctx context.Context, m *Message)
}

// HookDelivery is told of the outcome of every message HookProduce was told of, exactly once: the
// delivery or the error it failed with, or, when Produce refused the message, the error Produce
// returned (DeliveryEvent.Refused). Events run one at a time on the callback goroutine, in outcome
// order, after the message's Future is resolved and before its room in the buffer is freed: a Flush
// that returns has seen every event of the messages it waited for.
type HookDelivery interface {
	OnDelivery(e DeliveryEvent)
}

// DeliveryEvent is a message's outcome, for HookDelivery.
type DeliveryEvent struct {
	// Message is the message; the hook must not modify it and must not keep it past the call.
	Message *Message
	// Delivery is where it was written; zero when Err is set.
	Delivery Delivery
	// Err is why it failed, as its Future, callback or channel saw it (or as Produce returned it).
	Err error
	// Refused says that Produce refused the message: it was never accepted, and Err is the error
	// Produce returned (ErrInvalidMessage, ErrClosed, ErrBufferFull, a context error, ...).
	Refused bool
	// Latency is the time from Produce to the outcome.
	Latency time.Duration
}

// HookBatch is told of every batch an executor worker hands to librdkafka, on that worker's goroutine,
// after librdkafka took it.
type HookBatch interface {
	OnBatch(e BatchEvent)
}

// BatchEvent is one batch handed to librdkafka.
type BatchEvent struct {
	Topic string
	// Messages and Bytes count what librdkafka accepted of the batch (key, value and header bytes).
	Messages int
	Bytes    int64
	// Took is how long handing the batch over took, waits for a full librdkafka queue included.
	Took time.Duration
}

// HookError is told of the errors librdkafka reports beside delivery reports: a broker connection
// failed, all brokers are down, authentication failed, a fatal error (IsFatal). librdkafka goes on
// after every one but a fatal error. Events run on the callback goroutine.
type HookError interface {
	OnError(err error)
}

// HookStats is told of librdkafka's statistics, every "statistics.interval.ms" (librdkafka's setting,
// off by default: set it in the ConfigMap to receive them), parsed into LibrdkafkaStats. Events run on
// the callback goroutine; when the hook is still busy with an earlier one, the newer replaces it.
type HookStats interface {
	OnStats(s *LibrdkafkaStats)
}

package aioproducer

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Hook is a value that implements one or more of the hook interfaces below (HookProduce, HookBatch,
// HookDelivery, HookError, HookStats); WithHooks registers it, and the producer calls each method the
// value implements. This follows franz-go's kgo hooks: one small interface per event, so a hook
// implements only what it needs and an event no hook wants costs nothing.
//
// Hooks run on the caller's goroutine (HookProduce, and HookDelivery for a refused message), on an
// executor worker (HookBatch) or on the callback goroutine (the rest), never on the one that drains
// librdkafka's delivery reports: a slow hook delays other hooks and callbacks, and while it holds
// outcomes back their messages keep their room in the buffer (WithMaxBuffered), so Produce blocks. It
// never stalls delivery reports, never resolves a Future late, and never grows an unbounded queue.
// Several goroutines may call a hook at once: it must be safe for concurrent use. A hook that panics is
// recovered, logged and counted in Stats.HookPanics, like a panicking callback; the event is lost for
// that hook only: the other hooks and the message's outcome are not.
//
// On the callback goroutine a hook is a callback in every respect: Flush returns ErrInCallback, Close
// returns at once and lets the shutdown go on by itself, and a Produce that waits for buffer room may
// wait for ever, since that room is freed on this goroutine: produce from there with TryProduce.
type Hook any

// HookProduce is told of every message handed to Produce, TryProduce, ProduceBatch, ProduceFunc or
// ProduceChan (and so of the TypedProducer's once serialized), on the calling goroutine, before the
// message is validated. Not of a nil message, nor of a call that is refused before it looks at the
// message (ProduceFunc with a nil callback, ProduceChan with a nil channel, a TypedProducer whose
// serializer failed). It may add headers to m (a tracing hook injects the trace context of ctx; see the
// aiootel module): the producer sizes and sends the message after the hook returns. It must not
// keep ctx past the message's HookDelivery event.
type HookProduce interface {
	OnProduce(ctx context.Context, m *Message)
}

// HookDelivery is told of the outcome of every message HookProduce is told of (whether a HookProduce
// is registered or not), exactly once: the delivery or the error it failed with, or, when Produce
// refused the message, the error Produce returned (DeliveryEvent.Refused).
//
// The events of accepted messages run one at a time on the callback goroutine, in outcome order,
// after the message's Future is resolved (and after its callback ran, or its Result was sent) and
// before its room in the buffer is freed: a Flush that returns has seen every event of the messages
// it waited for. The event of a refused message runs on the goroutine that called Produce, before
// Produce returns, so it may run at the same time as other events: a refused message holds no room
// in the buffer, and queueing its event would let a TryProduce loop grow the queue without bound.
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
	// Latency is the time from the Produce call to the outcome: to the delivery report's arrival from
	// librdkafka, to the failure, or to the refusal.
	Latency time.Duration
}

// HookBatch is told of every batch an executor worker hands to librdkafka, on that worker's goroutine,
// after librdkafka took it (not of a batch librdkafka took none of). A worker's call into librdkafka
// may carry several topics: each topic's part of it is one batch, one event. A slow HookBatch delays
// the worker's next call.
type HookBatch interface {
	OnBatch(e BatchEvent)
}

// BatchEvent is one batch handed to librdkafka: one topic's messages in a worker's call.
type BatchEvent struct {
	Topic string
	// Messages and Bytes count what librdkafka accepted of the batch (key, value and header bytes).
	Messages int
	Bytes    int64
	// Took is how long the worker's call took, waits for a full librdkafka queue included: the same for
	// every topic of the call.
	Took time.Duration
}

// HookError is told of the errors librdkafka reports beside delivery reports: a broker connection
// failed, all brokers are down, authentication failed (a kafka.Error each), a fatal error (IsFatal,
// once: the error every outstanding message then fails with, which wraps ErrFatal and librdkafka's
// kafka.Error). librdkafka goes on after every one but a
// fatal error. Events run on the callback goroutine; while 64 wait for a slow hook, newer ones are
// dropped, and the count of the dropped is logged.
type HookError interface {
	OnError(err error)
}

// HookStats is told of librdkafka's statistics, every "statistics.interval.ms" (librdkafka's setting,
// off by default: set it in the ConfigMap to receive them), parsed into LibrdkafkaStats. Events run on
// the callback goroutine, which parses them too; when the hook is still busy with an earlier one, the
// newer replaces any other still waiting. Without a HookStats the producer parses nothing (and does
// not even ask librdkafka for the reports). The hook may keep s.
type HookStats interface {
	OnStats(s *LibrdkafkaStats)
}

// hookSet holds the registered hooks, one slice per interface, so that an event no hook wants costs one
// length check. New builds it once; it never changes after.
type hookSet struct {
	produce  []HookProduce
	delivery []HookDelivery
	batch    []HookBatch
	errs     []HookError
	stats    []HookStats

	log    *slog.Logger
	panics *atomic.Uint64 // Stats.HookPanics
}

// newHookSet sorts hooks into their interfaces. A hook that implements none of them (a nil one
// included) is a mistake New reports: it would never be called.
func newHookSet(hooks []Hook) (hookSet, error) {
	var hs hookSet
	for i, h := range hooks {
		known := false
		if x, ok := h.(HookProduce); ok {
			hs.produce, known = append(hs.produce, x), true
		}
		if x, ok := h.(HookDelivery); ok {
			hs.delivery, known = append(hs.delivery, x), true
		}
		if x, ok := h.(HookBatch); ok {
			hs.batch, known = append(hs.batch, x), true
		}
		if x, ok := h.(HookError); ok {
			hs.errs, known = append(hs.errs, x), true
		}
		if x, ok := h.(HookStats); ok {
			hs.stats, known = append(hs.stats, x), true
		}
		if !known {
			return hookSet{}, &ConfigError{Key: "WithHooks", Err: fmt.Errorf(
				"hook %d (%T) implements none of HookProduce, HookDelivery, HookBatch, HookError, HookStats", i, h)}
		}
	}
	return hs, nil
}

// perMessage reports whether a message handed to Produce concerns a hook: Produce then calls
// produced before it does anything else, and refused if the message is not accepted.
func (hs *hookSet) perMessage() bool { return len(hs.produce) > 0 || len(hs.delivery) > 0 }

// produced runs the HookProduce hooks for m, on the caller's goroutine, and returns when Produce was
// called (see now).
func (hs *hookSet) produced(ctx context.Context, m *Message) time.Time {
	start := hs.now()
	hs.runProduce(ctx, m)
	return start
}

// now is the time a DeliveryEvent's Latency counts from, if a HookDelivery wants it: the zero time
// otherwise (time.Now is not free).
func (hs *hookSet) now() time.Time {
	if len(hs.delivery) > 0 {
		return time.Now()
	}
	return time.Time{}
}

// runProduce runs the HookProduce hooks for m.
func (hs *hookSet) runProduce(ctx context.Context, m *Message) {
	for _, h := range hs.produce {
		hs.callProduce(h, ctx, m)
	}
}

// refused runs the HookDelivery hooks for a message Produce refused with err, on the caller's
// goroutine, before Produce returns.
func (hs *hookSet) refused(m *Message, err error, start time.Time) {
	if len(hs.delivery) == 0 {
		return
	}
	hs.delivered(DeliveryEvent{Message: m, Err: err, Refused: true, Latency: time.Since(start)})
}

func (hs *hookSet) delivered(e DeliveryEvent) {
	for _, h := range hs.delivery {
		hs.callDelivery(h, e)
	}
}

func (hs *hookSet) batched(e BatchEvent) {
	for _, h := range hs.batch {
		hs.callBatch(h, e)
	}
}

func (hs *hookSet) failed(err error) {
	for _, h := range hs.errs {
		hs.callError(h, err)
	}
}

func (hs *hookSet) statsReported(s *LibrdkafkaStats) {
	for _, h := range hs.stats {
		hs.callStats(h, s)
	}
}

// Each call runs one hook, surviving its panic: the other hooks, and the message, still get the event.

func (hs *hookSet) callProduce(h HookProduce, ctx context.Context, m *Message) {
	defer hs.recovered("OnProduce", h)
	h.OnProduce(ctx, m)
}

func (hs *hookSet) callDelivery(h HookDelivery, e DeliveryEvent) {
	defer hs.recovered("OnDelivery", h)
	h.OnDelivery(e)
}

func (hs *hookSet) callBatch(h HookBatch, e BatchEvent) {
	defer hs.recovered("OnBatch", h)
	h.OnBatch(e)
}

func (hs *hookSet) callError(h HookError, err error) {
	defer hs.recovered("OnError", h)
	h.OnError(err)
}

func (hs *hookSet) callStats(h HookStats, s *LibrdkafkaStats) {
	defer hs.recovered("OnStats", h)
	h.OnStats(s)
}

// recovered is deferred by every hook call: it recovers a panic, counts it and logs it, as
// callbackManager.call does for callbacks.
func (hs *hookSet) recovered(method string, h Hook) {
	if v := recover(); v != nil {
		hs.panics.Add(1)
		hs.log.Error("aioproducer: hook panicked", "hook", fmt.Sprintf("%T", h), "method", method, "panic", fmt.Sprint(v))
	}
}

package aioproducer

import "sync/atomic"

// Stats is a snapshot of a producer's counters. The gauges are read one after the other, so under load
// they may be off by the messages that moved between two reads.
type Stats struct {
	// Buffered is the number of accepted messages not yet handed to librdkafka.
	Buffered int64
	// InFlight is the number of messages librdkafka holds whose outcome is not known yet.
	InFlight int64
	// HeldMessages and HeldBytes are what counts against WithMaxBuffered: every accepted message
	// whose outcome has not been handed over yet.
	HeldMessages int64
	HeldBytes    int64
	// Delivered and Failed count outcomes.
	Delivered uint64
	Failed    uint64
	// Batches is the number of calls the workers made to hand messages to librdkafka (a call may carry
	// several topics), and MeanBatchSize their mean number of messages.
	Batches       uint64
	MeanBatchSize float64
	// QueueFullWaits counts the times librdkafka's queue was full and a worker waited for deliveries.
	QueueFullWaits uint64
	// CallbackPanics counts callbacks (and result channel sends) that panicked.
	CallbackPanics uint64
	// HookPanics counts hook calls (WithHooks) that panicked.
	HookPanics uint64
}

// counters are the producer's monotonic counts, shared by its components.
type counters struct {
	accepted       atomic.Uint64 // messages accepted by Produce and its variants
	enqueued       atomic.Uint64 // handed to librdkafka
	failedEarly    atomic.Uint64 // failed before reaching librdkafka
	reported       atomic.Uint64 // delivery reports received from librdkafka
	delivered      atomic.Uint64
	failed         atomic.Uint64
	batches        atomic.Uint64
	batchedMsgs    atomic.Uint64
	queueFullWaits atomic.Uint64
	callbackPanics atomic.Uint64
	hookPanics     atomic.Uint64
}

func (c *counters) snapshot() Stats {
	// Read the later stages first so a message moving on between reads is not counted negative.
	reported := c.reported.Load()
	failedEarly := c.failedEarly.Load()
	enqueued := c.enqueued.Load()
	accepted := c.accepted.Load()
	s := Stats{
		Buffered:       int64(accepted - enqueued - failedEarly),
		InFlight:       int64(enqueued - reported),
		Delivered:      c.delivered.Load(),
		Failed:         c.failed.Load(),
		Batches:        c.batches.Load(),
		QueueFullWaits: c.queueFullWaits.Load(),
		CallbackPanics: c.callbackPanics.Load(),
		HookPanics:     c.hookPanics.Load(),
	}
	if s.Batches > 0 {
		s.MeanBatchSize = float64(c.batchedMsgs.Load()) / float64(s.Batches)
	}
	return s
}

// Package fakeengine is the bridge between package aioproducer and package aioproducertest: it lets
// aioproducertest build a real *aioproducer.Producer over an in-memory engine that never talks to
// librdkafka. Package aioproducer sets NewProducer when it is initialized; being internal, this
// package can be imported only by the module's own packages, so users reach that engine only through
// aioproducertest.Fake.
//
// It cannot import aioproducer (aioproducer imports it), so messages and options travel as any.
package fakeengine

import "time"

// Config is how the in-memory engine behaves.
type Config struct {
	// Auto completes every message as soon as the engine takes it; otherwise the test completes
	// them with Engine.Complete.
	Auto bool
	// Partitions returns the number of partitions of topic (at least 1).
	Partitions func(topic string) int32
	// Fail returns the error the message (a *aioproducer.Message) fails with when it is completed
	// without an error of its own, or nil to deliver it. Nil: every message is delivered.
	Fail func(msg any) error
}

// Sent is one message the engine took, in the order it took them.
type Sent struct {
	Msg       any   // the *aioproducer.Message
	Partition int32 // the partition it was assigned when it was taken
	Offset    int64 // its offset once delivered, else -1
	Err       error // the error it was completed with, as the engine reported it (before the producer wraps it)
	Done      bool  // completed (delivered or failed)
}

// Engine is the test's handle on the in-memory engine.
type Engine interface {
	// Sync waits, up to d, until the engine has taken every message the producer accepted so far (or
	// failed before reaching it), and reports whether it has.
	Sync(d time.Duration) bool
	// Complete completes the n oldest outstanding messages (n < 0: all of them), oldest first: each
	// fails with err if err is not nil, else as Config.Fail says. It returns how many it completed,
	// once the producer has their outcomes (futures resolved, callbacks queued).
	Complete(n int, err error) int
	// Outstanding is the number of messages taken and not yet completed.
	Outstanding() int
	// History returns every message taken since the start or the last Clear, in order.
	History() []Sent
	// Clear forgets the history; outstanding messages stay outstanding.
	Clear()
}

// NewProducer returns a *aioproducer.Producer (as any) built with opts (a []aioproducer.Option, as any)
// over a new in-memory engine configured by cfg, and that engine. Package aioproducer sets it.
var NewProducer func(cfg Config, opts any) (producer any, eng Engine, err error)

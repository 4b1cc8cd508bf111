// Package fakeengine is the bridge between package aioproducer and package aioproducertest: it lets
// aioproducertest build a real *aioproducer.Producer over the in-memory engine (aioproducer's
// engine_mem.go) that never talks to librdkafka. Package aioproducer registers its constructor when it
// is initialized; being internal, this package can be imported only by the module's own packages, so
// users reach that engine only through aioproducertest.Fake.
//
// It cannot import aioproducer (aioproducer imports it), so its types take aioproducer's as type
// parameters: P is *aioproducer.Producer, O is aioproducer.Option, M is *aioproducer.Message. Both
// sides name them, and Open checks that they name the same ones as Register.
package fakeengine

import (
	"fmt"
	"time"
)

// Config is how the in-memory engine behaves.
type Config[M any] struct {
	// Auto completes every message as soon as the engine takes it; otherwise the test completes
	// them with Engine.Complete.
	Auto bool
	// Partitions returns the number of partitions of topic (at least 1).
	Partitions func(topic string) int32
	// Fail returns the error the message fails with when it is completed without an error of its
	// own, or nil to deliver it. Nil: every message is delivered.
	Fail func(msg M) error
}

// Sent is one message the engine took, in the order it took them.
type Sent[M any] struct {
	Msg       M
	Partition int32 // the partition it was assigned when it was taken
	Offset    int64 // its offset once delivered, else -1
	Err       error // the error it was completed with, as the engine reported it (before the producer wraps it)
	Done      bool  // completed (delivered or failed)
}

// Engine is the test's handle on the in-memory engine.
type Engine[M any] interface {
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
	History() []Sent[M]
	// Clear forgets the history; outstanding messages stay outstanding.
	Clear()
}

// Opener builds a producer with options opts over a new in-memory engine configured by cfg, and
// returns both.
type Opener[P, O, M any] func(cfg Config[M], opts []O) (P, Engine[M], error)

// opener is the one Register stored: an Opener[P, O, M] for aioproducer's types.
var opener interface{ isOpener() }

// registered wraps an Opener so that opener can hold it whatever its type parameters.
type registered[P, O, M any] struct{ open Opener[P, O, M] }

func (registered[P, O, M]) isOpener() {}

// Register is called by package aioproducer, once, when it is initialized.
func Register[P, O, M any](open Opener[P, O, M]) { opener = registered[P, O, M]{open} }

// Open builds a producer over the in-memory engine with the Opener package aioproducer registered.
// It panics if P, O and M are not the types aioproducer registered it with: a bug in the module.
func Open[P, O, M any](cfg Config[M], opts []O) (P, Engine[M], error) {
	r, ok := opener.(registered[P, O, M])
	if !ok {
		panic(fmt.Sprintf("fakeengine: Open[%T] does not match what aioproducer registered (%T)", r, opener))
	}
	return r.open(cfg, opts)
}

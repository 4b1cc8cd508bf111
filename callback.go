package aioproducer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/limiter"
)

// callbackManager hands every message's outcome to where the caller asked for it: a Future, a callback
// or a channel. Futures are resolved at once, on the goroutine that drains librdkafka's reports.
// Callbacks and channel sends run one at a time on the manager's own goroutine, in outcome order,
// outside every lock, so a slow callback delays other callbacks but never the draining of reports.
// Once an outcome is handed over, the manager frees the message's place in the buffer and returns its
// record to the pool.
//
// With a HookDelivery registered, every outcome also goes through the queue: a Future is still
// resolved at once, on the report goroutine, but its record waits in the queue for the hooks, and
// keeps its room in the buffer until they ran. The queue stays bounded by the buffer (WithMaxBuffered):
// slow hooks make Produce wait, never the reports. The HookError and HookStats events run on the
// callback goroutine too, from a queue of their own (errors: at most maxErrorEvents; statistics: the
// latest report only).
type callbackManager struct {
	log     *slog.Logger
	limit   *limiter.Limiter
	stuck   *stuckBudget
	records *pool[record]
	stats   *counters
	state   *producerState // the reason behind failures; a transaction's first failure
	maxMsg  int64          // message.max.bytes, for the error of a message too large
	hooks   *hookSet

	// The callback goroutine's id, and whether it runs a callback now: Flush and Close called from a
	// callback must not wait for the goroutine they run on.
	gid     atomic.Uint64
	calling atomic.Bool

	mu       sync.Mutex
	resolved []*record // deliver's scratch: records of resolved futures
	toQueue  []*record // deliver's scratch: records for the callback goroutine

	queue     []*record       // outcomes waiting for their callback or HookDelivery, in order
	errEvents []error         // errors waiting for HookError, at most maxErrorEvents
	errLost   int             // errors dropped since the callback goroutine last looked
	rawStats  []byte          // the latest statistics report waiting for HookStats, if any
	barriers  []chan struct{} // settle calls, closed once the outcomes queued before them are handed over
	wake      chan struct{}   // capacity 1: the queue is not empty, or closing
	closing   bool
	done      chan struct{}
}

// maxErrorEvents is how many librdkafka error events wait for HookError at most; more are dropped (and
// counted in the log) until the hooks catch up.
const maxErrorEvents = 64

func newCallbackManager(log *slog.Logger, limit *limiter.Limiter, stuck *stuckBudget, records *pool[record], stats *counters, state *producerState, maxMsg int64, hooks *hookSet) *callbackManager {
	return &callbackManager{
		log: log, limit: limit, stuck: stuck, records: records, stats: stats, state: state, maxMsg: maxMsg, hooks: hooks,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// start starts the callback goroutine; close stops it and waits.
func (cm *callbackManager) start() { go cm.run() }

// deliver hands over the outcomes of a burst of reports. It is called from the engine's one report
// goroutine only.
func (cm *callbackManager) deliver(rs []report) {
	var size int64
	// Counted before any Future is resolved, so that Stats read after a Future's outcome counts it.
	failed := 0
	for i := range rs {
		if rs[i].err != nil {
			failed++
		}
	}
	cm.stats.delivered.Add(uint64(len(rs) - failed))
	if failed > 0 {
		cm.stats.failed.Add(uint64(failed))
	}
	cm.stats.reported.Add(uint64(len(rs)))
	resolved, toQueue := cm.resolved[:0], cm.toQueue[:0]
	hooked := len(cm.hooks.delivery) > 0
	var now time.Time
	if hooked {
		now = time.Now() // one reading for the burst: its reports came together
	}
	for _, r := range rs {
		rec := r.rec
		if hooked {
			rec.took = now.Sub(rec.start)
		}
		var d Delivery
		var err error
		if r.err == nil {
			d = Delivery{Topic: rec.msg.Topic, Partition: r.partition, Offset: r.offset, Timestamp: rec.ts}
			if r.logAppendMs != 0 {
				d.Timestamp = time.UnixMilli(r.logAppendMs)
			}
		} else {
			err = cm.deliveryError(rec, r.err, r.status)
			cm.state.onFailure(rec.msg.Topic, err)
		}
		if rec.fut != nil {
			rec.fut.resolve(d, err)
			if !hooked {
				size += rec.size
				resolved = append(resolved, rec)
				continue
			}
		}
		rec.d, rec.err = d, err
		toQueue = append(toQueue, rec)
	}
	cm.finish(resolved, size)
	cm.resolved = resolved[:0]
	if len(toQueue) > 0 {
		cm.mu.Lock()
		cm.queue = append(cm.queue, toQueue...)
		cm.mu.Unlock()
		clear(toQueue)
		cm.signal()
	}
	cm.toQueue = toQueue[:0]
}

// finish ends records whose outcomes were handed over: it frees their room in the buffer, then counts
// them done for Flush (so a Flush that returns leaves their room free), then recycles them.
func (cm *callbackManager) finish(recs []*record, size int64) {
	if len(recs) == 0 {
		return
	}
	cm.limit.Release(int64(len(recs)), size)
	// Records of one epoch come in runs: count each run done at once.
	var e *epoch
	run := 0
	for i, rec := range recs {
		if rec.epoch != e {
			e.finishN(run)
			e, run = rec.epoch, 0
		}
		run++
		if rec.stuck {
			cm.stuck.release(1, rec.size)
		}
		rec.reset()
		cm.records.put(rec)
		recs[i] = nil
	}
	e.finishN(run)
}

// fail hands over the outcome of a message that never reached librdkafka.
func (cm *callbackManager) fail(rec *record, err error) { cm.failHinted(rec, err, "") }

// expire hands over the outcome of a message whose deadline passed before librdkafka took it.
func (cm *callbackManager) expire(rec *record) { cm.failHinted(rec, errExpired, expiredHint) }

// failHinted is fail with what a DeliveryError adds to a kafka.Error.
func (cm *callbackManager) failHinted(rec *record, err error, hint string) {
	cm.stats.failed.Add(1)
	var ke kafka.Error
	if errors.As(err, &ke) {
		err = cm.deliveryError(rec, err, statusNotPersisted)
		if de, ok := err.(*DeliveryError); ok && hint != "" {
			de.hint = hint
		}
	}
	cm.state.onFailure(rec.msg.Topic, err)
	hooked := len(cm.hooks.delivery) > 0
	if hooked {
		rec.took = time.Since(rec.start)
	}
	if rec.fut != nil {
		rec.fut.resolve(Delivery{}, err)
		if !hooked {
			cm.finish([]*record{rec}, rec.size)
			return
		}
	}
	rec.err = err
	cm.enqueue(rec)
	cm.signal()
}

func (cm *callbackManager) deliveryError(rec *record, err error, status msgStatus) error {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return err
	}
	de := &DeliveryError{Topic: rec.msg.Topic, Err: ke, status: status, cause: cm.state.cause(err)}
	if ke.Code() == kafka.ErrMsgSizeTooLarge {
		de.hint = fmt.Sprintf("the record has %d bytes of key, value and headers, with librdkafka's framing more than "+
			"message.max.bytes (%d) or than the topic's max.message.bytes on the broker", rec.size, cm.maxMsg)
	}
	return de
}

func (cm *callbackManager) enqueue(rec *record) {
	cm.mu.Lock()
	cm.queue = append(cm.queue, rec)
	cm.mu.Unlock()
}

func (cm *callbackManager) signal() { wakeUp(cm.wake) }

// postError hands err to the HookError hooks, on the callback goroutine. While maxErrorEvents wait
// already, it drops err: error events come in storms (every broker, every reconnection), and a slow
// hook must not make them pile up.
func (cm *callbackManager) postError(err error) {
	if len(cm.hooks.errs) == 0 {
		return
	}
	cm.mu.Lock()
	if len(cm.errEvents) < maxErrorEvents {
		cm.errEvents = append(cm.errEvents, err)
	} else {
		cm.errLost++
	}
	cm.mu.Unlock()
	cm.signal()
}

// postStats hands librdkafka's statistics report (JSON) to the HookStats hooks, on the callback
// goroutine, which parses it. A report the goroutine has not taken yet is replaced: only the latest
// one matters.
func (cm *callbackManager) postStats(raw []byte) {
	if len(cm.hooks.stats) == 0 {
		return
	}
	cm.mu.Lock()
	cm.rawStats = raw
	cm.mu.Unlock()
	cm.signal()
}

// settle waits until every outcome queued before the call has been handed over (its callback run, its
// channel send done, its HookDelivery called), or ctx ends. It must not be called from the callback
// goroutine.
func (cm *callbackManager) settle(ctx context.Context) error {
	ch := make(chan struct{})
	cm.mu.Lock()
	cm.barriers = append(cm.barriers, ch)
	cm.mu.Unlock()
	cm.signal()
	select {
	case <-ch:
		return nil
	case <-cm.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops the callback goroutine once the queue is empty and waits for it.
func (cm *callbackManager) close() {
	cm.mu.Lock()
	cm.closing = true
	cm.mu.Unlock()
	cm.signal()
	<-cm.done
}

// inCallback reports whether the caller runs on the callback goroutine, inside a callback or channel
// send.
func (cm *callbackManager) inCallback() bool {
	return cm.calling.Load() && goid() == cm.gid.Load()
}

// goid is the calling goroutine's id, read from the header of its stack trace ("goroutine 42 [...").
// Go gives no other way to tell goroutines apart; inCallback needs it only in Flush and Close.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}

func (cm *callbackManager) run() {
	defer close(cm.done)
	cm.gid.Store(goid())
	var batch []*record
	var errs []error
	var bars []chan struct{}
	hooked := len(cm.hooks.delivery) > 0
	for range cm.wake {
		cm.mu.Lock()
		batch, cm.queue = cm.queue, batch[:0]
		errs, cm.errEvents = cm.errEvents, errs[:0]
		bars, cm.barriers = cm.barriers, bars[:0]
		lost := cm.errLost
		raw := cm.rawStats
		cm.errLost, cm.rawStats = 0, nil
		closing := cm.closing
		cm.mu.Unlock()

		var size int64
		cm.calling.Store(true)
		for _, rec := range batch {
			cm.call(rec)
			if hooked {
				cm.hooks.delivered(DeliveryEvent{Message: rec.msg, Delivery: rec.d, Err: rec.err, Latency: rec.took})
			}
			size += rec.size
		}
		for _, err := range errs {
			cm.hooks.failed(err)
		}
		if raw != nil {
			cm.reportStats(raw)
		}
		cm.calling.Store(false)
		if lost > 0 {
			cm.log.Warn("aioproducer: HookError events dropped: the hooks fell behind librdkafka's error events", "dropped", lost)
		}
		n := len(batch) + len(errs) + len(raw)
		clear(errs)
		cm.finish(batch, size)
		for _, ch := range bars {
			close(ch)
		}
		clear(bars)
		if closing && n == 0 {
			return
		}
		if n > 0 {
			// More may have arrived while we ran: look again before sleeping.
			cm.signal()
		}
	}
}

// reportStats parses a statistics report and hands it to the HookStats hooks.
func (cm *callbackManager) reportStats(raw []byte) {
	s, err := parseLibrdkafkaStats(raw)
	if err != nil {
		cm.log.Error("aioproducer: librdkafka statistics not understood", "error", err)
		return
	}
	cm.hooks.statsReported(s)
}

// call runs one callback or channel send, surviving its panic.
func (cm *callbackManager) call(rec *record) {
	defer func() {
		if v := recover(); v != nil {
			cm.stats.callbackPanics.Add(1)
			cm.log.Error("aioproducer: callback panicked", "topic", rec.msg.Topic, "panic", fmt.Sprint(v))
		}
	}()
	switch {
	case rec.fn != nil:
		rec.fn(rec.d, rec.err)
	case rec.ch != nil:
		rec.ch <- Result{Message: rec.msg, Delivery: rec.d, Err: rec.err}
	}
}

// reportRouter is the engine's reportSink: it routes what the engine's report goroutine drains to the
// parts of the producer that want it. Delivery reports go to the callbackManager (Futures, callbacks,
// channels, hooks) and free room in librdkafka's queue for a waiting worker; error events to the hooks
// and the brokers' state; a fatal error to the executor, which stops the producer.
type reportRouter struct {
	callbacks *callbackManager
	brokers   *brokerState
	auth      *brokerWatch
	exec      *executor
	stats     *counters
	log       *slog.Logger
}

func (r *reportRouter) onReports(rs []report) {
	if r.brokers.down.Load() || r.brokers.auth.Load() != nil {
		for _, rep := range rs {
			if rep.err == nil {
				r.brokers.delivered()
				break
			}
		}
	}
	r.callbacks.deliver(rs)
	r.exec.space.notify()
}

func (r *reportRouter) onFatal(err kafka.Error) { r.exec.failFatal(err) }

func (r *reportRouter) onError(err kafka.Error) {
	r.callbacks.postError(err)
	if r.brokers.onError(err) {
		r.log.Warn("aioproducer: authentication failed: if it lasts, the messages librdkafka holds, and those "+
			"produced while it fails, fail with ErrAuthentication", "reason", err.Error())
	}
	if r.brokers.auth.Load() != nil && (isAuthFailure(err) || err.Code() == kafka.ErrAllBrokersDown) {
		r.auth.poke()
	}
}

func (r *reportRouter) onStats(raw []byte) { r.callbacks.postStats(raw) }

// counters gives the in-memory engine the producer's counts (memEngine.Sync).
func (r *reportRouter) counters() *counters { return r.stats }

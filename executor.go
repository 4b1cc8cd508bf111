package aioproducer

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seed-f937cf20/aioproducer/internal/limiter"
)

// executor hands jobs to librdkafka through the engine, for the dispatcher's workers (each calls
// execute on its own goroutine, one job at a time). A message librdkafka refuses fails alone; a full
// librdkafka queue waits for deliveries and offers the rest again, so nothing behind it overtakes it.
// It also owns what stops messages from reaching librdkafka: an abort (a fatal error, or a Close whose
// context ended) and a discard (a transaction being aborted).
type executor struct {
	eng       engine
	state     *producerState
	limit     *limiter.Limiter
	callbacks *callbackManager
	flusher   *flusher
	space     *notifier // deliveries have freed room in librdkafka's queue
	dls       *deadlines
	stats     *counters
	hooks     *hookSet
	log       *slog.Logger

	// mu is held shared while a worker calls enqueue; abort and discard take it to wait such calls out.
	mu        sync.RWMutex
	abortOnce sync.Once
	aborted   chan struct{}
	abortErr  error // set before aborted is closed
	// discardErr, while set, fails what the workers have not handed to librdkafka (a transaction
	// being aborted).
	discardErr atomic.Pointer[error]
}

func newExecutor(eng engine, state *producerState, limit *limiter.Limiter, callbacks *callbackManager, fl *flusher,
	space *notifier, dls *deadlines, stats *counters, hooks *hookSet, log *slog.Logger) *executor {
	return &executor{
		eng: eng, state: state, limit: limit, callbacks: callbacks, flusher: fl, space: space, dls: dls, stats: stats,
		hooks: hooks, log: log, aborted: make(chan struct{}),
	}
}

// abort makes the workers fail, with err, every message they have not yet handed to librdkafka, now and
// from then on. It returns once no enqueue call is in progress, so a purge after it reaches every
// message librdkafka was given. Only the first error counts.
func (ex *executor) abort(err error) {
	ex.abortOnce.Do(func() {
		ex.abortErr = err
		close(ex.aborted)
	})
	ex.mu.Lock()
	//lint:ignore SA2001 the empty critical section waits for enqueue calls in progress
	ex.mu.Unlock()
}

// discard makes the workers fail, with err, every message they have not yet handed to librdkafka,
// until discard(nil). Like abort, it returns once no enqueue call is in progress.
func (ex *executor) discard(err error) {
	if err == nil {
		ex.discardErr.Store(nil)
		return
	}
	ex.discardErr.Store(&err)
	ex.mu.Lock()
	//lint:ignore SA2001 the empty critical section waits for enqueue calls in progress
	ex.mu.Unlock()
}

func (ex *executor) isAborted() bool {
	select {
	case <-ex.aborted:
		return true
	default:
		return false
	}
}

// failFatal handles a fatal librdkafka error, from the engine's error event or from an enqueue that
// librdkafka refused with it: from now on every Produce fails, and every outstanding message fails
// with an error wrapping ErrFatal. Only the first one counts.
func (ex *executor) failFatal(err kafka.Error) {
	fe := &fatalError{err: err}
	if !ex.state.fatal.CompareAndSwap(nil, fe) {
		return
	}
	ex.log.Error("aioproducer: fatal error: failing every outstanding message", "error", err.Error())
	ex.callbacks.postError(fe)
	ex.limit.Close(fe)
	ex.abort(fe)
	if perr := ex.eng.purge(); perr != nil {
		ex.log.Error("aioproducer: purge failed", "error", perr)
	}
}

// execute hands one job to librdkafka. The engine may reorder the job's records within each topic
// (grouping them by partition, each partition's in order): what it did not take is offered again in
// its order. Before each offer, a record whose deadline has passed fails with errExpired, and the
// offer stops short of it, so that the records behind it (of its partition too) still go, as they do
// when librdkafka times a message out.
func (ex *executor) execute(j *job) {
	recs := j.recs
	// Counted before the call, as the in-flight gauge is: a report may resolve a record's Future
	// before enqueue returns, and Stats read after the last Future must count its batch.
	ex.stats.batches.Add(1)
	ex.stats.batchedMsgs.Add(uint64(len(recs)))
	backoff := minQueueFullBackoff
	hooked := len(ex.hooks.batch) > 0
	var start time.Time
	if hooked {
		start = time.Now()
		j.beginHooks()
	}
	for len(recs) > 0 {
		gen := ex.space.generation()
		ex.mu.RLock()
		if ex.isAborted() {
			ex.mu.RUnlock()
			break
		}
		if d := ex.discardErr.Load(); d != nil {
			ex.mu.RUnlock()
			ex.failFrom(j, recs, *d, hooked)
			recs = nil
			break
		}
		offer := recs
		if ex.dls.on() {
			now := ex.dls.now()
			k := firstExpired(recs, now)
			if k == 0 {
				ex.mu.RUnlock()
				k = 1
				for k < len(recs) && recs[k].expiredAt(now) {
					k++
				}
				ex.expireFrom(j, recs[:k], hooked)
				recs = recs[k:]
				continue
			}
			offer = recs[:k]
		}
		// Counted before the call, so a report that comes before it returns never makes the in-flight
		// gauge negative; what enqueue did not take is taken back.
		ex.stats.enqueued.Add(uint64(len(offer)))
		n, err := ex.eng.enqueue(offer)
		ex.mu.RUnlock()
		if n < len(offer) {
			ex.stats.enqueued.Add(-uint64(len(offer) - n))
		}
		if n > 0 {
			ex.flusher.enqueued()
		}
		recs = recs[n:]
		switch {
		case err == nil:
		case errors.Is(err, errQueueFull):
			ex.stats.queueFullWaits.Add(1)
			ex.waitForRoom(gen, &backoff, earliestDeadline(recs))
		default:
			var ke kafka.Error
			if errors.As(err, &ke) && (ke.Code() == kafka.ErrFatal || ke.IsFatal()) {
				if cause, ok := ex.eng.fatalError(); ok {
					ke = cause
				}
				ex.failFatal(ke)
			}
			ex.failFrom(j, recs[:1], err, hooked)
			recs = recs[1:]
		}
	}
	if len(recs) > 0 { // left over only when aborted
		ex.failFrom(j, recs, ex.abortErr, hooked)
	}
	if hooked {
		for i, b := range j.batches {
			if j.hookMsgs[i] > 0 {
				ex.hooks.batched(BatchEvent{Topic: b.topic, Messages: j.hookMsgs[i], Bytes: j.hookBytes[i], Took: time.Since(start)})
			}
		}
	}
}

// failFrom hands over the outcome of recs, the records of job j from position len(j.recs)-len(recs)
// on, which never reached librdkafka. With hooked, they are taken off their topics' BatchEvents first
// (their outcome may recycle them).
func (ex *executor) failFrom(j *job, recs []*record, err error, hooked bool) {
	if hooked {
		j.untake(len(j.recs)-len(recs), recs)
	}
	ex.stats.failedEarly.Add(uint64(len(recs)))
	for _, r := range recs {
		ex.callbacks.fail(r, err)
	}
}

// expireFrom is failFrom for records whose deadline passed.
func (ex *executor) expireFrom(j *job, recs []*record, hooked bool) {
	if hooked {
		j.untake(len(j.recs)-len(recs), recs)
	}
	ex.stats.failedEarly.Add(uint64(len(recs)))
	for _, r := range recs {
		ex.callbacks.expire(r)
	}
}

// The backoff of a worker whose librdkafka queue is full, between two offers that no delivery report
// came between.
const (
	minQueueFullBackoff = time.Millisecond
	maxQueueFullBackoff = 16 * time.Millisecond
)

// waitForRoom waits, after librdkafka's queue was found full, until a delivery report has come since
// generation gen, the executor aborts, the backoff has passed, or deadline dl (0: none) comes. The
// backoff is needed: librdkafka frees a message's room only when the report event that carried it is
// destroyed, which may be after the report reached us, so the last report before the queue drains may
// come before the refusal.
func (ex *executor) waitForRoom(gen uint64, backoff *time.Duration, dl int64) {
	wait := *backoff
	if dl != 0 {
		wait = min(wait, ex.dls.until(dl))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ex.space.since(gen):
		*backoff = minQueueFullBackoff
	case <-ex.aborted:
	case <-t.C:
		*backoff = min(2**backoff, maxQueueFullBackoff)
	}
}

// wakeUp sends on ch, a channel of capacity 1 that says "look again", unless a send is already
// pending there: the receiver wakes once however many senders poked it.
func wakeUp(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// notifier is a broadcast that waiters can select on. It allocates a channel only when someone waits.
type notifier struct {
	gen atomic.Uint64
	mu  sync.Mutex
	ch  chan struct{}
}

// generation is the count of notifications so far; pass it to since.
func (n *notifier) generation() uint64 { return n.gen.Load() }

// since returns a channel that is closed once a notification after generation gen has happened.
func (n *notifier) since(gen uint64) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gen.Load() != gen {
		return closedChan
	}
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// notify wakes every waiter.
func (n *notifier) notify() {
	n.mu.Lock()
	n.gen.Add(1)
	ch := n.ch
	n.ch = nil
	n.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

package aioproducer

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// executor is the worker pool that hands messageBatch values to librdkafka through the engine. Every
// batch of a topic goes to the same worker, and a worker enqueues its batches one after the other, so
// produce order per topic (and so per key and per partition) is librdkafka's enqueue order.
type executor struct {
	eng     engine
	workers []*worker
	seed    maphash.Seed
	ready   chan struct{} // a worker finished a batch: the loop may dispatch more
	space   notifier      // deliveries have freed room in librdkafka's queue

	// fail is the outcome for a record that never reached librdkafka (refused or aborted).
	fail func(rec *record, err error)
	// onFatal is told about a fatal error that enqueue returned.
	onFatal func(err kafka.Error)
	// enqueued is told that librdkafka was handed messages.
	enqueued func()
	bufs     *pool[recordBuf]
	stats    *counters
	hooks    *hookSet // for HookBatch; set before start

	// mu is held shared by a worker while it calls enqueue; abort takes it to wait such calls out.
	mu        sync.RWMutex
	abortOnce sync.Once
	aborted   chan struct{}
	abortErr  error // set before aborted is closed
	// discardErr, while set, fails what the workers have not handed to librdkafka (a transaction
	// being aborted).
	discardErr atomic.Pointer[error]

	wg sync.WaitGroup
}

type worker struct {
	queue chan messageBatch // capacity 1: one batch waits while one is being enqueued
	busy  atomic.Bool       // executing a batch
}

func newExecutor(eng engine, n int, bufs *pool[recordBuf], stats *counters, fail func(*record, error), onFatal func(kafka.Error), enqueued func()) *executor {
	ex := &executor{
		eng:      eng,
		enqueued: enqueued,
		seed:     maphash.MakeSeed(),
		ready:    make(chan struct{}, 1),
		fail:     fail,
		onFatal:  onFatal,
		bufs:     bufs,
		stats:    stats,
		aborted:  make(chan struct{}),
	}
	for range n {
		ex.workers = append(ex.workers, &worker{queue: make(chan messageBatch, 1)})
	}
	return ex
}

// start starts the workers; stop (after closeQueues) waits for them.
func (ex *executor) start() {
	for _, w := range ex.workers {
		ex.wg.Add(1)
		go ex.run(w)
	}
}

// route returns the worker that executes every batch of topic.
func (ex *executor) route(topic string) *worker {
	if len(ex.workers) == 1 {
		return ex.workers[0]
	}
	return ex.workers[maphash.String(ex.seed, topic)%uint64(len(ex.workers))]
}

// idle reports whether w is neither executing a batch nor has one waiting, so a batch sent to it now is
// executed without delay.
func (w *worker) idle() bool { return !w.busy.Load() && len(w.queue) == 0 }

// closeQueues tells the workers no more batches come; they finish what they hold and exit.
func (ex *executor) closeQueues() {
	for _, w := range ex.workers {
		close(w.queue)
	}
}

// wait waits for the workers to exit.
func (ex *executor) wait() { ex.wg.Wait() }

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

func (ex *executor) run(w *worker) {
	defer ex.wg.Done()
	for b := range w.queue {
		w.busy.Store(true)
		ex.execute(b)
		w.busy.Store(false)
		wakeUp(ex.ready)
	}
}

// execute hands one batch to librdkafka in order. A message librdkafka refuses fails alone; a full queue
// waits for deliveries and offers the rest again, so nothing behind it overtakes it.
func (ex *executor) execute(b messageBatch) {
	recs := b.records()
	backoff := minQueueFullBackoff
	// For HookBatch: what librdkafka took, and since when.
	hooked := len(ex.hooks.batch) > 0
	var start time.Time
	var took int
	var tookBytes int64
	if hooked {
		start = time.Now()
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
			for _, r := range recs {
				ex.stats.failedEarly.Add(1)
				ex.fail(r, *d)
			}
			recs = nil
			break
		}
		// Counted before the call, so a report that comes before it returns never makes the in-flight
		// gauge negative; what enqueue did not take is taken back.
		ex.stats.enqueued.Add(uint64(len(recs)))
		var size int64
		if hooked {
			// Summed before the call: what librdkafka takes may be delivered, and its record
			// recycled, before enqueue returns. What it did not take stays ours.
			for _, r := range recs {
				size += r.size
			}
		}
		n, err := ex.eng.enqueue(recs)
		ex.mu.RUnlock()
		if n < len(recs) {
			ex.stats.enqueued.Add(-uint64(len(recs) - n))
		}
		if hooked {
			for _, r := range recs[n:] {
				size -= r.size
			}
			took, tookBytes = took+n, tookBytes+size
		}
		if n > 0 {
			ex.enqueued()
		}
		recs = recs[n:]
		switch {
		case err == nil:
		case errors.Is(err, errQueueFull):
			ex.stats.queueFullWaits.Add(1)
			ex.waitForRoom(gen, &backoff)
		default:
			var ke kafka.Error
			if errors.As(err, &ke) && (ke.Code() == kafka.ErrFatal || ke.IsFatal()) {
				if cause, ok := ex.eng.fatalError(); ok {
					ke = cause
				}
				ex.onFatal(ke)
			}
			ex.stats.failedEarly.Add(1)
			ex.fail(recs[0], err)
			recs = recs[1:]
		}
	}
	for _, r := range recs { // left over only when aborted
		ex.stats.failedEarly.Add(1)
		ex.fail(r, ex.abortErr)
	}
	if hooked && took > 0 {
		ex.hooks.batched(BatchEvent{Topic: b.topic, Messages: took, Bytes: tookBytes, Took: time.Since(start)})
	}
	ex.stats.batches.Add(1)
	ex.stats.batchedMsgs.Add(uint64(b.Len()))
	clear(b.buf.recs)
	b.buf.recs = b.buf.recs[:0]
	ex.bufs.put(b.buf)
}

// The backoff of a worker whose librdkafka queue is full, between two offers that no delivery report
// came between.
const (
	minQueueFullBackoff = time.Millisecond
	maxQueueFullBackoff = 16 * time.Millisecond
)

// waitForRoom waits, after librdkafka's queue was found full, until a delivery report has come since
// generation gen, the executor aborts, or the backoff has passed. The backoff is needed: librdkafka
// frees a message's room only when the report event that carried it is destroyed, which may be after
// the report reached us, so the last report before the queue drains may come before the refusal.
func (ex *executor) waitForRoom(gen uint64, backoff *time.Duration) {
	t := time.NewTimer(*backoff)
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

package aioproducer

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// topicIdleAfter is how long a topic with nothing pending keeps its state in the producer (its
// batchManager entry, and the engine's librdkafka topic handle) before its shard forgets it.
const topicIdleAfter = 30 * time.Second

// dispatcher takes accepted records from the intake and has its workers hand them to the engine. It is
// split into shards, one per worker; a topic always belongs to the same shard (a hash of its name), so
// one worker hands all of a topic's records to the engine, one job after the other, and order per
// topic (and so per key and per partition) is the order Produce accepted them in.
//
// A worker takes everything its shard holds, up to a job's limits, whenever it is free: a message
// produced to an idle producer goes out at once, and under load jobs grow while the worker is busy with
// the previous one. A job spans topics, so an engine call stays large however many topics the load is
// spread over. Nothing waits on a timer.
type dispatcher struct {
	shards   []*shard
	seed     maphash.Seed
	exec     *executor
	eng      engine
	state    *producerState
	flushes  *flushTracker
	stats    *counters
	maxMsgs  int   // a job's messages at most (WithBatchSize)
	maxBytes int64 // a job's bytes at most (maxJobBytes)
	// idleAfter is how long a topic with nothing pending is kept (topicIdleAfter).
	idleAfter time.Duration
	wg        sync.WaitGroup
	// settling counts the settle calls in progress; while there are some, a worker notifies jobDone
	// after each job.
	settling atomic.Int32
	jobDone  notifier
}

// maxJobBytes bounds the key, value and header bytes of one job (at least one message goes, whatever
// its size). The engine copies values under 4 KiB into one arena per call: this bounds that arena.
const maxJobBytes = 4 << 20

// shard is one worker's part of the dispatcher: its pending records, grouped by topic, and the block
// of Futures Produce takes from.
type shard struct {
	mu       sync.Mutex
	batches  *batchManager // guarded by mu
	futures  []Future      // guarded by mu: what is left of the block Produce takes Futures from
	waiting  bool          // guarded by mu: the worker sleeps until wake
	wake     chan struct{} // capacity 1
	timeouts *timeoutManager
	forget   []string // the worker's: topics the last sweep forgot
	added    uint64   // guarded by mu: the records ever added
	handled  uint64   // guarded by mu: the records of the worker's finished jobs (handed over or failed)
}

func newDispatcher(workers, maxMsgs int, idleAfter time.Duration, exec *executor, eng engine, state *producerState, flushes *flushTracker, stats *counters) *dispatcher {
	d := &dispatcher{
		seed: maphash.MakeSeed(), exec: exec, eng: eng, state: state, flushes: flushes, stats: stats,
		maxMsgs: maxMsgs, maxBytes: maxJobBytes, idleAfter: idleAfter,
	}
	for range workers {
		d.shards = append(d.shards, &shard{
			batches: newBatchManager(), wake: make(chan struct{}, 1), timeouts: newTimeoutManager(idleAfter),
		})
	}
	return d
}

// start starts the workers; wait waits for them to end, which they do once the producer is closed and
// everything it accepted was handed to the engine or failed.
func (d *dispatcher) start() {
	for _, s := range d.shards {
		d.wg.Add(1)
		go d.run(s)
	}
}

func (d *dispatcher) wait() { d.wg.Wait() }

// shardOf returns the shard of topic.
func (d *dispatcher) shardOf(topic string) *shard {
	if len(d.shards) == 1 {
		return d.shards[0]
	}
	return d.shards[maphash.String(d.seed, topic)%uint64(len(d.shards))]
}

// add hands recs, accepted, to their shards, in order, unless the producer takes no messages now
// (closed, failed, or outside a transaction), which it decides under the shard's lock: a Close or a
// transaction's Commit or Abort, which change that under every shard's lock, sees each record either
// added (and counted in the Flush epoch) or refused. It returns how many it added before it refused the
// rest, and why. With withFuture, the first record gets a Future from the shard's block, returned.
func (d *dispatcher) add(recs []*record, withFuture bool) (int, *Future, error) {
	var fut *Future
	added := 0
	for added < len(recs) {
		s := d.shardOf(recs[added].msg.Topic)
		s.mu.Lock()
		if err := d.state.takesLocked(); err != nil {
			s.mu.Unlock()
			return added, nil, err
		}
		if withFuture && added == 0 {
			if len(s.futures) == 0 {
				s.futures = make([]Future, futureBlock)
			}
			fut = &s.futures[0]
			s.futures = s.futures[1:]
			fut.msg = recs[0].msg
			recs[0].fut = fut
		}
		// A run of records of this shard under one lock.
		start := added
		for added < len(recs) && (added == start || d.shardOf(recs[added].msg.Topic) == s) {
			added++
		}
		e := d.flushes.add(added - start)
		for _, r := range recs[start:added] {
			r.epoch = e
			s.batches.add(r)
		}
		s.added += uint64(added - start)
		wake := s.waiting
		s.waiting = false
		s.mu.Unlock()
		d.stats.accepted.Add(uint64(added - start))
		if wake {
			wakeUp(s.wake)
		}
	}
	return added, fut, nil
}

// lockAll takes every shard's lock, so that the caller can change what add decides on; unlockAll
// releases them and wakes the workers.
func (d *dispatcher) lockAll() {
	for _, s := range d.shards {
		s.mu.Lock()
	}
}

func (d *dispatcher) unlockAll() {
	for _, s := range d.shards {
		s.waiting = false
		s.mu.Unlock()
		wakeUp(s.wake)
	}
}

// run is a shard's worker: it takes a job whenever the shard holds records and hands it to the
// executor, forgets the topics that have been idle for idleAfter, and ends once the producer is
// closed and the shard is empty.
func (d *dispatcher) run(s *shard) {
	defer d.wg.Done()
	defer s.timeouts.disarm()
	j := &job{}
	for {
		s.mu.Lock()
		if n := len(j.recs); n > 0 {
			s.handled += uint64(n)
			j.reset()
			if d.settling.Load() > 0 {
				d.jobDone.notify()
			}
		}
		for s.batches.empty() && !d.state.closing() {
			if s.timeouts.due(time.Now()) {
				d.sweep(s)
				continue
			}
			if s.batches.known() > 0 {
				s.timeouts.arm()
			} else {
				s.timeouts.disarm()
			}
			s.waiting = true
			s.mu.Unlock()
			select {
			case <-s.wake:
			case <-s.timeouts.C():
				s.timeouts.fired()
			}
			s.mu.Lock()
		}
		now := time.Now()
		if !s.batches.take(j, d.maxMsgs, d.maxBytes, now) {
			s.mu.Unlock()
			return // closing, and nothing is left
		}
		if s.timeouts.due(now) {
			d.sweep(s)
		}
		s.mu.Unlock()
		d.exec.execute(j)
	}
}

// settle waits until the workers have finished a job with every record added before the call (handed
// it to the engine, or failed it), or ctx ends.
func (d *dispatcher) settle(ctx context.Context) error {
	d.settling.Add(1)
	defer d.settling.Add(-1)
	want := make([]uint64, len(d.shards))
	for i, s := range d.shards {
		s.mu.Lock()
		want[i] = s.added
		s.mu.Unlock()
	}
	for {
		gen := d.jobDone.generation()
		settled := true
		for i, s := range d.shards {
			s.mu.Lock()
			settled = s.handled >= want[i]
			s.mu.Unlock()
			if !settled {
				break
			}
		}
		if settled {
			return nil
		}
		select {
		case <-d.jobDone.since(gen):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sweep forgets the shard's topics that have been idle for idleAfter, and has the engine drop what
// it keeps for them. The engine is called with the lock released (and reacquired): the topics are
// this shard's, so no other worker uses them meanwhile.
func (d *dispatcher) sweep(s *shard) {
	now := time.Now()
	s.forget = s.batches.sweep(now.Add(-d.idleAfter), s.forget[:0])
	s.timeouts.swept(now)
	if len(s.forget) == 0 {
		return
	}
	s.mu.Unlock()
	d.eng.forget(s.forget)
	clear(s.forget)
	s.mu.Lock()
}

// topics is how many topics the shards keep state for (for tests).
func (d *dispatcher) topics() int {
	n := 0
	for _, s := range d.shards {
		s.mu.Lock()
		n += s.batches.known()
		s.mu.Unlock()
	}
	return n
}

package aioproducer

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// A broker that stops answering (a SIGSTOPped or overloaded process, a network partition that keeps
// the connection open) keeps its partitions "available" to librdkafka: their leader is known, the
// connection is up. librdkafka's sticky partitioner goes on sending unkeyed messages there, where they
// wait for socket.timeout.ms (60 s) or the broker's return, until they fill the producer's buffer and
// every Produce waits, for every partition (librdkafka#2677). No librdkafka client avoids it; Java's
// KIP-794 partitioner and franz-go's adaptive one steer unkeyed records away from partitions whose
// queues grow.
//
// partitionHealth does the same for the engine. It counts, per topic partition, the messages handed
// to librdkafka whose report has not come (held) and when the partition last made progress (a
// report), and per broker when a partition it leads last made progress. A partition that holds
// messages and has made no progress for unavailableAfter, whose leader has made none either while
// other brokers did, is marked unavailable (scan). It is the broker that stops answering: a partition
// alone may wait far longer on a healthy broker, since librdkafka sends one partition per produce
// request, at most 5 requests in flight per broker with idempotence, so with thousands of partitions
// on one broker each waits its turn for seconds. A partition whose leader is not known yet is not
// marked. A marked partition's unkeyed messages go elsewhere (choose), and what is produced to it by
// key or explicitly may hold at most half the buffer (stuckBudget), so Produce for the healthy
// partitions goes on. The mark goes with its next report. While nothing makes progress (every broker
// down, a cluster-wide stall) nothing is marked: nothing could do better.
//
// The counts are atomics: a topic's worker adds (engine.enqueue), the engine's report goroutine
// subtracts and scans. The set of topics is guarded by mu.
type partitionHealth struct {
	after      time.Duration // unavailableAfter
	marked     atomic.Int32  // partitions marked, all topics: 0 is the common case, one atomic load
	markedHeld atomic.Int64  // the messages the marked partitions held at the last scan
	progressed atomic.Int64  // when any partition last made progress (UnixNano)
	// brokers is when a partition led by each broker last made progress (UnixNano), by broker id:
	// copied on write (a broker is added under mu), read without a lock.
	brokers atomic.Pointer[map[int32]*atomic.Int64]

	mu     sync.Mutex
	topics map[string]*topicHealth
}

// unavailableAfter is how long a partition may hold messages without a report, while others report,
// before it is marked unavailable. The request round trip of a healthy broker under load stays well
// below it; a broker that stopped answering crosses it long before socket.timeout.ms.
const unavailableAfter = time.Second

func newPartitionHealth(after time.Duration) *partitionHealth {
	h := &partitionHealth{after: after, topics: map[string]*topicHealth{}}
	h.brokers.Store(&map[int32]*atomic.Int64{})
	return h
}

// broker returns broker id's progress clock, made on first use.
func (h *partitionHealth) broker(id int32) *atomic.Int64 {
	if c := (*h.brokers.Load())[id]; c != nil {
		return c
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.brokers.Load()
	if c := old[id]; c != nil {
		return c
	}
	m := make(map[int32]*atomic.Int64, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	c := new(atomic.Int64)
	m[id] = c
	h.brokers.Store(&m)
	return c
}

// topicHealth is one topic's partitions. parts grows when a larger partition count is learned; the
// old slice's counters are carried over under mu, so a partition's counter may be briefly split
// between two slices, which only makes a mark come a scan later.
type topicHealth struct {
	h      *partitionHealth
	mu     sync.Mutex
	parts  atomic.Pointer[[]partHealth]
	count  atomic.Int32 // partitions known from the cluster's metadata, 0 while unknown
	leader atomic.Pointer[[]int32]

	// The sticky choice for unkeyed messages: its topic's worker alone reads and writes them.
	sticky      int32
	stickyUntil time.Time
}

type partHealth struct {
	held     atomic.Int64
	progress atomic.Int64 // UnixNano of the last report, or of when held went from 0 to 1
	marked   atomic.Bool
}

// markedTopics returns the topics that have a partition marked.
func (h *partitionHealth) markedTopics() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for name, t := range h.topics {
		for i := range t.partitions() {
			if t.isMarked(int32(i)) {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

// topic returns name's health, made on first use.
func (h *partitionHealth) topic(name string) *topicHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t == nil {
		t = &topicHealth{h: h, sticky: -1}
		h.topics[name] = t
	}
	return t
}

// lookup returns name's health, or nil.
func (h *partitionHealth) lookup(name string) *topicHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.topics[name]
}

// forget drops topics: their marks are lifted (messages still held report to the dropped health, and
// nobody looks at it again).
func (h *partitionHealth) forget(names []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range names {
		if t := h.topics[n]; t != nil {
			for i := range t.partitions() {
				t.unmark(i)
			}
			delete(h.topics, n)
		}
	}
}

func (t *topicHealth) partitions() []partHealth {
	if p := t.parts.Load(); p != nil {
		return *p
	}
	return nil
}

// maxTracked bounds the partitions partitionHealth counts: an explicit partition the topic does not
// have (a user's mistake, which librdkafka fails) must not grow the counters' slice to its number.
const maxTracked = 1 << 14

// tracks reports whether partition p of t is counted: within the partitions known from metadata, or
// while those are unknown, below maxTracked.
func (t *topicHealth) tracks(p int32) bool {
	if n := t.count.Load(); n > 0 {
		return p >= 0 && p < n
	}
	return p >= 0 && p < maxTracked
}

// part returns partition p's counters, growing the slice if p is beyond it (p must be tracked).
func (t *topicHealth) part(p int32) *partHealth {
	if ps := t.partitions(); int(p) < len(ps) {
		return &ps[p]
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := t.partitions()
	if int(p) < len(ps) {
		return &ps[p]
	}
	grown := make([]partHealth, max(int(p)+1, 2*len(ps)))
	for i := range ps {
		grown[i].held.Store(ps[i].held.Load())
		grown[i].progress.Store(ps[i].progress.Load())
		grown[i].marked.Store(ps[i].marked.Load())
	}
	t.parts.Store(&grown)
	return &grown[p]
}

// leaderOf returns partition p's leader, or -1 while it is not known.
func (t *topicHealth) leaderOf(p int32) int32 {
	if l := t.leader.Load(); l != nil && p >= 0 && int(p) < len(*l) {
		return (*l)[p]
	}
	return -1
}

// setLeaders records the partition count and leaders learned from the cluster's metadata.
func (t *topicHealth) setLeaders(leaders []int32) {
	t.leader.Store(&leaders)
	if len(leaders) > 0 {
		t.part(int32(len(leaders) - 1))
	}
	t.count.Store(int32(len(leaders)))
}

// enqueued counts n messages handed to librdkafka for partition p at now.
func (t *topicHealth) enqueued(p int32, n int64, now int64) {
	ph := t.part(p)
	if ph.held.Add(n) == n {
		ph.progress.Store(now) // it was idle: the wait for a report starts now
	}
}

// reported counts n reports of partition p at now; progress says whether they show the partition
// working (a message that timed out in librdkafka does not).
func (t *topicHealth) reported(p int32, n int64, now int64, progress bool) {
	ph := t.part(p)
	ph.held.Add(-n)
	if progress {
		ph.progress.Store(now)
		t.h.progressed.Store(now)
		if l := t.leaderOf(p); l >= 0 {
			t.h.broker(l).Store(now)
		}
		t.unmark(int(p))
	}
}

// unmark lifts partition i's mark, if it has one.
func (t *topicHealth) unmark(i int) {
	ps := t.partitions()
	if i < len(ps) && ps[i].marked.CompareAndSwap(true, false) {
		t.h.marked.Add(-1)
	}
}

// isMarked reports whether partition p is marked unavailable.
func (t *topicHealth) isMarked(p int32) bool {
	ps := t.partitions()
	return int(p) < len(ps) && ps[p].marked.Load()
}

// allMarked reports whether every partition of a topic whose partition count is known is marked: its
// unkeyed messages have nowhere else to go.
func (t *topicHealth) allMarked() bool {
	n := int(t.count.Load())
	ps := t.partitions()
	if n == 0 || len(ps) < n {
		return false
	}
	for i := range n {
		if !ps[i].marked.Load() {
			return false
		}
	}
	return true
}

// admit counts one more message for the marked partitions, unless they hold limit already, and
// reports whether it did. The next scan replaces the estimate with what they hold.
func (h *partitionHealth) admit(limit int64) bool {
	for {
		n := h.markedHeld.Load()
		if n >= limit {
			return false
		}
		if h.markedHeld.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// tally sums counts by partition run: consecutive calls for the same topic and partition make one
// atomic update, not one per message.
type tally struct {
	t    *topicHealth
	p    int32
	n    int64
	prog bool // reports: all showed progress
}

// enqueued counts one message for (t, p), flushing the run before if it is another's.
func (c *tally) enqueued(t *topicHealth, p int32, now int64) {
	if c.n > 0 && (c.t != t || c.p != p) {
		c.flushEnqueued(now)
	}
	c.t, c.p = t, p
	c.n++
}

func (c *tally) flushEnqueued(now int64) {
	if c.n > 0 {
		c.t.enqueued(c.p, c.n, now)
		c.n = 0
	}
}

// reported counts one report (n 1: of a counted message; 0: progress only) for (t, p).
func (c *tally) reported(t *topicHealth, p int32, n int64, progress bool, now int64) {
	if c.t != nil && (c.t != t || c.p != p || c.prog != progress) {
		c.flushReported(now)
	}
	c.t, c.p, c.prog = t, p, progress
	c.n += n
}

func (c *tally) flushReported(now int64) {
	if c.t != nil {
		c.t.reported(c.p, c.n, now, c.prog)
		c.t, c.n = nil, 0
	}
}

// scan marks the partitions that hold messages and have made no progress for h.after, nor has their
// leader, while another partition made some, and lifts the marks of those that hold none. The engine's report goroutine
// calls it every after/4 while messages are held; it costs the partitions of the topics in use.
func (h *partitionHealth) scan(now time.Time) {
	n := now.UnixNano()
	cutoff := n - int64(h.after)
	othersProgress := h.progressed.Load() > cutoff
	var markedHeld int64
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.topics {
		ps := t.partitions()
		for i := range ps {
			ph := &ps[i]
			held := ph.held.Load()
			switch {
			case held <= 0:
				t.unmark(i)
			case othersProgress && ph.progress.Load() < cutoff && h.brokerStalled(t.leaderOf(int32(i)), cutoff):
				if ph.marked.CompareAndSwap(false, true) {
					h.marked.Add(1)
				}
			}
			if ph.marked.Load() {
				markedHeld += max(held, 0)
			}
		}
	}
	h.markedHeld.Store(markedHeld)
}

// brokerStalled reports whether broker id is known and has made no progress since cutoff (a broker
// none of whose partitions ever reported has no clock yet: no progress).
func (h *partitionHealth) brokerStalled(id int32, cutoff int64) bool {
	if id < 0 {
		return false
	}
	c := (*h.brokers.Load())[id]
	return c == nil || c.Load() < cutoff
}

// choose returns the partition for the unkeyed messages of one topic run at now, sticky for linger
// as librdkafka's sticky partitioner is (sticky.partitioning.linger.ms), or -1 while the partition
// count is unknown (librdkafka's sticky partitioner decides then). A new choice takes the less loaded
// of two random partitions that are not marked (power of two choices: about as even as a weighted
// pick, in constant time), so a partition whose messages pile up is chosen less and less even before
// it is marked; if every partition is marked, the least loaded. Called by the topic's worker only.
func (t *topicHealth) choose(now time.Time, linger time.Duration) int32 {
	n := t.count.Load()
	if n <= 0 {
		return -1
	}
	if t.sticky >= 0 && t.sticky < n && now.Before(t.stickyUntil) && !t.isMarked(t.sticky) {
		return t.sticky
	}
	ps := t.partitions()
	pick := int32(-1)
	for range 4 { // a few draws find an unmarked pair unless most are marked
		a, b := rand.Int32N(n), rand.Int32N(n)
		if ps[a].marked.Load() {
			a = b
		}
		if ps[b].marked.Load() {
			b = a
		}
		if ps[a].marked.Load() {
			continue
		}
		pick = a
		if ps[b].held.Load() < ps[a].held.Load() {
			pick = b
		}
		break
	}
	if pick < 0 { // (nearly) every partition is marked: the least loaded
		pick = 0
		for i := int32(1); i < n; i++ {
			if ps[i].held.Load() < ps[pick].held.Load() {
				pick = i
			}
		}
	}
	t.sticky, t.stickyUntil = pick, now.Add(linger)
	return pick
}

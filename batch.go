package aioproducer

import "time"

// batchManager groups accepted messages by topic until a worker takes them: one pending run of records
// per topic, and the topics that hold records in the order their oldest record arrived. take fills a job
// with whole topic runs, oldest first, until the job's message or byte limit; a topic that did not fit
// whole keeps its rest at the front. Every operation costs the records it moves, never the number of
// topics: the pending topics are an intrusive list, and a topic's state is found by map lookup (one per
// message, or none while messages keep coming to the same topic).
//
// A topic with nothing pending is kept for reuse until it has been idle for idleAfter; sweep forgets
// it then, so a producer that writes to many short-lived topics does not keep one entry per topic it
// ever used.
//
// Each dispatcher shard owns one; it is not safe for concurrent use (the shard's lock guards it).
type batchManager struct {
	topics map[string]*topicRun
	head   *topicRun // oldest first; linked through next/prev while pending
	tail   *topicRun
	last   *topicRun // the topic of the last add: a run of one topic skips the map lookup
	msgs   int       // records pending, all topics
	bytes  int64
}

// topicRun is one topic's pending records: recs[off:].
type topicRun struct {
	topic      string
	recs       []*record
	off        int
	bytes      int64
	prev, next *topicRun
	pending    bool      // in the list
	idleSince  time.Time // when it was last emptied; zero while pending
}

func newBatchManager() *batchManager {
	return &batchManager{topics: make(map[string]*topicRun)}
}

// add appends rec to its topic's pending records.
func (m *batchManager) add(rec *record) {
	t := m.last
	if t == nil || t.topic != rec.msg.Topic {
		t = m.topics[rec.msg.Topic]
		if t == nil {
			t = &topicRun{topic: rec.msg.Topic}
			m.topics[t.topic] = t
		}
		m.last = t
	}
	if !t.pending {
		t.pending, t.idleSince = true, time.Time{}
		t.prev, t.next = m.tail, nil
		if m.tail != nil {
			m.tail.next = t
		} else {
			m.head = t
		}
		m.tail = t
	}
	t.recs = append(t.recs, rec)
	t.bytes += rec.size
	m.msgs++
	m.bytes += rec.size
}

// empty reports whether no record is pending.
func (m *batchManager) empty() bool { return m.msgs == 0 }

// take moves pending records into j, whole topics oldest first, until j holds maxMsgs messages or
// maxBytes bytes (at least one message), and reports whether it took any. now stamps the topics it
// empties.
func (m *batchManager) take(j *job, maxMsgs int, maxBytes int64, now time.Time) bool {
	took := false
	for t := m.head; t != nil && len(j.recs) < maxMsgs; t = m.head {
		pend := t.recs[t.off:]
		n := 0
		var size int64
		for n < len(pend) && len(j.recs)+n < maxMsgs {
			s := pend[n].size
			if (took || n > 0) && j.bytes+size+s > maxBytes {
				break
			}
			size += s
			n++
		}
		if n == 0 {
			break
		}
		start := len(j.recs)
		j.recs = append(j.recs, pend[:n]...)
		j.batches = append(j.batches, newMessageBatch(t.topic, j.recs[start:]))
		j.bytes += size
		took = true
		m.msgs -= n
		m.bytes -= size
		t.bytes -= size
		clear(pend[:n])
		if n < len(pend) {
			// The rest stays at the front: it is still the oldest. Once most of the slice lies
			// before it, move it down, so that a topic that never empties does not grow its slice.
			t.off += n
			if t.off > len(t.recs)/2 {
				rest := copy(t.recs, t.recs[t.off:])
				clear(t.recs[rest:])
				t.recs, t.off = t.recs[:rest], 0
			}
			break
		}
		t.recs, t.off = t.recs[:0], 0
		m.unlink(t)
		t.idleSince = now
	}
	return took
}

// unlink removes t from the pending list.
func (m *batchManager) unlink(t *topicRun) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		m.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		m.tail = t.prev
	}
	t.prev, t.next, t.pending = nil, nil, false
}

// sweep forgets the topics with nothing pending that have been idle since before cutoff, and returns
// their names (appended to into). It walks every topic: the shard calls it once per idle period.
func (m *batchManager) sweep(cutoff time.Time, into []string) []string {
	for name, t := range m.topics {
		if !t.pending && t.idleSince.Before(cutoff) {
			delete(m.topics, name)
			if m.last == t {
				m.last = nil
			}
			into = append(into, name)
		}
	}
	return into
}

// known is how many topics the manager keeps state for, pending or idle.
func (m *batchManager) known() int { return len(m.topics) }

package aioproducer

import (
	"slices"
	"time"
)

// batchManager groups accepted messages by topic into the messageBatch values the executor sends. It
// manages the buffer in front of the executor: one pending batch per topic, and the order in which the
// pending batches started, oldest first. It is owned by the Producer's loop goroutine and not safe for
// concurrent use.
type batchManager struct {
	size    int
	now     func() time.Time
	bufs    *pool[recordBuf]
	pending map[string]*pendingBatch
	order   []*pendingBatch // non-empty pending batches, oldest first message first
}

type pendingBatch struct {
	topic  string
	buf    *recordBuf // nil while empty
	oldest time.Time  // when its first message arrived
}

func newBatchManager(size int, now func() time.Time, bufs *pool[recordBuf]) *batchManager {
	return &batchManager{size: size, now: now, bufs: bufs, pending: make(map[string]*pendingBatch)}
}

// add appends rec to its topic's pending batch and reports whether that batch is now full.
func (m *batchManager) add(rec *record) (pb *pendingBatch, full bool) {
	pb = m.pending[rec.msg.Topic]
	if pb == nil {
		pb = &pendingBatch{topic: rec.msg.Topic}
		m.pending[pb.topic] = pb
	}
	if pb.buf == nil {
		pb.buf = m.bufs.get()
		pb.oldest = m.now()
		m.order = append(m.order, pb)
	}
	pb.buf.recs = append(pb.buf.recs, rec)
	return pb, len(pb.buf.recs) >= m.size
}

// take seals pb's messages into a messageBatch and empties pb.
func (m *batchManager) take(pb *pendingBatch) messageBatch {
	b := newMessageBatch(pb.topic, pb.buf)
	pb.buf = nil
	for i, x := range m.order {
		if x == pb {
			m.order = slices.Delete(m.order, i, i+1)
			break
		}
	}
	return b
}

// oldest returns the pending batch whose first message has waited longest, or nil.
func (m *batchManager) oldest() *pendingBatch {
	if len(m.order) == 0 {
		return nil
	}
	return m.order[0]
}

// pendingBatches returns the non-empty pending batches, oldest first. The slice is the manager's own:
// take changes it, so copy it before taking while iterating.
func (m *batchManager) pendingBatches() []*pendingBatch { return m.order }

package aioproducer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer/internal/readback"
)

// ledger is an outcome ledger for reliability tests: every message a test tries to produce gets an id
// (0..n-1), and the ledger records whether the producer accepted or rejected it and every outcome it
// was handed, from a callback, a result channel or a Future. It then checks the promise "exactly one
// outcome per accepted message, none for a rejected one" and, against messages read back from the log,
// "every delivered message is in the log exactly once, where its delivery says; a message reported
// failed is not (at most once when its outcome is unknown)".
//
// Its storage is dense and allocated up front, so it costs nothing per message while a test measures
// the producer's heap. It is safe for concurrent use.
type ledger struct {
	n int

	mu        sync.Mutex
	state     []uint8 // ledgerUntried, ledgerAccepted, ledgerRejected
	outcomes  []uint16
	delivered []bool
	part      []int32
	off       []int64
	unknown   []bool           // failed with an outcome-unknown error
	futs      map[int]*Future  // futures not yet collected
	errs      map[string]int   // failures by class
	rejects   map[string]int   // rejections by class
	problems  []string         // violations seen as they happened (capped)
	nProblems int              // all violations
	firstErr  map[string]error // one example per failure class
}

const (
	ledgerUntried uint8 = iota
	ledgerAccepted
	ledgerRejected
)

func newLedger(n int) *ledger {
	return &ledger{
		n: n, state: make([]uint8, n), outcomes: make([]uint16, n), delivered: make([]bool, n),
		part: make([]int32, n), off: make([]int64, n), unknown: make([]bool, n),
		futs: map[int]*Future{}, errs: map[string]int{}, rejects: map[string]int{}, firstErr: map[string]error{},
	}
}

func (l *ledger) problemf(format string, args ...any) {
	l.nProblems++
	if len(l.problems) < 20 {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	}
}

// accepted records that the producer accepted message id.
func (l *ledger) accepted(id int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state[id] != ledgerUntried {
		l.problemf("message %d accepted after it was already %d", id, l.state[id])
	}
	l.state[id] = ledgerAccepted
}

// rejected records that the producer refused message id with err: it must never get an outcome.
func (l *ledger) rejected(id int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state[id] != ledgerUntried {
		l.problemf("message %d rejected after it was already %d", id, l.state[id])
	}
	l.state[id] = ledgerRejected
	l.rejects[errClass(err)]++
	if l.outcomes[id] > 0 {
		l.problemf("message %d rejected (%v) but it got an outcome", id, err)
	}
}

// result records the outcome of a Produce-style call for message id: f (may be nil) and err.
func (l *ledger) result(id int, f *Future, err error) {
	if err != nil {
		l.rejected(id, err)
		return
	}
	l.accepted(id)
	if f != nil {
		l.mu.Lock()
		l.futs[id] = f
		l.mu.Unlock()
	}
}

// fn returns a ProduceFunc callback that records message id's outcome.
func (l *ledger) fn(id int) func(Delivery, error) {
	return func(d Delivery, err error) { l.outcome(id, d, err) }
}

// outcome records one outcome of message id.
func (l *ledger) outcome(id int, d Delivery, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outcomes[id]++
	switch {
	case l.outcomes[id] > 1:
		l.problemf("message %d: outcome number %d (%v, %v)", id, l.outcomes[id], d, err)
		return
	case l.state[id] == ledgerRejected:
		l.problemf("message %d was rejected but got an outcome (%v, %v)", id, d, err)
	}
	if err == nil {
		l.delivered[id] = true
		l.part[id], l.off[id] = d.Partition, d.Offset
		return
	}
	c := errClass(err)
	l.errs[c]++
	if _, ok := l.firstErr[c]; !ok {
		l.firstErr[c] = err
	}
	l.unknown[id] = IsOutcomeUnknown(err)
}

// settle waits until every accepted message has its outcome: it collects every Future and waits for
// the callbacks. It fails the test, naming the stragglers, if that takes longer than d: a hang.
func (l *ledger) settle(t testing.TB, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	l.mu.Lock()
	futs := l.futs
	l.futs = map[int]*Future{}
	l.mu.Unlock()
	var hung []int
	for id, f := range futs {
		dv, err := f.Wait(ctx)
		if ctx.Err() != nil {
			hung = append(hung, id)
			continue
		}
		l.outcome(id, dv, err)
	}
	for {
		missing := l.missing(10)
		if len(missing) == 0 && len(hung) == 0 {
			return
		}
		if ctx.Err() != nil {
			sort.Ints(hung)
			t.Fatalf("no outcome after %v: futures %v (of %d), callbacks e.g. %v", d, hung[:min(len(hung), 10)], len(hung), missing)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// missing returns up to max accepted messages that have no outcome yet.
func (l *ledger) missing(max int) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for id, s := range l.state {
		if s == ledgerAccepted && l.outcomes[id] == 0 {
			out = append(out, id)
			if len(out) == max {
				break
			}
		}
	}
	return out
}

// ledgerSummary is what a ledger counted.
type ledgerSummary struct {
	Tried, Accepted, Rejected, Delivered, Failed, Unknown int
	Failures, Rejections                                  map[string]int
}

func (s ledgerSummary) String() string {
	return fmt.Sprintf("tried %d: accepted %d (delivered %d, failed %d [%d outcome unknown] %s), rejected %d %s",
		s.Tried, s.Accepted, s.Delivered, s.Failed, s.Unknown, fmtCounts(s.Failures), s.Rejected, fmtCounts(s.Rejections))
}

func fmtCounts(m map[string]int) string {
	if len(m) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + strconv.Itoa(m[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// verify checks, after settle, that every accepted message has exactly one outcome and no rejected
// message has any, and returns the counts.
func (l *ledger) verify(t testing.TB) ledgerSummary {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := ledgerSummary{Failures: map[string]int{}, Rejections: map[string]int{}}
	for id, st := range l.state {
		switch st {
		case ledgerUntried:
			if l.outcomes[id] > 0 {
				l.problemf("message %d was never produced but got an outcome", id)
			}
			continue
		case ledgerAccepted:
			s.Accepted++
			if l.outcomes[id] != 1 {
				l.problemf("accepted message %d has %d outcomes", id, l.outcomes[id])
			}
			switch {
			case l.outcomes[id] == 0:
			case l.delivered[id]:
				s.Delivered++
			default:
				s.Failed++
				if l.unknown[id] {
					s.Unknown++
				}
			}
		case ledgerRejected:
			s.Rejected++
			if l.outcomes[id] != 0 {
				l.problemf("rejected message %d has %d outcomes", id, l.outcomes[id])
			}
		}
		s.Tried++
	}
	for k, v := range l.errs {
		s.Failures[k] = v
	}
	for k, v := range l.rejects {
		s.Rejections[k] = v
	}
	if l.nProblems > 0 {
		t.Errorf("ledger: %d violations, e.g.:\n  %s", l.nProblems, strings.Join(l.problems, "\n  "))
	}
	for c, err := range l.firstErr {
		t.Logf("ledger: failure class %s, e.g. %v", c, err)
	}
	return s
}

// verifyStats checks the producer's own counters against the ledger: it catches a second outcome
// handed to a Future (which the ledger cannot see) and a buffer that was not freed. other is the
// number of outcomes (delivered, failed) the producer counted for messages outside the ledger.
func (l *ledger) verifyStats(t testing.TB, p *Producer, s ledgerSummary, otherDelivered, otherFailed int) {
	t.Helper()
	st := p.Stats()
	require.EqualValues(t, s.Delivered+otherDelivered, st.Delivered, "Stats.Delivered vs ledger: %+v", st)
	require.EqualValues(t, s.Failed+otherFailed, st.Failed, "Stats.Failed vs ledger: %+v", st)
	require.Zero(t, st.HeldMessages, "buffer not freed: %+v", st)
	require.Zero(t, st.HeldBytes, "buffer not freed: %+v", st)
	// Buffered and InFlight may lag for a moment: the executor counts a message enqueued only after
	// librdkafka took it, which may be after its report was counted.
	require.Eventually(t, func() bool { st := p.Stats(); return st.Buffered == 0 && st.InFlight == 0 },
		5*time.Second, time.Millisecond, "gauges not back to zero: %+v", st)
}

// stateOf returns what the ledger knows of message id.
func (l *ledger) stateOf(id int) uint8 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state[id]
}

// logSummary is what checkLog found.
type logSummary struct {
	Records, DeliveredOnce, FailedAbsent, UnknownPresent int
	// Duplicated and ExtraCopies count delivered messages found more than once, and their extra
	// copies: only when checkLogTolerating let them pass.
	Duplicated, ExtraCopies int
}

func (s logSummary) String() string {
	out := fmt.Sprintf("%d records in the log: every delivered message once at its offset (%d), failed absent %d, outcome-unknown present %d",
		s.Records, s.DeliveredOnce, s.FailedAbsent, s.UnknownPresent)
	if s.Duplicated > 0 {
		out += fmt.Sprintf("; DUPLICATED delivered messages %d (%d extra copies)", s.Duplicated, s.ExtraCopies)
	}
	return out
}

// checkLog checks the records read back from the log against the outcomes: every delivered message is
// there exactly once, at the partition and offset of its delivery; a message that failed with a
// definite error is not there; one whose outcome is unknown is there at most once; nothing else is
// there (records without an id of this ledger are counted as foreign and must be expected by the
// caller, e.g. a warm-up message; foreign < 0 leaves them unchecked).
func (l *ledger) checkLog(t testing.TB, recs []logRecord, foreign int) logSummary {
	t.Helper()
	return l.checkLogTolerating(t, recs, foreign, false)
}

// checkLogTolerating is checkLog that, with dups, lets a delivered message be in the log more than
// once (one copy at its delivery's place) and counts the extra copies instead: for a known bug below
// the producer.
func (l *ledger) checkLogTolerating(t testing.TB, recs []logRecord, foreign int, dups bool) logSummary {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	count := make([]int32, l.n)
	var problems []string
	add := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	nForeign := 0
	atPlace := make([]bool, l.n)
	for _, r := range recs {
		if r.id < 0 || r.id >= l.n {
			nForeign++
			continue
		}
		count[r.id]++
		if !l.delivered[r.id] {
			continue
		}
		if r.partition == l.part[r.id] && r.offset == l.off[r.id] {
			atPlace[r.id] = true
		} else if !dups {
			add("message %d delivered at %d@%d but read at %d@%d", r.id, l.part[r.id], l.off[r.id], r.partition, r.offset)
		}
	}
	s := logSummary{Records: len(recs)}
	bad := 0
	for id := range l.n {
		c := count[id]
		switch {
		case l.state[id] != ledgerAccepted:
			if c != 0 {
				bad++
				add("message %d was not accepted but is in the log %d times", id, c)
			}
		case l.delivered[id]:
			switch {
			case c == 1:
				s.DeliveredOnce++
			case dups && c > 1 && atPlace[id]:
				s.Duplicated++
				s.ExtraCopies += int(c) - 1
			default:
				bad++
				add("delivered message %d is in the log %d times", id, c)
			}
			if dups && c > 0 && !atPlace[id] {
				bad++
				add("delivered message %d is not at its delivery's place %d@%d", id, l.part[id], l.off[id])
			}
		case l.unknown[id]:
			if c > 1 {
				bad++
				add("outcome-unknown message %d is in the log %d times", id, c)
			}
			if c == 1 {
				s.UnknownPresent++
			}
		default:
			if c != 0 {
				bad++
				add("message %d was reported failed but is in the log %d times", id, c)
			} else {
				s.FailedAbsent++
			}
		}
	}
	if foreign >= 0 && nForeign != foreign {
		add("%d records without a ledger id in the log, %d expected", nForeign, foreign)
		bad++
	}
	if bad > 0 || len(problems) > 0 {
		t.Errorf("log read-back: %d problems, e.g.:\n  %s", bad, strings.Join(problems, "\n  "))
	}
	return s
}

// errClass names an error for counting: its kafka.ErrorCode and the sentinels it matches.
func errClass(err error) string {
	var parts []string
	var ke kafka.Error
	if errors.As(err, &ke) {
		parts = append(parts, ke.Code().String())
	}
	for _, s := range []struct {
		err  error
		name string
	}{{ErrClosed, "ErrClosed"}, {ErrFatal, "ErrFatal"}, {ErrInvalidMessage, "ErrInvalidMessage"},
		{ErrBufferFull, "ErrBufferFull"}, {context.Canceled, "Canceled"}, {context.DeadlineExceeded, "DeadlineExceeded"}} {
		if errors.Is(err, s.err) {
			parts = append(parts, s.name)
		}
	}
	if len(parts) == 0 {
		return "other(" + err.Error() + ")"
	}
	return strings.Join(parts, "+")
}

// ledgerIDHeader is the header that carries a message's ledger id into the log.
const ledgerIDHeader = "ledger-id"

// ledgerMessage returns message id for topic: the id in a header and in the value, key chosen by the
// caller.
func ledgerMessage(topic string, id int, key []byte) *Message {
	ids := strconv.Itoa(id)
	return &Message{
		Topic:   topic,
		Key:     key,
		Value:   []byte("ledger message " + ids),
		Headers: []Header{{Key: ledgerIDHeader, Value: []byte(ids)}},
	}
}

// logRecord is one record read back from the log.
type logRecord struct {
	id        int // -1 without a ledger id
	partition int32
	offset    int64
	key       []byte
}

// readLog reads every record of topic back, up to the high watermarks.
func readLog(t testing.TB, bootstrap, topic string, partitions int) []logRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ms, err := readback.ReadTopic(ctx, kafka.ConfigMap{"bootstrap.servers": bootstrap}, topic)
	require.NoError(t, err, "read back %s", topic)
	out := make([]logRecord, 0, len(ms))
	for _, e := range ms {
		require.Less(t, e.TopicPartition.Partition, int32(partitions), "a record of %s outside partitions 0..%d", topic, partitions-1)
		r := logRecord{id: -1, partition: e.TopicPartition.Partition, offset: int64(e.TopicPartition.Offset), key: e.Key}
		for _, h := range e.Headers {
			if h.Key == ledgerIDHeader {
				if id, err := strconv.Atoi(string(h.Value)); err == nil {
					r.id = id
				}
			}
		}
		out = append(out, r)
	}
	return out
}

package aioproducertest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seed-f937cf20/aioproducer"
)

// LedgerHeader is the header in which a Ledger's message carries its id into the log.
const LedgerHeader = "aioproducertest-ledger-id"

// Ledger checks a producer's two promises in a test, against any cluster:
//
//   - every message the producer accepted gets exactly one outcome (a delivery or an error), and a
//     message it refused gets none (Check, after Settle);
//   - the topic then holds every delivered message exactly once, at the partition and offset of its
//     delivery, in produce order per key; no message that failed with a definite error; a message
//     whose outcome is unknown (aioproducer.IsOutcomeUnknown) at most once; and nothing else
//     (CheckLog, with the records ReadTopic returns).
//
// Give every message an id with Track (or let Produce do it), which adds the LedgerHeader header;
// then tell the ledger what Produce said (Accepted, Refused, Future) and every outcome (Report, or the
// Callback for ProduceFunc). A ledger is safe for concurrent use. Produce order per key is the order
// of the ids: track the messages of one key from one goroutine, in the order you produce them.
//
// Its storage per message is 32 bytes (Grow allocates it up front), plus the errors and each distinct
// topic and key, so that a test can measure the producer's heap with a ledger of millions of messages.
type Ledger struct {
	mu       sync.Mutex
	entries  []ledgerEntry
	names    []string                    // the topics and keys, each once
	nameIdx  map[string]int32            // index in names
	errs     map[int]error               // the error of each refused or failed message
	dTopics  map[int]string              // a delivery's topic where it is not the message's
	last     time.Time                   // when the latest first outcome came
	futs     map[int]*aioproducer.Future // accepted with a Future, not collected by Settle yet
	problems []string                    // violations seen as they happened (the first 20)
	nProblem int
}

type ledgerState uint8

const (
	ledgerTracked ledgerState = iota
	ledgerAccepted
	ledgerRefused
)

// ledgerEntry is one message, kept small: see Ledger.
type ledgerEntry struct {
	off      int64 // the first outcome's Delivery.Offset
	ts       int64 // its Delivery.Timestamp in UnixNano; noTimestamp: the zero Time
	topic    int32 // the message's, in names
	key      int32 // in names; noKey: nil or empty
	part     int32 // Delivery.Partition
	outcomes uint16
	state    ledgerState
}

const (
	noKey       = -1
	noTimestamp = math.MinInt64
)

// NewLedger returns an empty Ledger.
func NewLedger() *Ledger {
	return &Ledger{
		nameIdx: map[string]int32{}, errs: map[int]error{}, dTopics: map[int]string{},
		futs: map[int]*aioproducer.Future{},
	}
}

// name returns s's index in names, adding it.
func (l *Ledger) name(s string) int32 {
	i, ok := l.nameIdx[s]
	if !ok {
		i = int32(len(l.names))
		l.names = append(l.names, s)
		l.nameIdx[s] = i
	}
	return i
}

// delivery returns the delivery of message id's first outcome.
func (l *Ledger) delivery(id int) aioproducer.Delivery {
	e := &l.entries[id]
	if e.outcomes == 0 {
		return aioproducer.Delivery{}
	}
	d := aioproducer.Delivery{Topic: l.names[e.topic], Partition: e.part, Offset: e.off}
	if t, ok := l.dTopics[id]; ok {
		d.Topic = t
	}
	if e.ts != noTimestamp {
		d.Timestamp = time.Unix(0, e.ts)
	}
	return d
}

// keyOf returns message id's key, nil for none.
func (l *Ledger) keyOf(id int) []byte {
	if k := l.entries[id].key; k != noKey {
		return []byte(l.names[k])
	}
	return nil
}

func (l *Ledger) problemf(format string, args ...any) {
	l.nProblem++
	if len(l.problems) < 20 {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	}
}

// Track gives m the next id (0, 1, ...), adds it to m's headers (LedgerHeader) and returns it.
func (l *Ledger) Track(m *aioproducer.Message) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := len(l.entries)
	m.Headers = append(m.Headers, aioproducer.Header{Key: LedgerHeader, Value: []byte(strconv.Itoa(id))})
	e := ledgerEntry{topic: l.name(m.Topic), key: noKey}
	if len(m.Key) > 0 {
		e.key = l.name(string(m.Key))
	}
	l.entries = append(l.entries, e)
	return id
}

// Grow makes room for n more messages, so that tracking them allocates no ledger storage: for a test
// that measures the producer's heap, call it before taking the baseline.
func (l *Ledger) Grow(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = slices.Grow(l.entries, n)
}

// Len returns how many messages the ledger tracks.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func (l *Ledger) setState(id int, s ledgerState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := &l.entries[id]
	if e.state != ledgerTracked {
		l.problemf("message %d: accepted or refused twice", id)
	}
	e.state = s
	if s == ledgerRefused && e.outcomes > 0 {
		l.problemf("message %d: refused, but it got an outcome (%v)", id, l.errs[id])
	}
}

// Accepted records that the producer accepted message id.
func (l *Ledger) Accepted(id int) { l.setState(id, ledgerAccepted) }

// Refused records that the producer refused message id (Produce returned err): it must get no
// outcome.
func (l *Ledger) Refused(id int, err error) {
	l.setState(id, ledgerRefused)
	l.mu.Lock()
	l.errs[id] = err
	l.mu.Unlock()
}

// Future records what Produce (or TryProduce) returned for message id: refused when err is not nil,
// else accepted, with f's outcome collected by Settle.
func (l *Ledger) Future(id int, f *aioproducer.Future, err error) {
	if err != nil {
		l.Refused(id, err)
		return
	}
	l.Accepted(id)
	l.mu.Lock()
	l.futs[id] = f
	l.mu.Unlock()
}

// Callback returns a ProduceFunc callback that reports message id's outcome.
func (l *Ledger) Callback(id int) func(aioproducer.Delivery, error) {
	return func(d aioproducer.Delivery, err error) { l.Report(id, d, err) }
}

// Report records an outcome of message id. A second one is a violation that Check reports.
func (l *Ledger) Report(id int, d aioproducer.Delivery, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := &l.entries[id]
	if e.outcomes < math.MaxUint16 {
		e.outcomes++
	}
	switch {
	case e.outcomes > 1:
		l.problemf("message %d: outcome number %d (%v, %v)", id, e.outcomes, d, err)
		return
	case e.state == ledgerRefused:
		l.problemf("message %d: refused, but it got an outcome (%v, %v)", id, d, err)
	}
	e.part, e.off, e.ts = d.Partition, d.Offset, noTimestamp
	if !d.Timestamp.IsZero() {
		e.ts = d.Timestamp.UnixNano()
	}
	if d.Topic != l.names[e.topic] {
		l.dTopics[id] = d.Topic
	}
	if err != nil {
		l.errs[id] = err
	}
	l.last = time.Now()
}

// Produce tracks m and produces it on c with ProduceFunc, the ledger's Callback taking the outcome.
// It returns m's id and ProduceFunc's error (the message is then recorded refused).
func (l *Ledger) Produce(ctx context.Context, c aioproducer.Client, m *aioproducer.Message) (int, error) {
	id := l.Track(m)
	if err := c.ProduceFunc(ctx, m, l.Callback(id)); err != nil {
		l.Refused(id, err)
		return id, err
	}
	l.Accepted(id)
	return id, nil
}

// Outcome returns message id's delivery, how many outcomes it got, and its error (for a refused
// message: the error Produce returned).
func (l *Ledger) Outcome(id int) (aioproducer.Delivery, int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.delivery(id), int(l.entries[id].outcomes), l.errs[id]
}

// LastOutcome returns when the latest outcome came (the zero time before any).
func (l *Ledger) LastOutcome() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Settle collects the outcome of every Future recorded, then waits until every accepted message has
// an outcome (callbacks and channels may still be running). If ctx ends first it fails, naming some
// of the messages without one: the producer left them hanging.
func (l *Ledger) Settle(ctx context.Context) error {
	l.mu.Lock()
	futs := l.futs
	l.futs = map[int]*aioproducer.Future{}
	l.mu.Unlock()
	for id, f := range futs {
		d, err := f.Wait(ctx)
		if ctx.Err() != nil {
			break
		}
		l.Report(id, d, err)
	}
	for {
		missing := l.missing(10)
		if len(missing) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("aioproducertest: no outcome for %d accepted messages, e.g. %v: %w", l.countMissing(), missing, ctx.Err())
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// missing returns up to n accepted messages that have no outcome.
func (l *Ledger) missing(n int) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for id, e := range l.entries {
		if e.state == ledgerAccepted && e.outcomes == 0 {
			if out = append(out, id); len(out) == n {
				break
			}
		}
	}
	return out
}

func (l *Ledger) countMissing() int { return len(l.missing(len(l.entries) + 1)) }

// Check reports, as one error, every violation of "exactly one outcome per accepted message and none
// per refused one" seen so far, and every message tracked but neither accepted nor refused. Call it
// after Settle.
func (l *Ledger) Check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	problems, n := append([]string(nil), l.problems...), l.nProblem
	add := func(format string, args ...any) {
		n++
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for id, e := range l.entries {
		switch {
		case e.state == ledgerTracked:
			add("message %d: tracked, but neither accepted nor refused", id)
		case e.state == ledgerAccepted && e.outcomes == 0:
			add("message %d: accepted, but no outcome", id)
		}
	}
	return problemsError("outcomes", n, problems)
}

// CheckStats checks the producer's own counters (p.Stats) against the ledger, after Settle, once p
// has nothing more to do (closed, or flushed with nothing produced since): its Delivered and Failed
// must be the ledger's plus otherDelivered and otherFailed (the outcomes of messages the ledger does
// not track, such as a warm-up message), it may hold nothing any more (HeldMessages, HeldBytes), and
// Buffered and InFlight, which may lag a moment behind the outcomes, must come back to zero before ctx
// ends. It catches what the ledger cannot see: a second outcome handed to a Future, a buffer not
// freed.
func (l *Ledger) CheckStats(ctx context.Context, p *aioproducer.Producer, otherDelivered, otherFailed int) error {
	s := l.Summary()
	st := p.Stats()
	var problems []string
	if want := uint64(s.Delivered + otherDelivered); st.Delivered != want {
		problems = append(problems, fmt.Sprintf("Stats.Delivered %d, want %d", st.Delivered, want))
	}
	if want := uint64(s.Failed + otherFailed); st.Failed != want {
		problems = append(problems, fmt.Sprintf("Stats.Failed %d, want %d", st.Failed, want))
	}
	if st.HeldMessages != 0 || st.HeldBytes != 0 {
		problems = append(problems, fmt.Sprintf("buffer not freed: HeldMessages %d, HeldBytes %d", st.HeldMessages, st.HeldBytes))
	}
	for st.Buffered != 0 || st.InFlight != 0 {
		if ctx.Err() != nil {
			problems = append(problems, fmt.Sprintf("gauges not back to zero: Buffered %d, InFlight %d (%v)", st.Buffered, st.InFlight, ctx.Err()))
			break
		}
		t := time.NewTimer(time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		st = p.Stats()
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("aioproducertest: ledger: Stats vs %v: %s (%+v)", s, strings.Join(problems, "; "), st)
}

func problemsError(what string, n int, problems []string) error {
	if n == 0 {
		return nil
	}
	return fmt.Errorf("aioproducertest: ledger: %d %s problems, e.g.:\n  %s", n, what, strings.Join(problems, "\n  "))
}

// LedgerSummary counts what a Ledger recorded.
type LedgerSummary struct {
	Tracked, Accepted, Refused int
	// Delivered and Failed count the accepted messages' outcomes (the first of each); Unknown counts
	// the failures whose outcome is unknown, and Pending the accepted messages without an outcome.
	Delivered, Failed, Unknown, Pending int
	// Failures counts the failures by aioproducer.ErrorClass ("local_message_timed_out", "fatal",
	// "other", ...), the names the metrics adapters label them with.
	Failures map[string]int
}

func (s LedgerSummary) String() string {
	// fmt prints a map's keys sorted.
	return fmt.Sprintf("tracked %d: accepted %d (delivered %d, failed %d [%d outcome unknown] %v, pending %d), refused %d",
		s.Tracked, s.Accepted, s.Delivered, s.Failed, s.Unknown, s.Failures, s.Pending, s.Refused)
}

// Summary returns the ledger's counts.
func (l *Ledger) Summary() LedgerSummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LedgerSummary{Tracked: len(l.entries), Failures: map[string]int{}}
	for id, e := range l.entries {
		err := l.errs[id]
		switch e.state {
		case ledgerRefused:
			s.Refused++
			continue
		case ledgerTracked:
			continue
		}
		s.Accepted++
		switch {
		case e.outcomes == 0:
			s.Pending++
		case err == nil:
			s.Delivered++
		default:
			s.Failed++
			s.Failures[aioproducer.ErrorClass(err)]++
			if aioproducer.IsOutcomeUnknown(err) {
				s.Unknown++
			}
		}
	}
	return s
}

// LogCheck relaxes CheckLog; its zero value is the strictest check.
type LogCheck struct {
	// AllowDuplicates lets a delivered message be in the log more than once (one copy where its
	// delivery says), counting the extra copies: for a producer without idempotence, whose retries
	// may duplicate.
	AllowDuplicates bool
	// IgnoreOrder skips the check that each key's delivered messages are in the log in id order.
	IgnoreOrder bool
	// Foreign is how many records without a ledger id the log may hold (a warm-up message, another
	// producer's); -1: any number.
	Foreign int
}

// LogSummary is what CheckLog found.
type LogSummary struct {
	Records, Foreign int
	// DeliveredOnce counts the delivered messages found once, where their delivery says.
	DeliveredOnce int
	// FailedAbsent counts the failed messages (outcome known) not in the log; UnknownPresent and
	// UnknownAbsent the outcome-unknown ones in it (once) and not in it.
	FailedAbsent, UnknownPresent, UnknownAbsent int
	// Duplicated counts the delivered messages in the log more than once, and ExtraCopies their extra
	// copies: only with AllowDuplicates.
	Duplicated, ExtraCopies int
}

func (s LogSummary) String() string {
	out := fmt.Sprintf("log: %d records (%d foreign); delivered found once at their offsets: %d; failed absent: %d; outcome unknown present: %d, absent: %d",
		s.Records, s.Foreign, s.DeliveredOnce, s.FailedAbsent, s.UnknownPresent, s.UnknownAbsent)
	if s.Duplicated > 0 {
		out += fmt.Sprintf("; DUPLICATED delivered messages: %d (%d extra copies)", s.Duplicated, s.ExtraCopies)
	}
	return out
}

// CheckLog checks recs, every record of the topics the ledger's messages went to (ReadTopic), against
// the outcomes: every delivered message is there exactly once, at the topic, partition and offset of
// its delivery (in its partition, for a delivery without an offset: librdkafka reports -1001 for
// messages a retry found already written, DUPLICATE_SEQUENCE_NUMBER, which it counts as delivered),
// and each key's delivered messages are in id order; a message that failed with a
// definite error is not there; one whose outcome is unknown is there at most once; a refused one is
// not there; records without a ledger id number o.Foreign. It returns what it counted, and one error
// naming the first violations. Call it after Settle.
func (l *Ledger) CheckLog(recs []Record, o LogCheck) (LogSummary, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LogSummary{Records: len(recs)}
	var problems []string
	n := 0
	add := func(format string, args ...any) {
		n++
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	found := make([][]Record, len(l.entries))
	for _, r := range recs {
		v, ok := r.Header(LedgerHeader)
		id, err := strconv.Atoi(string(v))
		if !ok || err != nil || id < 0 || id >= len(l.entries) {
			s.Foreign++
			continue
		}
		found[id] = append(found[id], r)
	}
	if o.Foreign >= 0 && s.Foreign != o.Foreign {
		add("%d records without a ledger id in the log, %d expected", s.Foreign, o.Foreign)
	}
	type placed struct {
		id        int
		partition int32
		offset    int64 // in the log
	}
	lastOfKey := map[[2]int32]placed{} // topic and key → the last delivered message, in id order
	for id, e := range l.entries {
		c := len(found[id])
		err := l.errs[id]
		d := l.delivery(id)
		switch {
		case e.state != ledgerAccepted || e.outcomes == 0:
			if c > 0 {
				add("message %d was never accepted, or has no outcome, but is in the log %d times", id, c)
			}
		case err == nil:
			at := -1
			for i, r := range found[id] {
				if r.Topic == d.Topic && r.Partition == d.Partition && (r.Offset == d.Offset || d.Offset < 0) {
					at = i
				}
			}
			switch {
			case c == 0:
				add("delivered message %d (%s[%d]@%d) is not in the log", id, d.Topic, d.Partition, d.Offset)
			case at < 0:
				r := found[id][0]
				add("delivered message %d at %s[%d]@%d is in the log at %s[%d]@%d", id, d.Topic, d.Partition, d.Offset, r.Topic, r.Partition, r.Offset)
			case c == 1:
				s.DeliveredOnce++
			case o.AllowDuplicates:
				s.Duplicated++
				s.ExtraCopies += c - 1
			default:
				add("delivered message %d is in the log %d times", id, c)
			}
			if o.IgnoreOrder || e.key == noKey {
				continue
			}
			if at < 0 {
				continue // reported above; no log offset to order it by
			}
			k := [2]int32{e.topic, e.key}
			cur := placed{id, d.Partition, found[id][at].Offset}
			if prev, ok := lastOfKey[k]; ok && (prev.partition != cur.partition || prev.offset > cur.offset) {
				add("key %q: message %d at [%d]@%d, after message %d at [%d]@%d", l.keyOf(id), id, cur.partition, cur.offset, prev.id, prev.partition, prev.offset)
			}
			lastOfKey[k] = cur
		case aioproducer.IsOutcomeUnknown(err):
			switch c {
			case 0:
				s.UnknownAbsent++
			case 1:
				s.UnknownPresent++
			default:
				add("outcome-unknown message %d is in the log %d times", id, c)
			}
		default:
			if c > 0 {
				add("message %d failed (%v) but is in the log %d times", id, err, c)
			} else {
				s.FailedAbsent++
			}
		}
	}
	return s, problemsError("log", n, problems)
}

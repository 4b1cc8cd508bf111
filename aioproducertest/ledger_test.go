package aioproducertest_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seed-f937cf20/aioproducer"
	"github.com/seed-f937cf20/aioproducer/aioproducertest"
)

// The ledger against the mock cluster: every way of producing, then the log checked.
func TestLedgerAgainstTheCluster(t *testing.T) {
	c := aioproducertest.NewCluster(t, aioproducertest.WithTopic("t", 3))
	p := c.NewProducer(t, nil)
	ctx := ctxFor(t, 60*time.Second)
	l := aioproducertest.NewLedger()
	for i := range 30 {
		m := &aioproducer.Message{Topic: "t", Key: []byte("k" + strconv.Itoa(i%4)), Value: []byte(strconv.Itoa(i))}
		switch i % 3 {
		case 0:
			_, err := l.Produce(ctx, p, m)
			require.NoError(t, err)
		case 1:
			id := l.Track(m)
			f, err := p.Produce(ctx, m)
			l.Future(id, f, err)
		case 2:
			id := l.Track(m)
			f, err := p.TryProduce(m)
			l.Future(id, f, err)
		}
	}
	invalid := &aioproducer.Message{Value: []byte("no topic")}
	_, err := l.Produce(ctx, p, invalid)
	require.ErrorIs(t, err, aioproducer.ErrInvalidMessage)

	require.NoError(t, l.Settle(ctx))
	require.NoError(t, l.Check())
	s := l.Summary()
	assert.Equal(t, aioproducertest.LedgerSummary{Tracked: 31, Accepted: 30, Refused: 1, Delivered: 30, Failures: map[string]int{}}, s)
	recs, err := c.ReadTopic(ctx, "t")
	require.NoError(t, err)
	ls, err := l.CheckLog(recs, aioproducertest.LogCheck{})
	require.NoError(t, err)
	assert.Equal(t, aioproducertest.LogSummary{Records: 30, DeliveredOnce: 30}, ls)
	_, n, err := l.Outcome(30)
	assert.Zero(t, n)
	assert.ErrorIs(t, err, aioproducer.ErrInvalidMessage, "a refused message's Outcome is Produce's error")
	assert.False(t, l.LastOutcome().IsZero())
}

// The ledger over the Fake, whose broker is the history: failures are counted by aioproducer.ErrorClass.
func TestLedgerCountsFailures(t *testing.T) {
	f := aioproducertest.NewFake(t, aioproducertest.FailWith(func(m *aioproducer.Message) error {
		switch string(m.Value) {
		case "timeout":
			return kafka.NewError(kafka.ErrMsgTimedOut, "Local: Message timed out", false)
		case "boom":
			return errors.New("boom")
		}
		return nil
	}))
	ctx := ctxFor(t, 10*time.Second)
	l := aioproducertest.NewLedger()
	for _, v := range []string{"ok", "timeout", "boom", "ok"} {
		_, err := l.Produce(ctx, f, &aioproducer.Message{Topic: "t", Key: []byte("k"), Value: []byte(v)})
		require.NoError(t, err)
	}
	require.NoError(t, f.Flush(ctx))
	require.NoError(t, l.Settle(ctx))
	require.NoError(t, l.Check())
	s := l.Summary()
	assert.Equal(t, 2, s.Delivered)
	assert.Equal(t, 2, s.Failed)
	assert.Equal(t, 1, s.Unknown)
	// Counted by aioproducer.ErrorClass, the names the metrics adapters use: a librdkafka error by its
	// code, any error the producer does not know as "other".
	assert.Equal(t, map[string]int{"local_message_timed_out": 1, "other": 1}, s.Failures)
	assert.Contains(t, s.String(), "delivered 2")

	// The log as the Fake's broker has it, the timed-out message written after all.
	var recs []aioproducertest.Record
	for _, h := range f.History() {
		off := h.Offset
		if string(h.Message.Value) == "timeout" {
			off = 100
		} else if h.Err != nil {
			continue
		}
		recs = append(recs, aioproducertest.Record{Topic: "t", Partition: h.Partition, Offset: off, Headers: h.Message.Headers})
	}
	ls, err := l.CheckLog(recs, aioproducertest.LogCheck{})
	require.NoError(t, err)
	assert.Equal(t, aioproducertest.LogSummary{Records: 3, DeliveredOnce: 2, FailedAbsent: 1, UnknownPresent: 1}, ls)
}

func TestLedgerSeesViolations(t *testing.T) {
	d := func(off int64) aioproducer.Delivery { return aioproducer.Delivery{Topic: "t", Offset: off} }
	rec := func(id int, off int64) aioproducertest.Record {
		return aioproducertest.Record{Topic: "t", Offset: off, Headers: []aioproducer.Header{{Key: aioproducertest.LedgerHeader, Value: []byte(strconv.Itoa(id))}}}
	}
	newLedger := func(n int) *aioproducertest.Ledger {
		l := aioproducertest.NewLedger()
		for range n {
			id := l.Track(&aioproducer.Message{Topic: "t", Key: []byte("k")})
			l.Accepted(id)
		}
		return l
	}

	t.Run("two outcomes", func(t *testing.T) {
		l := newLedger(1)
		l.Report(0, d(0), nil)
		l.Report(0, d(0), nil)
		assert.ErrorContains(t, l.Check(), "outcome number 2")
	})
	t.Run("no outcome", func(t *testing.T) {
		l := newLedger(1)
		assert.ErrorContains(t, l.Check(), "no outcome")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		assert.ErrorIs(t, l.Settle(ctx), context.DeadlineExceeded)
	})
	t.Run("refused with an outcome", func(t *testing.T) {
		l := aioproducertest.NewLedger()
		id := l.Track(&aioproducer.Message{Topic: "t"})
		l.Refused(id, aioproducer.ErrClosed)
		l.Report(id, d(0), nil)
		assert.ErrorContains(t, l.Check(), "refused")
	})
	t.Run("neither accepted nor refused", func(t *testing.T) {
		l := aioproducertest.NewLedger()
		l.Track(&aioproducer.Message{Topic: "t"})
		assert.ErrorContains(t, l.Check(), "neither")
	})

	logCases := []struct {
		name string
		recs []aioproducertest.Record
		o    aioproducertest.LogCheck
		want string
	}{
		{"missing", []aioproducertest.Record{rec(0, 0)}, aioproducertest.LogCheck{}, "not in the log"},
		{"duplicated", []aioproducertest.Record{rec(0, 0), rec(1, 1), rec(1, 5)}, aioproducertest.LogCheck{}, "2 times"},
		{"misplaced", []aioproducertest.Record{rec(0, 0), rec(1, 7)}, aioproducertest.LogCheck{}, "is in the log at"},
		{"foreign", []aioproducertest.Record{rec(0, 0), rec(1, 1), {Topic: "t", Offset: 2}}, aioproducertest.LogCheck{}, "without a ledger id"},
		{"failed present", []aioproducertest.Record{rec(0, 0), rec(1, 1), rec(2, 2)}, aioproducertest.LogCheck{}, "failed"},
	}
	for _, tc := range logCases {
		t.Run(tc.name, func(t *testing.T) {
			l := newLedger(3)
			l.Report(0, d(0), nil)
			l.Report(1, d(1), nil)
			l.Report(2, aioproducer.Delivery{}, errors.New("definite"))
			_, err := l.CheckLog(tc.recs, tc.o)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("delivered without an offset", func(t *testing.T) {
		// librdkafka reports -1001 for messages a retry found already written
		// (DUPLICATE_SEQUENCE_NUMBER): such a message must be in its partition once, and in key order
		// by where the log has it.
		l := newLedger(2)
		l.Report(0, d(0), nil)
		l.Report(1, d(-1001), nil)
		ls, err := l.CheckLog([]aioproducertest.Record{rec(0, 0), rec(1, 4)}, aioproducertest.LogCheck{})
		require.NoError(t, err)
		assert.Equal(t, 2, ls.DeliveredOnce)
		_, err = l.CheckLog([]aioproducertest.Record{rec(0, 0)}, aioproducertest.LogCheck{})
		assert.ErrorContains(t, err, "not in the log")
		_, err = l.CheckLog([]aioproducertest.Record{rec(0, 0), rec(1, 4), rec(1, 5)}, aioproducertest.LogCheck{})
		assert.ErrorContains(t, err, "2 times")
		other := rec(1, 4)
		other.Partition = 1
		_, err = l.CheckLog([]aioproducertest.Record{rec(0, 0), other}, aioproducertest.LogCheck{})
		assert.ErrorContains(t, err, "is in the log at")
		l = newLedger(2)
		l.Report(0, d(-1001), nil)
		l.Report(1, d(3), nil)
		_, err = l.CheckLog([]aioproducertest.Record{rec(0, 7), rec(1, 3)}, aioproducertest.LogCheck{})
		assert.ErrorContains(t, err, "after message 0", "key order by the log's offset")
	})
	t.Run("relaxed", func(t *testing.T) {
		l := newLedger(2)
		l.Report(0, d(1), nil)
		l.Report(1, d(0), nil) // key k out of order
		recs := []aioproducertest.Record{rec(0, 1), rec(1, 0), rec(1, 9), {Topic: "t", Offset: 2}}
		_, err := l.CheckLog(recs, aioproducertest.LogCheck{})
		assert.ErrorContains(t, err, "after message 0")
		ls, err := l.CheckLog(recs, aioproducertest.LogCheck{AllowDuplicates: true, IgnoreOrder: true, Foreign: -1})
		require.NoError(t, err)
		assert.Equal(t, aioproducertest.LogSummary{Records: 4, Foreign: 1, DeliveredOnce: 1, Duplicated: 1, ExtraCopies: 1}, ls)
		assert.Contains(t, ls.String(), "DUPLICATED")
	})
}

// CheckStats holds the producer's counters to the ledger's, and sees outcomes the ledger was not told.
func TestLedgerCheckStats(t *testing.T) {
	f := aioproducertest.NewFake(t)
	ctx := ctxFor(t, 10*time.Second)
	l := aioproducertest.NewLedger()
	for i := range 5 {
		_, err := l.Produce(ctx, f, &aioproducer.Message{Topic: "t", Value: []byte(strconv.Itoa(i))})
		require.NoError(t, err)
	}
	warm, err := f.Produce(ctx, &aioproducer.Message{Topic: "t", Value: []byte("not in the ledger")})
	require.NoError(t, err)
	_, err = warm.Wait(ctx)
	require.NoError(t, err)
	require.NoError(t, f.Flush(ctx))
	require.NoError(t, l.Settle(ctx))
	require.NoError(t, l.CheckStats(ctx, f.Producer, 1, 0))
	assert.ErrorContains(t, l.CheckStats(ctx, f.Producer, 0, 0), "Stats.Delivered 6, want 5")
	assert.ErrorContains(t, l.CheckStats(ctx, f.Producer, 1, 1), "Stats.Failed 0, want 1")
}

// After Grow, tracking allocates no ledger storage.
func TestLedgerGrow(t *testing.T) {
	const n = 1000
	ms := make([]*aioproducer.Message, n)
	for i := range ms {
		ms[i] = &aioproducer.Message{Topic: "t", Headers: make([]aioproducer.Header, 0, 1)}
	}
	track := func(grow bool) float64 {
		return testing.AllocsPerRun(3, func() {
			l := aioproducertest.NewLedger()
			if grow {
				l.Grow(n)
			}
			for _, m := range ms {
				m.Headers = m.Headers[:0]
				l.Track(m)
			}
			if l.Len() != n {
				t.Fatalf("Len %d, want %d", l.Len(), n)
			}
		})
	}
	without, with := track(false), track(true)
	assert.Less(t, with, without, "allocations tracking %d messages after Grow(%d)", n, n)
	assert.LessOrEqual(t, with, float64(2*n+2), "allocations tracking %d messages after Grow(%d)", n, n)
}

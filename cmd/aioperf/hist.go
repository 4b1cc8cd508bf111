package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Latency histogram layout, in microseconds:
//
//   - values 0..1023 have a bucket each (exact);
//   - from 1024 µs up, every power of two [2^e, 2^(e+1)) is split into 64 equal sub-buckets, so a
//     bucket is 2^e/64 wide and at most 1/64 of its own lower bound;
//   - the last power of two is [2^31, 2^32) µs, 36 to 72 minutes; larger values count in the last
//     bucket (the exact maximum is kept apart).
//
// A percentile is reported as its bucket's midpoint, never above the recorded maximum, so it is
// off the exact value by at most half a bucket: under 1/128 ≈ 0.8 % relative error, and exact below
// 1024 µs. The counts take 2,432 × 8 bytes ≈ 19 KiB whatever the number of messages.
const (
	histExact   = 1024 // values below this have a bucket each
	histSubBits = 6    // 64 sub-buckets per power of two above
	histSub     = 1 << histSubBits
	histMinExp  = 10 // log2(histExact)
	histMaxExp  = 31 // last power of two covered: [2^31, 2^32) µs
	histBuckets = histExact + (histMaxExp-histMinExp+1)*histSub

	// histMaxRelErr is the promised bound on |reported - exact| / exact for any percentile.
	histMaxRelErr = 1.0 / (2 * histSub)
)

// Hist is a fixed-size log-linear histogram of latencies in microseconds. Record is lock-free
// (atomic adds) and never allocates, so any number of goroutines may record at once; read it
// (Count, Quantile, Max) once recording is over, or accept a slightly torn view while it goes on.
// The zero value is empty and ready to use.
type Hist struct {
	counts [histBuckets]atomic.Int64
	n      atomic.Int64
	max    atomic.Int64
}

// histIndex is the bucket of a value in µs (v >= 0).
func histIndex(v int64) int {
	if v < histExact {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 1 // 2^e <= v < 2^(e+1), e >= 10
	if e > histMaxExp {
		return histBuckets - 1
	}
	sub := int(v>>(e-histSubBits)) & (histSub - 1)
	return histExact + (e-histMinExp)*histSub + sub
}

// histBounds is the range [lo, hi) of values that fall in bucket i (the last one also takes
// everything above hi).
func histBounds(i int) (lo, hi int64) {
	if i < histExact {
		return int64(i), int64(i) + 1
	}
	j := i - histExact
	e := j/histSub + histMinExp
	sub := int64(j % histSub)
	w := int64(1) << (e - histSubBits)
	lo = (histSub + sub) * w
	return lo, lo + w
}

// Record counts one latency of us microseconds; negative values count as 0.
func (h *Hist) Record(us int64) {
	if us < 0 {
		us = 0
	}
	h.counts[histIndex(us)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// RecordDuration records d, truncated to whole microseconds.
func (h *Hist) RecordDuration(d time.Duration) { h.Record(d.Microseconds()) }

// Count is the number of recorded values.
func (h *Hist) Count() int64 { return h.n.Load() }

// Max is the largest recorded value in µs (exact, not bucketed); 0 when empty.
func (h *Hist) Max() int64 { return h.max.Load() }

// Quantile is the q-quantile (0 <= q <= 1) in µs, by the same rank a sorted slice s of the n
// values would give as s[min(n-1, floor(q*n))], to within histMaxRelErr. Quantile(1) is the exact
// maximum. An empty histogram gives 0.
func (h *Hist) Quantile(q float64) int64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	if q >= 1 {
		return h.Max()
	}
	rank := min(n-1, int64(q*float64(n)))
	if rank < 0 {
		rank = 0
	}
	var cum int64
	for i := range h.counts {
		cum += h.counts[i].Load()
		if cum > rank {
			lo, hi := histBounds(i)
			v := lo + (hi-lo)/2
			return min(v, h.Max())
		}
	}
	return h.Max() // counts torn by concurrent recording
}

// QuantileDuration is Quantile as a time.Duration.
func (h *Hist) QuantileDuration(q float64) time.Duration {
	return time.Duration(h.Quantile(q)) * time.Microsecond
}

// Reset empties the histogram; not safe while others record.
func (h *Hist) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.n.Store(0)
	h.max.Store(0)
}

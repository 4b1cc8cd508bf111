package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// exactQuantile is the q-quantile the way a sorted slice of every value gives it, the definition
// Hist.Quantile promises to approximate.
func exactQuantile(sorted []int64, q float64) int64 {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func TestHistPromisesUnderTwoPercent(t *testing.T) {
	if histMaxRelErr >= 0.02 {
		t.Fatalf("histMaxRelErr = %v, the tool promises under 2 %%", histMaxRelErr)
	}
	if histBuckets*8 > 32<<10 {
		t.Fatalf("%d buckets take %d bytes; the histogram is meant to be small", histBuckets, histBuckets*8)
	}
}

func TestHistQuantilesAreWithinPromisedErrorOfExactOnes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"uniform below 2 ms":   func() int64 { return rng.Int64N(2000) },
		"log-uniform 1µs..1h":  func() int64 { return int64(math.Exp(rng.Float64() * math.Log(3.6e9))) },
		"exponential mean 5ms": func() int64 { return int64(rng.ExpFloat64() * 5000) },
		"few distinct values":  func() int64 { return []int64{3, 1500, 1501, 70000}[rng.IntN(4)] },
		"normal 40ms ± 1ms":    func() int64 { return int64(40000 + 1000*rng.NormFloat64()) },
	}
	qs := []float64{0, 0.001, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 1}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			var h Hist
			vals := make([]int64, 200_000)
			for i := range vals {
				vals[i] = max(gen(), 0)
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != int64(len(vals)) {
				t.Fatalf("Count = %d, want %d", h.Count(), len(vals))
			}
			if h.Max() != vals[len(vals)-1] {
				t.Errorf("Max = %d, want exactly %d", h.Max(), vals[len(vals)-1])
			}
			for _, q := range qs {
				got, want := h.Quantile(q), exactQuantile(vals, q)
				if want < histExact && got != want {
					t.Errorf("q=%v: got %d µs, want exactly %d µs below %d µs", q, got, want, histExact)
				}
				if rel := math.Abs(float64(got-want)) / float64(max(want, 1)); rel > histMaxRelErr {
					t.Errorf("q=%v: got %d µs, exact %d µs: relative error %.4f > %.4f", q, got, want, rel, histMaxRelErr)
				}
			}
		})
	}
}

func TestHistBucketsTileTheRangeWithBoundedWidth(t *testing.T) {
	var prevHi int64
	for i := range histBuckets {
		lo, hi := histBounds(i)
		if lo != prevHi {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if got := histIndex(lo); got != i {
			t.Fatalf("histIndex(%d) = %d, want %d", lo, got, i)
		}
		if got := histIndex(hi - 1); got != i {
			t.Fatalf("histIndex(%d) = %d, want %d", hi-1, got, i)
		}
		if lo >= histExact && float64(hi-lo)/float64(lo) > 1.0/histSub {
			t.Fatalf("bucket %d [%d, %d) is wider than 1/%d of its start", i, lo, hi, histSub)
		}
		prevHi = hi
	}
	if hour := int64(time.Hour / time.Microsecond); prevHi <= hour {
		t.Fatalf("buckets end at %d µs, want beyond an hour (%d µs)", prevHi, hour)
	}
}

func TestHistOutOfRangeValues(t *testing.T) {
	var h Hist
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Count() != 0 {
		t.Fatal("an empty histogram must report 0")
	}
	h.Record(-5) // counts as 0
	if got := h.Quantile(0); got != 0 {
		t.Errorf("negative value: Quantile(0) = %d, want 0", got)
	}
	twoHours := int64(2 * time.Hour / time.Microsecond)
	h.Record(twoHours) // beyond the last bucket: counted there, max still exact
	if got := h.Quantile(1); got != twoHours {
		t.Errorf("Quantile(1) = %d, want the exact max %d", got, twoHours)
	}
	if got := h.Quantile(0.99); got <= 1<<31 || got > twoHours {
		t.Errorf("Quantile(0.99) = %d, want in the last bucket (above 2^31 µs) and at most the max", got)
	}
	h.Reset()
	if h.Count() != 0 || h.Max() != 0 || h.Quantile(0.5) != 0 {
		t.Error("Reset must empty the histogram")
	}
}

func TestHistRecordNeverAllocates(t *testing.T) {
	var h Hist
	v := int64(0)
	allocs := testing.AllocsPerRun(10_000, func() {
		h.Record(v)
		h.RecordDuration(time.Duration(v) * time.Microsecond)
		v = v*7 + 13
		if v > 1<<34 {
			v %= 1 << 34
		}
	})
	if allocs != 0 {
		t.Fatalf("Record allocates %v times per call, want 0", allocs)
	}
}

func TestHistConcurrentRecordingLosesNothing(t *testing.T) {
	var h Hist
	var wg sync.WaitGroup
	const goroutines, each = 4, 10_000
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				h.Record(int64(g*each + i))
			}
		})
	}
	wg.Wait()
	if h.Count() != goroutines*each {
		t.Fatalf("Count = %d, want %d", h.Count(), goroutines*each)
	}
	if h.Max() != goroutines*each-1 {
		t.Fatalf("Max = %d, want %d", h.Max(), goroutines*each-1)
	}
}

func BenchmarkHistRecord(b *testing.B) {
	var h Hist
	for i := 0; b.Loop(); i++ {
		h.Record(int64(i & 0xfffff))
	}
}

package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// syntheticRun is n messages sent evenly over dur, latency about 2 ms with a 10-fold spike in
// the middle tenth of the run and one failed message in every hundred.
func syntheticRun(n int, dur time.Duration) (sendNs, latUs []int64) {
	rng := rand.New(rand.NewPCG(3, 4))
	sendNs = make([]int64, n)
	latUs = make([]int64, n)
	for i := range n {
		sendNs[i] = int64(dur) * int64(i) / int64(n)
		latUs[i] = 1500 + rng.Int64N(1000)
		if i > n*45/100 && i < n*55/100 {
			latUs[i] *= 10
		}
		if i%100 == 99 {
			latUs[i] = -1
		}
	}
	return sendNs, latUs
}

func TestPlotIsA1000x500PNGWithAxesAndThreeSeries(t *testing.T) {
	sendNs, latUs := syntheticRun(50_000, 10*time.Second)
	path := filepath.Join(t.TempDir(), "lat.png")
	if err := writePlot(path, sendNs, latUs); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the file is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1000 || b.Dy() != 500 {
		t.Fatalf("size %v, want 1000×500", b.Size())
	}
	counts := map[color.RGBA]int{}
	nonWhite := 0
	for y := range 500 {
		for x := range 1000 {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			counts[c]++
			if c != colWhite {
				nonWhite++
			}
		}
	}
	if nonWhite < 1000*500/100 {
		t.Errorf("only %d pixels are not white: the plot is (nearly) blank", nonWhite)
	}
	for name, c := range map[string]color.RGBA{"axes and text": colAxis, "p50": colP50, "p99": colP99, "max": colMax} {
		if counts[c] < 200 {
			t.Errorf("%s: %d pixels of colour %v, want a visible line", name, counts[c], c)
		}
	}
	// The axes: a dark vertical line at plotLeft and horizontal one at plotBottom.
	for y := plotTop; y <= plotBottom; y++ {
		if c := color.RGBAModel.Convert(img.At(plotLeft, y)); c != colAxis {
			t.Fatalf("y axis: pixel (%d, %d) is %v, want %v", plotLeft, y, c, colAxis)
		}
	}
	for x := plotLeft; x <= plotRight; x++ {
		if c := color.RGBAModel.Convert(img.At(x, plotBottom)); c != colAxis {
			t.Fatalf("x axis: pixel (%d, %d) is %v, want %v", x, plotBottom, c, colAxis)
		}
	}
}

func TestPlotSeriesFollowTheData(t *testing.T) {
	sendNs, latUs := syntheticRun(50_000, 10*time.Second)
	pts, tmax := plotPoints(sendNs, latUs)
	if tmax != sendNs[len(sendNs)-2] { // the last message failed
		t.Fatalf("tmax = %d, want the last delivered message's send time %d", tmax, sendNs[len(sendNs)-2])
	}
	if len(pts) != plotBuckets {
		t.Fatalf("%d points, want %d", len(pts), plotBuckets)
	}
	var total int64
	for b, p := range pts {
		total += p.n
		if p.n == 0 {
			t.Fatalf("slice %d is empty though messages were sent all along", b)
		}
		if !(p.p50 <= p.p99 && p.p99 <= p.max) {
			t.Fatalf("slice %d: p50 %d, p99 %d, max %d are out of order", b, p.p50, p.p99, p.max)
		}
		spike := b > plotBuckets*46/100 && b < plotBuckets*54/100
		if spike && p.p50 < 15000 || !spike && (b < plotBuckets*44/100 || b > plotBuckets*56/100) && p.max >= 2500 {
			t.Fatalf("slice %d (spike %v): p50 %d max %d µs does not match the data", b, spike, p.p50, p.max)
		}
	}
	if total != 50_000-500 {
		t.Fatalf("the slices count %d messages, want the %d delivered ones", total, 50_000-500)
	}

	// The pixels agree: in the spike the p50 line is drawn higher (smaller y) than before it.
	img, err := renderPlot(sendNs, latUs)
	if err != nil {
		t.Fatal(err)
	}
	topOf := func(x int, c color.RGBA) int {
		for y := plotTop; y <= plotBottom; y++ {
			if img.RGBAAt(x, y) == c {
				return y
			}
		}
		return -1
	}
	xAt := func(frac float64) int { return plotLeft + int(frac*float64(plotRight-plotLeft)) }
	before, during := topOf(xAt(0.2), colP50), topOf(xAt(0.5), colP50)
	if before < 0 || during < 0 || during >= before-50 {
		t.Fatalf("p50 line at y=%d before the spike and y=%d during it; want it clearly higher during", before, during)
	}
}

func TestPlotWithoutDeliveriesIsAnError(t *testing.T) {
	if _, err := renderPlot([]int64{0, 1}, []int64{-1, -1}); err == nil {
		t.Fatal("want an error when every message failed")
	}
	if _, err := renderPlot([]int64{0}, []int64{1, 2}); err == nil {
		t.Fatal("want an error for slices of different lengths")
	}
}

func TestPlotHandlesTinyAndInstantRuns(t *testing.T) {
	for name, run := range map[string][2][]int64{
		"one message":       {{0}, {700}},
		"all at once, 0 µs": {{0, 0, 0}, {0, 0, 0}},
		"hour-long latency": {{0, 5e9}, {10, int64(time.Hour / time.Microsecond)}},
	} {
		img, err := renderPlot(run[0], run[1])
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if img.Bounds() != image.Rect(0, 0, plotW, plotH) {
			t.Errorf("%s: bounds %v", name, img.Bounds())
		}
	}
}

func TestFontCoversEveryLabel(t *testing.T) {
	for _, s := range []string{plotYTitle, plotXTitle, plotLegendP50, plotLegendP99, plotLegendMax, plotTickLabelChars} {
		for _, r := range s {
			g, ok := font[r]
			if !ok {
				t.Errorf("no glyph for %q (in %q)", r, s)
			}
			if r != ' ' && len(g) != glyphH && len(g) != glyphH+2 {
				t.Errorf("glyph %q has %d rows, want %d or %d", r, len(g), glyphH, glyphH+2)
			}
			for _, row := range g {
				if len(row) != glyphW {
					t.Errorf("glyph %q has a row %q of width %d, want %d", r, row, len(row), glyphW)
				}
			}
		}
	}
}

func TestNiceStepIsOneTwoOrFiveTimesAPowerOfTen(t *testing.T) {
	for raw, want := range map[float64]float64{0.3: 0.5, 1: 1, 1.2: 2, 3: 5, 7: 10, 0.013: 0.02, 250: 500} {
		if got := niceStep(raw); got < want*0.999999 || got > want*1.000001 {
			t.Errorf("niceStep(%v) = %v, want %v", raw, got, want)
		}
	}
}

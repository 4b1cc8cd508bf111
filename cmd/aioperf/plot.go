package main

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strconv"
)

// The latency-over-time plot (-png): x is seconds since the start of the run by each message's
// send time (when ProduceFunc was called), y is produce→delivered latency in milliseconds on a log
// scale. The run is cut into plotBuckets equal slices of send time; for each slice that sent
// anything the plot draws its p50 and p99 (from a Hist, so within 0.8 %) as blue and orange lines
// joining consecutive slices, and its exact max as red dots. Failed messages (latency < 0) are left
// out.
const (
	plotW, plotH = 1000, 500
	plotBuckets  = 200
	plotScale    = 2 // font pixels are 2×2

	// Plot area inside the image.
	plotLeft, plotRight  = 80, plotW - 30
	plotTop, plotBottom  = 50, plotH - 60
	plotYTitle           = "latency ms (log)"
	plotXTitle           = "seconds since start (send time)"
	plotLegendP50        = "p50"
	plotLegendP99        = "p99"
	plotLegendMax        = "max"
	plotTickLabelChars   = "0123456789."
	plotLegendSwatchSize = 24
)

var (
	colWhite = color.RGBA{255, 255, 255, 255}
	colAxis  = color.RGBA{40, 40, 40, 255}
	colGrid  = color.RGBA{225, 225, 225, 255}
	colP50   = color.RGBA{31, 119, 180, 255} // blue
	colP99   = color.RGBA{255, 127, 14, 255} // orange
	colMax   = color.RGBA{214, 39, 40, 255}  // red
)

// plotPoint is one time slice's statistics, in µs; n == 0 for a slice that sent nothing.
type plotPoint struct {
	n             int64
	p50, p99, max int64
}

// plotPoints cuts [0, max send time] into plotBuckets slices and computes each one's p50, p99
// and max latency. sendNs[i] is message i's send time in ns since the start, latUs[i] its latency
// in µs or < 0 if it failed.
func plotPoints(sendNs, latUs []int64) (pts []plotPoint, tmaxNs int64) {
	for i, t := range sendNs {
		if latUs[i] >= 0 {
			tmaxNs = max(tmaxNs, t)
		}
	}
	span := tmaxNs + 1 // the last message falls in the last slice
	hs := make([]Hist, plotBuckets)
	for i, t := range sendNs {
		if latUs[i] < 0 {
			continue
		}
		b := int(float64(max(t, 0)) / float64(span) * plotBuckets)
		hs[min(b, plotBuckets-1)].Record(latUs[i])
	}
	pts = make([]plotPoint, plotBuckets)
	for b := range hs {
		h := &hs[b]
		if h.Count() > 0 {
			pts[b] = plotPoint{n: h.Count(), p50: h.Quantile(0.50), p99: h.Quantile(0.99), max: h.Max()}
		}
	}
	return pts, tmaxNs
}

// renderPlot draws the plot of the messages' latencies; see plotPoints for the arguments.
func renderPlot(sendNs, latUs []int64) (*image.RGBA, error) {
	if len(sendNs) != len(latUs) {
		return nil, errors.New("plot: send times and latencies differ in length")
	}
	pts, tmaxNs := plotPoints(sendNs, latUs)
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	fillRect(img, 0, 0, plotW, plotH, colWhite)

	// Y range: whole decades of ms around every plotted value.
	loUs, hiUs := int64(math.MaxInt64), int64(0)
	for _, p := range pts {
		if p.n > 0 {
			loUs = min(loUs, max(p.p50, 1))
			hiUs = max(hiUs, max(p.max, 1))
		}
	}
	if hiUs == 0 {
		return nil, errors.New("plot: no delivered messages")
	}
	decLo := int(math.Floor(math.Log10(float64(loUs) / 1000)))
	decHi := int(math.Ceil(math.Log10(float64(hiUs) / 1000)))
	if decHi <= decLo {
		decHi = decLo + 1
	}
	yOf := func(us int64) int {
		ms := math.Max(float64(us), 1) / 1000
		f := (math.Log10(ms) - float64(decLo)) / float64(decHi-decLo)
		return plotBottom - int(math.Round(f*float64(plotBottom-plotTop)))
	}
	tmaxS := math.Max(float64(tmaxNs)/1e9, 1e-3)
	xOfS := func(s float64) int {
		return plotLeft + int(math.Round(s/tmaxS*float64(plotRight-plotLeft)))
	}

	// Y grid, ticks and labels: every decade labelled; 2 and 5 too when there are at most two decades.
	labelMinor := decHi-decLo <= 2
	for d := decLo; d <= decHi; d++ {
		for m := 1; m <= 9; m++ {
			if d == decHi && m > 1 {
				break
			}
			ms := float64(m) * math.Pow10(d)
			y := yOf(int64(math.Round(ms * 1000)))
			if m == 1 {
				hline(img, plotLeft+1, plotRight, y, colGrid)
				hline(img, plotLeft-8, plotLeft, y, colAxis)
			} else {
				hline(img, plotLeft-4, plotLeft, y, colAxis)
			}
			if m == 1 || (labelMinor && (m == 2 || m == 5)) {
				s := strconv.FormatFloat(ms, 'f', max(0, -d), 64)
				drawText(img, plotLeft-12-textWidth(s, plotScale), y-glyphH*plotScale/2, s, plotScale, colAxis)
			}
		}
	}

	// X grid, ticks and labels at a 1-2-5 step giving about 8 ticks.
	step := niceStep(tmaxS / 8)
	dec := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	for i := 0; ; i++ {
		s := float64(i) * step
		if s > tmaxS*(1+1e-9) {
			break
		}
		x := xOfS(s)
		vline(img, x, plotTop, plotBottom-1, colGrid)
		vline(img, x, plotBottom, plotBottom+8, colAxis)
		lbl := strconv.FormatFloat(s, 'f', dec, 64)
		lx := min(x-textWidth(lbl, plotScale)/2, plotW-2-textWidth(lbl, plotScale)) // keep the last one inside
		drawText(img, lx, plotBottom+14, lbl, plotScale, colAxis)
	}

	// Titles.
	drawText(img, plotLeft-60, plotTop-34, plotYTitle, plotScale, colAxis)
	drawText(img, (plotLeft+plotRight-textWidth(plotXTitle, plotScale))/2, plotH-22, plotXTitle, plotScale, colAxis)

	// Legend, top right.
	x := plotRight
	for _, l := range []struct {
		s string
		c color.RGBA
	}{{plotLegendMax, colMax}, {plotLegendP99, colP99}, {plotLegendP50, colP50}} {
		x -= textWidth(l.s, plotScale)
		drawText(img, x, plotTop-34, l.s, plotScale, colAxis)
		x -= plotLegendSwatchSize + 6
		y := plotTop - 34 + glyphH*plotScale/2 - 2
		if l.c == colMax { // dots, as drawn
			for dx := 0; dx < plotLegendSwatchSize; dx += 8 {
				fillRect(img, x+dx+2, y, 4, 4, l.c)
			}
		} else {
			fillRect(img, x, y, plotLegendSwatchSize, 4, l.c)
		}
		x -= 20
	}

	// The series: p99 and p50 as lines (p50 on top), then max as dots over both, so that all three
	// show where they coincide.
	bucketS := tmaxS / plotBuckets
	xOfB := func(b int) int { return xOfS((float64(b) + 0.5) * bucketS) }
	for _, s := range []struct {
		v func(plotPoint) int64
		c color.RGBA
	}{
		{func(p plotPoint) int64 { return p.p99 }, colP99},
		{func(p plotPoint) int64 { return p.p50 }, colP50},
	} {
		for b, p := range pts {
			if p.n == 0 {
				continue
			}
			x, y := xOfB(b), yOf(s.v(p))
			fillRect(img, x-1, y-1, 3, 3, s.c)
			if b+1 < len(pts) && pts[b+1].n > 0 {
				line(img, x, y, xOfB(b+1), yOf(s.v(pts[b+1])), s.c)
			}
		}
	}
	for b, p := range pts {
		if p.n > 0 {
			fillRect(img, xOfB(b)-2, yOf(p.max)-2, 4, 4, colMax)
		}
	}

	// The axes last, over any series at the lowest latency or in the first slice.
	vline(img, plotLeft, plotTop, plotBottom, colAxis)
	hline(img, plotLeft, plotRight, plotBottom, colAxis)
	return img, nil
}

// writePlot renders the plot and writes it as a PNG file.
func writePlot(path string, sendNs, latUs []int64) error {
	img, err := renderPlot(sendNs, latUs)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// niceStep is the smallest of 1, 2 or 5 times a power of ten that is at least raw.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow10(int(math.Floor(math.Log10(raw))))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

func fillRect(img *image.RGBA, x, y, w, h int, c color.RGBA) {
	r := image.Rect(x, y, x+w, y+h).Intersect(img.Rect)
	for yy := r.Min.Y; yy < r.Max.Y; yy++ {
		for xx := r.Min.X; xx < r.Max.X; xx++ {
			img.SetRGBA(xx, yy, c)
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) { fillRect(img, x0, y, x1-x0+1, 1, c) }
func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) { fillRect(img, x, y0, 1, y1-y0+1, c) }

// line draws a 2-pixel-thick line from (x0, y0) to (x1, y1) (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		fillRect(img, x0, y0, 2, 2, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

package main

import (
	"errors"
	"fmt"
	"html"
	"math"
	"os"
	"strconv"
	"strings"
)

// The latency-over-time plot (-svg), an SVG file any browser shows at any size: x is seconds since
// the start of the run by each message's send time (when ProduceFunc was called), y is
// produce→delivered latency in milliseconds on a log scale. The run is cut into plotBuckets equal
// slices of send time; for each slice that sent anything the plot draws its p50 and p99 (from a
// Hist, so within 0.8 %) as blue and orange lines joining consecutive slices, and its exact max as
// red dots; hovering over a slice shows its numbers. Failed messages (latency < 0) are left out.
const (
	plotW, plotH        = 1000, 500
	plotBuckets         = 200
	plotLeft, plotRight = 90, plotW - 30 // the plot area inside the picture
	plotTop, plotBottom = 60, plotH - 60
	plotYTitle          = "latency, ms (log scale)"
	plotXTitle          = "seconds since start (send time)"
	colP50, colP99      = "#1f77b4", "#ff7f0e" // blue, orange
	colMax, colAxis     = "#d62728", "#282828" // red, near black
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

// ms formats a latency in µs as milliseconds, exactly.
func ms(us int64) string { return strconv.FormatFloat(float64(us)/1e3, 'f', -1, 64) }

// renderPlot returns the SVG plot of the messages' latencies under the given title (the run's
// settings); see plotPoints for the other arguments.
func renderPlot(title string, sendNs, latUs []int64) (string, error) {
	if len(sendNs) != len(latUs) {
		return "", errors.New("plot: send times and latencies differ in length")
	}
	pts, tmaxNs := plotPoints(sendNs, latUs)
	loUs, hiUs := int64(math.MaxInt64), int64(0)
	for _, p := range pts {
		if p.n > 0 {
			loUs, hiUs = min(loUs, max(p.p50, 1)), max(hiUs, max(p.max, 1))
		}
	}
	if hiUs == 0 {
		return "", errors.New("plot: no delivered messages")
	}
	// Y range: whole decades of µs (at least 1 µs) around every plotted value.
	decLo, decHi := int(math.Floor(math.Log10(float64(loUs)))), int(math.Ceil(math.Log10(float64(hiUs))))
	decHi = max(decHi, decLo+1)
	yOf := func(us int64) float64 {
		f := (math.Log10(math.Max(float64(us), 1)) - float64(decLo)) / float64(decHi-decLo)
		return plotBottom - f*(plotBottom-plotTop)
	}
	tmaxS := math.Max(float64(tmaxNs)/1e9, 1e-3)
	xOfS := func(s float64) float64 { return plotLeft + s/tmaxS*(plotRight-plotLeft) }
	bucketS := tmaxS / plotBuckets
	xOfB := func(b int) float64 { return xOfS((float64(b) + 0.5) * bucketS) }

	var sb strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&sb, format+"\n", a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %[1]d %[2]d" font-family="sans-serif" font-size="13" fill="%s">`,
		plotW, plotH, colAxis)
	p(`<title>aioperf: %s</title>`, html.EscapeString(title))
	p(`<rect width="%d" height="%d" fill="white"/>`, plotW, plotH)
	p(`<text id="title" x="%d" y="24" font-size="15">%s</text>`, plotLeft, html.EscapeString(title))

	// Y grid and labels: every decade labelled; 2 and 5 too when there are at most two decades.
	p(`<g id="y-axis" text-anchor="end">`)
	for d := decLo; d <= decHi; d++ {
		for m := int64(1); m <= 9 && (d < decHi || m == 1); m++ {
			us := m * int64(math.Pow10(d))
			grid := "#eeeeee" // light for 2..9, darker for a decade
			if m == 1 {
				grid = "#d0d0d0"
			}
			p(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1[3]f" stroke="%s"/>`, plotLeft, plotRight, yOf(us), grid)
			if m == 1 || decHi-decLo <= 2 && (m == 2 || m == 5) {
				p(`<text x="%d" y="%.1f" dy="0.35em">%s</text>`, plotLeft-8, yOf(us), ms(us))
			}
		}
	}
	p(`<text transform="translate(24 %d) rotate(-90)" text-anchor="middle">%s</text>`, (plotTop+plotBottom)/2, plotYTitle)
	p(`</g>`)

	// X grid and labels at a 1-2-5 step giving about 8 ticks.
	step := niceStep(tmaxS / 8)
	dec := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	p(`<g id="x-axis" text-anchor="middle">`)
	for i := 0; float64(i)*step <= tmaxS*(1+1e-9); i++ {
		x := xOfS(float64(i) * step)
		p(`<line x1="%.1f" x2="%.1[1]f" y1="%d" y2="%d" stroke="#d0d0d0"/>`, x, plotTop, plotBottom+6)
		p(`<text x="%.1f" y="%d">%s</text>`, x, plotBottom+22, strconv.FormatFloat(float64(i)*step, 'f', dec, 64))
	}
	p(`<text x="%d" y="%d">%s</text>`, (plotLeft+plotRight)/2, plotH-14, plotXTitle)
	p(`</g>`)
	p(`<path d="M%d,%d V%d H%d" fill="none" stroke="%s"/>`, plotLeft, plotTop, plotBottom, plotRight, colAxis)

	// The series: p99 and p50 as lines (p50 on top), then max as dots over both. A run of slices
	// starts with M and L to the same point, so that a lone slice shows as a dot (round caps).
	for _, s := range []struct {
		id, col string
		v       func(plotPoint) int64
	}{{"p99", colP99, func(p plotPoint) int64 { return p.p99 }}, {"p50", colP50, func(p plotPoint) int64 { return p.p50 }}} {
		var d strings.Builder
		for b, pt := range pts {
			if pt.n > 0 && (b == 0 || pts[b-1].n == 0) {
				fmt.Fprintf(&d, "M%.1f,%.1f ", xOfB(b), yOf(s.v(pt)))
			}
			if pt.n > 0 {
				fmt.Fprintf(&d, "L%.1f,%.1f ", xOfB(b), yOf(s.v(pt)))
			}
		}
		p(`<path id="%s" d="%s" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>`,
			s.id, strings.TrimSpace(d.String()), s.col)
	}
	p(`<g id="max" fill="%s">`, colMax)
	for b, pt := range pts {
		if pt.n > 0 {
			p(`<circle cx="%.1f" cy="%.1f" r="2.5"/>`, xOfB(b), yOf(pt.max))
		}
	}
	p(`</g>`)

	// Legend, top right.
	p(`<g id="legend">`)
	for i, l := range []struct{ name, col string }{{"p50", colP50}, {"p99", colP99}, {"max", colMax}} {
		x := plotRight - 180 + 60*i
		if l.name == "max" {
			p(`<path d="M%d,%d h0 m8,0 h0 m8,0 h0" stroke="%s" stroke-width="5" stroke-linecap="round"/>`, x+4, plotTop-16, l.col)
		} else {
			p(`<path d="M%d,%d h20" stroke="%s" stroke-width="2"/>`, x, plotTop-16, l.col)
		}
		p(`<text x="%d" y="%d" dy="0.35em">%s</text>`, x+26, plotTop-16, l.name)
	}
	p(`</g>`)

	// Hover anywhere over a slice (in a browser) to see its numbers.
	p(`<g id="slices" fill-opacity="0">`)
	for b, pt := range pts {
		if pt.n > 0 {
			p(`<rect x="%.1f" y="%d" width="%.2f" height="%d"><title>%.5g–%.5g s: messages %d, p50 %s ms, p99 %s ms, max %s ms</title></rect>`,
				xOfS(float64(b)*bucketS), plotTop, xOfS(bucketS)-plotLeft, plotBottom-plotTop,
				float64(b)*bucketS, float64(b+1)*bucketS, pt.n, ms(pt.p50), ms(pt.p99), ms(pt.max))
		}
	}
	p(`</g>`)
	p(`</svg>`)
	return sb.String(), nil
}

// writePlot renders the plot and writes it to an SVG file.
func writePlot(path, title string, sendNs, latUs []int64) error {
	svg, err := renderPlot(title, sendNs, latUs)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(svg), 0o644)
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

package main

import (
	"encoding/xml"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// svgNode is any XML element, with its attributes, text and children.
type svgNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []svgNode  `xml:",any"`
}

func (n *svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// walk calls f for n and every element below it.
func (n *svgNode) walk(f func(*svgNode)) {
	f(n)
	for i := range n.Nodes {
		n.Nodes[i].walk(f)
	}
}

// parseSVG parses the plot with encoding/xml (failing the test if it is not well-formed) and
// indexes its elements by id.
func parseSVG(t *testing.T, svg string) (root *svgNode, byID map[string]*svgNode) {
	t.Helper()
	if strings.Contains(svg, "%!") {
		t.Fatalf("a formatting error (%%!) in the plot: %s", svg)
	}
	root = new(svgNode)
	if err := xml.Unmarshal([]byte(svg), root); err != nil {
		t.Fatalf("the plot is not well-formed XML: %v", err)
	}
	if root.XMLName != (xml.Name{Space: "http://www.w3.org/2000/svg", Local: "svg"}) {
		t.Fatalf("root element %v, want svg in the SVG namespace", root.XMLName)
	}
	byID = map[string]*svgNode{}
	root.walk(func(n *svgNode) {
		if id := n.attr("id"); id != "" {
			byID[id] = n
		}
	})
	return root, byID
}

// pathPoints is the points of a path's M and L commands, as the plot writes them.
func pathPoints(t *testing.T, d string) (pts [][2]float64) {
	t.Helper()
	for _, f := range strings.Fields(d) {
		x, y, ok := strings.Cut(f[1:], ",")
		xf, err1 := strconv.ParseFloat(x, 64)
		yf, err2 := strconv.ParseFloat(y, 64)
		if !ok || err1 != nil || err2 != nil || f[0] != 'M' && f[0] != 'L' {
			t.Fatalf("path command %q, want Mx,y or Lx,y", f)
		}
		if f[0] == 'L' {
			pts = append(pts, [2]float64{xf, yf})
		}
	}
	return pts
}

func TestPlotIsAnSVGWithAxesLegendAndThreeSeries(t *testing.T) {
	sendNs, latUs := syntheticRun(50_000, 10*time.Second)
	path := filepath.Join(t.TempDir(), "lat.svg")
	if err := writePlot(path, "50000 × 100 B, a & b <c>", sendNs, latUs); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	root, byID := parseSVG(t, string(data))
	if root.attr("viewBox") != "0 0 1000 500" {
		t.Errorf("viewBox %q, want 0 0 1000 500", root.attr("viewBox"))
	}
	var texts []string
	root.walk(func(n *svgNode) {
		if n.XMLName.Local == "text" {
			texts = append(texts, n.Text)
		}
	})
	all := strings.Join(texts, "|")
	for _, want := range []string{"|" + plotYTitle + "|", "|" + plotXTitle + "|", "50000 × 100 B, a & b <c>|", "|0|", "|8|", "|1|", "|10|", "|100|"} {
		if !strings.Contains("|"+all+"|", want) {
			t.Errorf("no text %q in %q", strings.Trim(want, "|"), all)
		}
	}
	var legend []string
	byID["legend"].walk(func(n *svgNode) {
		if n.XMLName.Local == "text" {
			legend = append(legend, n.Text)
		}
	})
	if strings.Join(legend, " ") != "p50 p99 max" {
		t.Errorf("legend %q, want p50 p99 max", legend)
	}
	for _, id := range []string{"p50", "p99"} {
		if n := byID[id]; n == nil || n.XMLName.Local != "path" || len(pathPoints(t, n.attr("d"))) != plotBuckets {
			t.Errorf("series %s: want a path with %d points, got %+v", id, plotBuckets, n)
		}
	}
	if n := byID["max"]; n == nil || len(n.Nodes) != plotBuckets || n.Nodes[0].XMLName.Local != "circle" {
		t.Errorf("series max: want %d circles", plotBuckets)
	}
	if n := byID["slices"]; n == nil || len(n.Nodes) != plotBuckets || !strings.Contains(n.Nodes[0].Nodes[0].Text, ": messages ") {
		t.Errorf("want %d hover rectangles with a title each", plotBuckets)
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

	// The drawing agrees: in the spike the p50 line is higher (smaller y) than before it.
	svg, err := renderPlot("", sendNs, latUs)
	if err != nil {
		t.Fatal(err)
	}
	_, byID := parseSVG(t, svg)
	p50 := pathPoints(t, byID["p50"].attr("d"))
	before, during := p50[plotBuckets/5][1], p50[plotBuckets/2][1]
	if during >= before-50 {
		t.Fatalf("p50 line at y=%.1f before the spike and y=%.1f during it; want it clearly higher during", before, during)
	}
	for i, pt := range p50 {
		if pt[0] < plotLeft || pt[0] > plotRight || pt[1] < plotTop || pt[1] > plotBottom {
			t.Fatalf("p50 point %d at %v is outside the plot area", i, pt)
		}
	}
}

func TestPlotWithoutDeliveriesIsAnError(t *testing.T) {
	if _, err := renderPlot("", []int64{0, 1}, []int64{-1, -1}); err == nil {
		t.Fatal("want an error when every message failed")
	}
	if _, err := renderPlot("", []int64{0}, []int64{1, 2}); err == nil {
		t.Fatal("want an error for slices of different lengths")
	}
}

func TestPlotHandlesTinyInstantAndGappedRuns(t *testing.T) {
	for name, run := range map[string][2][]int64{
		"one message":       {{0}, {700}},
		"all at once, 0 µs": {{0, 0, 0}, {0, 0, 0}},
		"hour-long latency": {{0, 5e9}, {10, int64(time.Hour / time.Microsecond)}},
		"gaps":              {{0, 1e9, 2e9, 2.01e9}, {1000, 2000, 3000, 4000}},
	} {
		svg, err := renderPlot(name, run[0], run[1])
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		_, byID := parseSVG(t, svg)
		if got := len(byID["max"].Nodes); got != len(pathPoints(t, byID["p50"].attr("d"))) || got == 0 {
			t.Errorf("%s: %d max dots and a p50 path %q, want a point in each per non-empty slice", name, got, byID["p50"].attr("d"))
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

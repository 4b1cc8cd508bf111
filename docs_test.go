package aioproducer_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// snippetMark introduces every Go block of the documentation: the line right before its fence names
// the file the code is taken from, as a path from the repository's root:
//
//	<!-- snippet: example_test.go -->
//	```go
//
// That file is an Example, a test or an example program the tests compile, so the code shown compiles.
const snippetMark = "<!-- snippet: "

// TestDocsShowCompiledCode checks that every Go block of README.md and docs/*.md names its source
// file and appears in it: the block's lines, without indentation and blank lines, are consecutive
// lines of the file, except that a line "// ..." or "..." in the block stands for any lines.
func TestDocsShowCompiledCode(t *testing.T) {
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{"README.md"}, docs...)
	for _, doc := range docs {
		for _, b := range goBlocks(t, doc) {
			if b.source == "" {
				t.Errorf("%s:%d: a Go block without a %q line before its fence", doc, b.line, snippetMark+"FILE -->")
				continue
			}
			src, err := os.ReadFile(b.source)
			if err != nil {
				t.Errorf("%s:%d: %v", doc, b.line, err)
				continue
			}
			if at := findSnippet(normLines(string(src)), b.code); at != "" {
				t.Errorf("%s:%d: not in %s as shown; first line not found in order: %q", doc, b.line, b.source, at)
			}
		}
	}
}

type goBlock struct {
	line   int    // of the fence
	source string // the file named before it
	code   []string
}

// goBlocks returns doc's ```go blocks.
func goBlocks(t *testing.T, doc string) []goBlock {
	t.Helper()
	f, err := os.Open(doc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []goBlock
		cur    *goBlock
		prev   string
		inside bool // any fenced block
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case inside && strings.HasPrefix(trimmed, "```"):
			if cur != nil {
				blocks = append(blocks, *cur)
				cur = nil
			}
			inside = false
		case inside:
			if cur != nil {
				cur.code = append(cur.code, line)
			}
		case strings.HasPrefix(trimmed, "```"):
			inside = true
			if trimmed == "```go" {
				cur = &goBlock{line: n}
				if s, ok := strings.CutPrefix(strings.TrimSpace(prev), snippetMark); ok {
					cur.source = strings.TrimSpace(strings.TrimSuffix(s, "-->"))
				}
			}
		}
		prev = line
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// normLines returns s's lines without surrounding space, blank lines left out.
func normLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// findSnippet reports the first line of code that src does not have where it should ("" if all are
// there): code's runs between "// ..." lines each appear as consecutive lines of src, in order.
func findSnippet(src, code []string) string {
	var runs [][]string
	run := []string{}
	for _, l := range normLines(strings.Join(code, "\n")) {
		if l == "// ..." || l == "..." {
			runs = append(runs, run)
			run = []string{}
			continue
		}
		run = append(run, l)
	}
	runs = append(runs, run)
	from := 0
	for _, r := range runs {
		if len(r) == 0 {
			continue
		}
		at, matched := indexRun(src[from:], r)
		if at < 0 {
			return r[matched]
		}
		from += at + len(r)
	}
	return ""
}

// indexRun returns where r starts as consecutive lines of src, or -1 and how many of r's first lines
// matched at best.
func indexRun(src, r []string) (at, matched int) {
	for i := range src {
		j := 0
		for j < len(r) && i+j < len(src) && src[i+j] == r[j] {
			j++
		}
		if j == len(r) {
			return i, j
		}
		matched = max(matched, j)
	}
	return -1, matched
}

// mdLink is a Markdown link's target: [text](target).
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocsLinksResolve checks that every relative link of README.md and docs/*.md names a file or
// directory of the repository (anchors are not checked).
func TestDocsLinksResolve(t *testing.T) {
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range append([]string{"README.md"}, docs...) {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(text), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(doc), target)); err != nil {
				t.Errorf("%s: link to %s: %v", doc, m[1], err)
			}
		}
	}
}

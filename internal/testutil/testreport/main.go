// Command testreport reads the output of `go test -json` on standard input
// and writes what plain `go test` would have printed (the result line of
// each package; for a package that failed, all its output, the report of
// its failed tests included; build errors), followed by the list of the
// tests that were skipped, each with its skip message, so that a CI log
// shows which paths were not tested and why. Lines that are not JSON are
// copied as they are.
//
//	go test -json ./... 2>&1 | go run ./internal/testutil/testreport
//
// It exits with status 0 (the caller keeps go test's own status).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is the part of test2json's TestEvent that testreport uses.
type event struct {
	Action     string
	Package    string
	ImportPath string // of build-output events
	Test       string
	Output     string
}

type testKey struct{ pkg, test string }

type report struct {
	w       io.Writer
	order   map[string][]string         // per package: tests in the order they started
	seen    map[string]map[string]bool  // per package: the tests in order
	output  map[testKey][]string        // buffered output of tests not yet ended
	printed map[testKey]bool            // output printed (with a failed parent)
	failed  map[testKey]bool            // tests that failed
	pkgOut  map[string]*strings.Builder // per package: what a failure prints
	result  map[string]string           // per package: go test's result line
	skipped []testKey                   // in the order they were reported
	skipMsg map[testKey][]string        // output of the skipped tests
	// anyFailed: a package failed, so the go command's closing FAIL is due.
	anyFailed bool
}

func newReport(w io.Writer) *report {
	return &report{
		w: w, order: map[string][]string{}, seen: map[string]map[string]bool{}, output: map[testKey][]string{},
		printed: map[testKey]bool{}, failed: map[testKey]bool{}, skipMsg: map[testKey][]string{},
		pkgOut: map[string]*strings.Builder{}, result: map[string]string{},
	}
}

// isFrame reports whether an output line is one of the lines of
// verbose mode that plain go test does not print.
func isFrame(line string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS", "--- SKIP"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// isRaw reports whether a test's output line was printed by the test
// itself (fmt.Println, a child process) rather than through t.Log or as
// the test's result: plain go test shows those at once, passed or not.
func isRaw(line string) bool {
	return !strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "--- ") && !isFrame(line)
}

// within reports whether test is top or one of its subtests.
func within(test, top string) bool {
	return test == top || strings.HasPrefix(test, top+"/")
}

// flush writes the report of a failed test to w as plain go test does:
// its "--- FAIL" line, then its log, then its failed subtests, each level
// indented by four spaces.
func (r *report) flush(w io.Writer, pkg, top string) {
	depth := strings.Count(top, "/")
	indent := strings.Repeat("    ", depth)
	k := testKey{pkg, top}
	var header string
	var log []string
	for _, line := range r.output[k] {
		if strings.HasPrefix(line, "--- FAIL") {
			header = line
		} else if !isFrame(line) {
			log = append(log, line)
		}
	}
	if header != "" {
		fmt.Fprint(w, indent+header)
	}
	for _, line := range log {
		fmt.Fprint(w, indent+line)
	}
	r.printed[k] = true
	delete(r.output, k)
	for _, name := range r.order[pkg] {
		if strings.HasPrefix(name, top+"/") && strings.Count(name, "/") == depth+1 && r.failed[testKey{pkg, name}] {
			r.flush(w, pkg, name)
		}
	}
}

// buf is the output of package pkg so far, printed only if it fails.
func (r *report) buf(pkg string) *strings.Builder {
	b := r.pkgOut[pkg]
	if b == nil {
		b = &strings.Builder{}
		r.pkgOut[pkg] = b
	}
	return b
}

// isResult reports whether a package-level line is go test's result line
// for the package ("ok", "FAIL" or "?" with the package's path).
func isResult(line string) bool {
	for _, p := range []string{"ok  \t", "FAIL\t", "?   \t"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

func (r *report) handle(e event) {
	k := testKey{e.Package, e.Test}
	switch e.Action {
	case "build-output":
		fmt.Fprint(r.w, e.Output)
	case "run":
		if r.seen[e.Package] == nil {
			r.seen[e.Package] = map[string]bool{}
		}
		if !r.seen[e.Package][e.Test] {
			r.seen[e.Package][e.Test] = true
			r.order[e.Package] = append(r.order[e.Package], e.Test)
		}
	case "output":
		switch {
		case e.Test == "" && isResult(e.Output):
			r.result[e.Package] += e.Output
		case e.Test == "":
			// The binary's "PASS" is not printed by plain go test.
			if e.Output != "PASS\n" {
				r.buf(e.Package).WriteString(e.Output)
			}
		case isRaw(e.Output):
			r.buf(e.Package).WriteString(e.Output)
		default:
			r.output[k] = append(r.output[k], e.Output)
		}
	case "skip":
		if e.Test == "" {
			r.endPackage(e.Package, false)
			return
		}
		r.skipped = append(r.skipped, k)
		for _, line := range r.output[k] {
			if !isFrame(line) {
				r.skipMsg[k] = append(r.skipMsg[k], strings.TrimSpace(line))
			}
		}
		delete(r.output, k)
	case "pass":
		if e.Test == "" {
			r.endPackage(e.Package, false)
			return
		}
		delete(r.output, k)
	case "fail":
		if e.Test == "" {
			r.anyFailed = true
			r.endPackage(e.Package, true)
			return
		}
		r.failed[k] = true
		if !strings.Contains(e.Test, "/") {
			r.flush(r.buf(e.Package), e.Package, e.Test)
		}
	}
}

// endPackage prints what plain go test prints of a package: for one that
// passed, its result line; for one that failed, all its output (the
// output of tests that never ended, after a crash or a timeout, included)
// and then its result line. It forgets the package's tests.
func (r *report) endPackage(pkg string, failed bool) {
	if failed {
		b := r.buf(pkg)
		for _, name := range r.order[pkg] {
			if k := (testKey{pkg, name}); !r.printed[k] {
				for _, line := range r.output[k] {
					if !isFrame(line) {
						b.WriteString(line)
					}
				}
			}
		}
		fmt.Fprint(r.w, b.String())
	}
	fmt.Fprint(r.w, r.result[pkg])
	for _, name := range r.order[pkg] {
		k := testKey{pkg, name}
		delete(r.output, k)
		delete(r.printed, k)
		delete(r.failed, k)
	}
	delete(r.order, pkg)
	delete(r.seen, pkg)
	delete(r.pkgOut, pkg)
	delete(r.result, pkg)
}

// summary ends the output as go test does and lists the skipped tests.
func (r *report) summary() {
	if r.anyFailed {
		fmt.Fprintln(r.w, "FAIL")
	}
	if len(r.skipped) == 0 {
		return
	}
	fmt.Fprintf(r.w, "\nskipped tests (%d):\n", len(r.skipped))
	for _, k := range r.skipped {
		msg := strings.Join(r.skipMsg[k], " ")
		if msg == "" {
			msg = "(no reason given)"
		}
		fmt.Fprintf(r.w, "SKIP\t%s\t%s: %s\n", k.pkg, k.test, msg)
	}
}

func run(in io.Reader, out io.Writer) error {
	r := newReport(out)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil || e.Action == "" {
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		r.handle(e)
	}
	r.summary()
	return sc.Err()
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
	}
}

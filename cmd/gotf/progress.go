package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress shows a long command's steps as a bar on stderr when stderr is
// a terminal (a person watching); otherwise it writes nothing, so that a
// script reading stderr still gets only the one error line.
type progress struct {
	w     io.Writer // nil: off
	name  string
	n, i  int
	start time.Time
}

// newProgress is a progress of n steps for the command name, on w.
func newProgress(w io.Writer, name string, n int) *progress {
	f, ok := w.(*os.File)
	if !ok {
		return &progress{}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return &progress{}
	}
	return &progress{w: w, name: name, n: n, start: time.Now()}
}

// step says the next step has begun.
func (p *progress) step(format string, a ...any) {
	if p.w == nil {
		return
	}
	p.i = min(p.i+1, p.n)
	const width = 20
	done := width * (p.i - 1) / max(p.n, 1)
	bar := strings.Repeat("=", done) + ">" + strings.Repeat(" ", width-done-1)
	fmt.Fprintf(p.w, "\r\033[K%s [%s] %d/%d %s (%s)", p.name, bar, p.i, p.n, fmt.Sprintf(format, a...), time.Since(p.start).Round(time.Second))
}

// done clears the bar's line.
func (p *progress) done() {
	if p.w != nil {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

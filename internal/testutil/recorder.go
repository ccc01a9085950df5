package testutil

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Recorder is a testing.TB that records failures instead of failing the
// test, so that a test can prove that a check fails on bad input (or on a
// deliberately broken library). Methods it does not override (Name,
// TempDir, Cleanup, Log, ...) go to the test it wraps.
//
// Fatal, FailNow and Skip end the calling goroutine, as in package
// testing, so run code that may call them through Run.
type Recorder struct {
	testing.TB
	mu      sync.Mutex
	failed  bool
	skipped bool
	msgs    []string
}

// NewRecorder returns a Recorder wrapping t.
func NewRecorder(t testing.TB) *Recorder { return &Recorder{TB: t} }

// Run calls f with the recorder in a new goroutine and waits for it to
// return or to end through Fatal, FailNow or Skip. It reports whether f
// recorded a failure.
func (r *Recorder) Run(f func(tb testing.TB)) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.Failed()
}

func (r *Recorder) record(fail bool, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if fail {
		r.failed = true
	}
	r.msgs = append(r.msgs, strings.TrimSuffix(msg, "\n"))
}

// Helper does nothing: the recorder's messages carry no file positions.
func (r *Recorder) Helper() {}

// Errorf records a failure.
func (r *Recorder) Errorf(format string, args ...any) { r.record(true, fmt.Sprintf(format, args...)) }

// Error records a failure.
func (r *Recorder) Error(args ...any) { r.record(true, fmt.Sprintln(args...)) }

// Fail records a failure without a message.
func (r *Recorder) Fail() { r.record(true, "") }

// FailNow records a failure and ends the goroutine.
func (r *Recorder) FailNow() {
	r.Fail()
	runtime.Goexit()
}

// Fatalf records a failure and ends the goroutine.
func (r *Recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// Fatal records a failure and ends the goroutine.
func (r *Recorder) Fatal(args ...any) {
	r.Error(args...)
	runtime.Goexit()
}

// Skipf records a skip and ends the goroutine.
func (r *Recorder) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skipped = true
	r.mu.Unlock()
	r.record(false, fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// Skip records a skip and ends the goroutine.
func (r *Recorder) Skip(args ...any) { r.Skipf("%s", fmt.Sprint(args...)) }

// SkipNow records a skip and ends the goroutine.
func (r *Recorder) SkipNow() { r.Skipf("") }

// Failed reports whether a failure was recorded.
func (r *Recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Skipped reports whether a skip was recorded.
func (r *Recorder) Skipped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.skipped
}

// Messages returns the recorded messages, joined by newlines.
func (r *Recorder) Messages() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.msgs, "\n")
}

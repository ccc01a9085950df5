package testutil

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/procstat"
)

// RSS is the resident set size of this process in bytes, after a
// collection that returns the freed Go heap to the OS and a trim of C's
// malloc: what stays resident is live memory (Go's or C's), not the
// heaps' slack, which moves by megabytes with the timing of the
// collections and with which thread's arena a free landed in. Without the
// trim, 9,000 Keras file loads moved RSS by +1.3k, +10.1k and -1.3k bytes
// per iteration in three windows while malloc's bytes in use grew 0.15 KiB
// per load.
func RSS(t testing.TB) int64 {
	t.Helper()
	// Objects holding C memory are freed by finalizers and cleanups, which
	// run after a collection and can make more garbage (a graph is freed
	// one cycle after its last operation): a few cycles let the chain end.
	for i := 0; i < 4; i++ {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	debug.FreeOSMemory()
	procstat.TrimMalloc()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatalf("reading RSS: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		t.Fatalf("reading RSS: /proc/self/statm is %q", b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatalf("reading RSS: %v", err)
	}
	return pages * int64(os.Getpagesize())
}

// MaxGrowthPerIteration bounds how much RSS may grow per iteration of a
// loop that should hold no memory: far below any per-iteration object of
// the module's leak loops (their smallest output is 2 KiB), far above the
// noise of the Go heap and malloc's arenas (observed ~0-64 B per iteration).
const MaxGrowthPerIteration = 256

// MaxGrowthFraction bounds a leak loop's total RSS growth after warm-up,
// relative to the RSS at its start.
const MaxGrowthFraction = 0.05

// Growth is what RSSGrowth measured.
type Growth struct {
	// PerIteration is the smallest window's growth in bytes per iteration.
	PerIteration float64
	// Fraction is the growth from the first window's start to the last
	// window's end, relative to the RSS at the start.
	Fraction float64
	// Windows are the windows' growths in bytes per iteration, in order.
	Windows []float64
	// CPerIteration is the smallest window's growth per iteration of the
	// bytes C's malloc has handed out: the C objects a loop keeps, without
	// the arenas' slack that moves RSS.
	CPerIteration float64
}

// Within is the smallest window's growth per iteration among those in
// which RSS did not fall by more than bound per iteration (all windows if
// it fell that much in every one). A window in which RSS fell that much
// saw memory handed back from outside the loop (in CI, what earlier tests
// freed: -1308 bytes per iteration in one window of a 2 KiB leak, +2308
// and +2345 in the others), which hides what the loop itself grew.
func (g Growth) Within(bound float64) float64 {
	per := math.Inf(1)
	for _, w := range g.Windows {
		if w >= -bound {
			per = math.Min(per, w)
		}
	}
	if math.IsInf(per, 1) {
		return g.PerIteration
	}
	return per
}

// RSSGrowth runs step warm times, then three windows of n/3 iterations.
// A leak grows every window, while a one-time step of the heap or of
// malloc's arenas (other test binaries run alongside) lands in one, so
// the per-iteration figure is the smallest window's.
func RSSGrowth(t testing.TB, warm, n int, step func()) Growth {
	t.Helper()
	for i := 0; i < warm; i++ {
		step()
	}
	per, cPer := math.Inf(1), math.Inf(1)
	var windows []float64
	start := RSS(t)
	before, cBefore := start, procstat.MallocInUse()
	for w := 0; w < 3; w++ {
		for i := 0; i < n/3; i++ {
			step()
		}
		after, cAfter := RSS(t), procstat.MallocInUse()
		g, c := float64(after-before)/float64(n/3), float64(cAfter-cBefore)/float64(n/3)
		t.Logf("window %d: RSS %.1f -> %.1f MiB over %d iterations: %+.1f bytes per iteration (C malloc in use %+.1f)",
			w+1, float64(before)/(1<<20), float64(after)/(1<<20), n/3, g, c)
		cPer = math.Min(cPer, c)
		cBefore = cAfter
		per = math.Min(per, g)
		windows = append(windows, g)
		before = after
	}
	return Growth{PerIteration: per, Fraction: float64(before-start) / float64(start), Windows: windows, CPerIteration: cPer}
}

// FlatRSS fails if step grows RSS by more than MaxGrowthPerIteration per
// iteration or by more than MaxGrowthFraction over the whole loop.
func FlatRSS(t testing.TB, warm, n int, step func()) {
	t.Helper()
	FlatRSSWithin(t, warm, n, MaxGrowthPerIteration, step)
}

// FlatRSSWithin is FlatRSS with another bound per iteration, for steps
// that allocate megabytes (a model load): malloc's arenas then move RSS by
// kilobytes per iteration with nothing leaking, while what such a step
// could leak (a graph, a session) is tens of kilobytes or more.
func FlatRSSWithin(t testing.TB, warm, n int, perIteration float64, step func()) {
	t.Helper()
	g := RSSGrowth(t, warm, n, step)
	if RaceEnabled {
		// The race detector's shadow memory grows as the heap reuses a
		// wider range of addresses (observed ~900 bytes per iteration over
		// every window in CI, when earlier tests had grown the heap): the
		// loop still runs for the detector, and its RSS bound is checked by
		// the ordinary go test run.
		t.Logf("race detector: RSS growth %.0f bytes per iteration not checked", g.PerIteration)
		return
	}
	// The smallest window, falls included: in CI the windows of a loop
	// that holds nothing swing by a few MiB both ways (+1303, +943, -1674
	// bytes per iteration once), so Within would fail it. A fall can then
	// hide a leak in one run; make leak's longer loops catch it.
	if g.PerIteration > perIteration {
		t.Errorf("RSS grew %.0f bytes per iteration (bound %.0f): a leak", g.PerIteration, perIteration)
	}
	if g.CPerIteration > perIteration {
		t.Errorf("C's malloc kept %.0f more bytes per iteration (bound %.0f): a leak of C objects", g.CPerIteration, perIteration)
	}
	if g.Fraction > MaxGrowthFraction {
		t.Errorf("RSS grew %.1f%% over %d iterations (bound %.0f%%): a leak", 100*g.Fraction, n, 100*MaxGrowthFraction)
	}
}

// LeakIterations is the iteration count of a slow leak loop: def, or
// GOTF_LEAK_ITERS when set (make leak runs every loop 10,000 times).
func LeakIterations(def int) int {
	if v, err := strconv.Atoi(os.Getenv("GOTF_LEAK_ITERS")); err == nil && v > 0 {
		return v
	}
	return def
}

// Goroutines fails unless the number of goroutines comes back to at most
// baseline within a few seconds: goroutines a closed object started
// (finalizer-driven or background loaders) may take a moment to exit.
func Goroutines(t testing.TB, baseline int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines remain, %d before the loop:\n%s", n, baseline, buf)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

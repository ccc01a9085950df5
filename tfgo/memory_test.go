package tfgo

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/gotf/gotf/dtypes/half"
	"github.com/stretchr/testify/require"
)

// rss is the resident set size of this process in bytes.
func rss(t *testing.T) int64 {
	// A collection that also returns the freed Go heap to the OS: what
	// stays resident is live memory (Go's or C's), not the heap's slack,
	// which moves by megabytes with the timing of the collections.
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/statm")
	require.NoError(t, err)
	pages, err := strconv.ParseInt(strings.Fields(string(b))[1], 10, 64)
	require.NoError(t, err)
	return pages * int64(os.Getpagesize())
}

// maxGrowthPerIteration bounds how much RSS may grow per iteration of a
// loop that should hold no memory: far below any per-iteration object of
// the loops below (their smallest output is 2 KiB), far above the noise of
// the Go heap and malloc's arenas (observed ~0-20 B per iteration).
const maxGrowthPerIteration = 256

// rssGrowth runs step warm times, then three windows of n/3 iterations,
// and returns the smallest window's RSS growth in bytes per iteration: a
// leak grows every window, while a one-time step of the heap or of
// malloc's arenas (other test binaries run alongside) lands in one.
func rssGrowth(t *testing.T, warm, n int, step func()) float64 {
	t.Helper()
	for i := 0; i < warm; i++ {
		step()
	}
	per := math.Inf(1)
	for w := 0; w < 3; w++ {
		before := rss(t)
		for i := 0; i < n/3; i++ {
			step()
		}
		after := rss(t)
		g := float64(after-before) / float64(n/3)
		t.Logf("window %d: RSS %.1f -> %.1f MiB over %d iterations: %+.1f bytes per iteration",
			w+1, float64(before)/(1<<20), float64(after)/(1<<20), n/3, g)
		per = math.Min(per, g)
	}
	return per
}

// flatRSS fails if step grows RSS by more than maxGrowthPerIteration.
func flatRSS(t *testing.T, warm, n int, step func()) {
	t.Helper()
	if per := rssGrowth(t, warm, n, step); per > maxGrowthPerIteration {
		t.Errorf("RSS grew %.0f bytes per iteration (bound %d): a leak", per, maxGrowthPerIteration)
	}
}

// softmaxSession is a session computing softmax(x·W) for a batch of 8x64.
func softmaxSession(t *testing.T) (*Session, Output, Output, [][]float32) {
	s := NewScope()
	x := Placeholder(s, Float, -1, 64)
	kernel := make([][]float32, 64)
	for i := range kernel {
		kernel[i] = make([]float32, 64)
	}
	y := Softmax(s, MatMul(s, x, Const(s, kernel)))
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	batch := make([][]float32, 8)
	for i := range batch {
		batch[i] = make([]float32, 64)
	}
	return sess, x, y, batch
}

func TestSessionRunsKeepRSSFlat(t *testing.T) {
	sess, x, y, batch := softmaxSession(t)
	defer sess.Close()
	flatRSS(t, 1000, 10000, func() {
		out, err := sess.Run(map[Output]any{x: batch}, []Output{y})
		if err != nil {
			t.Fatal(err)
		}
		out[0].Close()
	})
}

func TestTensorConversionsKeepRSSFlat(t *testing.T) {
	f := make([][]float32, 16)
	for i := range f {
		f[i] = make([]float32, 256)
	}
	h := make([]half.Float16, 1024)
	strs := []string{"short", strings.Repeat("a heap-allocated TF_TString ", 8)}
	flatRSS(t, 1000, 10000, func() {
		for _, v := range []any{f, h, strs} {
			tn, err := NewTensor(v)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Value(tn); err != nil {
				t.Fatal(err)
			}
			tn.Close()
		}
	})
}

// The check sees a leak of one run's output (8x64 float32, 2 KiB) per
// iteration: the loop of TestSessionRunsKeepRSSFlat, its outputs kept.
// It runs after the other RSS tests: the memory it frees would hide a
// later leak, which could reuse it without growing RSS.
func TestFlatRSSSeesALeak(t *testing.T) {
	sess, x, y, batch := softmaxSession(t)
	defer sess.Close()
	var leaked []*Tensor
	per := rssGrowth(t, 1000, 10000, func() {
		out, err := sess.Run(map[Output]any{x: batch}, []Output{y})
		if err != nil {
			t.Fatal(err)
		}
		leaked = append(leaked, out[0])
	})
	if per <= maxGrowthPerIteration {
		t.Errorf("a leak of 2 KiB per iteration grew RSS %.0f bytes per iteration, within the bound %d: the check cannot see it", per, maxGrowthPerIteration)
	}
	for _, tn := range leaked {
		tn.Close()
	}
}

package tfgo

import (
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotf/gotf/dtypes/half"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/stretchr/testify/require"
)

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
	testutil.FlatRSS(t, 1000, 10000, func() {
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
	testutil.FlatRSS(t, 1000, 10000, func() {
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
	per := testutil.RSSGrowth(t, 1000, 10000, func() {
		out, err := sess.Run(map[Output]any{x: batch}, []Output{y})
		if err != nil {
			t.Fatal(err)
		}
		leaked = append(leaked, out[0])
	})
	// A window in which RSS fell (memory earlier tests freed, handed back)
	// does not count: the leak must show in every other one.
	seen := per.Within(testutil.MaxGrowthPerIteration)
	if seen <= testutil.MaxGrowthPerIteration {
		t.Errorf("a leak of 2 KiB per iteration grew RSS %.0f bytes per iteration, within the bound %d: the check cannot see it", seen, testutil.MaxGrowthPerIteration)
	}
	if per.CPerIteration <= testutil.MaxGrowthPerIteration {
		t.Errorf("a leak of 2 KiB per iteration grew C's malloc %.0f bytes per iteration, within the bound %d: the check cannot see it", per.CPerIteration, testutil.MaxGrowthPerIteration)
	}
	for _, tn := range leaked {
		tn.Close()
	}
}

// Graphs built and dropped are freed: a program that builds a model per
// request (a loader, a test suite) must not keep every TF_Graph. Each
// graph was kept (~50 KB of RSS per graph here) until the binding's map of
// operations held them weakly: the map made a cycle through the graph's
// finalizer, which Go never collects. Counted, not measured by RSS:
// malloc's per-thread arenas keep growing for thousands of graphs, which
// makes an RSS bound on graph building noisy.
func TestDroppedGraphsAreFreed(t *testing.T) {
	const n = 200
	var freed atomic.Int64
	for i := 0; i < n; i++ {
		s := NewScope()
		x := Placeholder(s, Float, -1, 8)
		v := NewVariable(s, "v", Float, []int64{8, 8}, GlorotUniform(1))
		_ = Softmax(s, MatMul(s, x, v.Value()))
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		runtime.AddCleanup(s.Graph(), func(int) { freed.Add(1) }, 0)
	}
	deadline := time.Now().Add(10 * time.Second)
	for freed.Load() < n && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := freed.Load(); got < n {
		t.Errorf("%d of %d dropped graphs were freed", got, n)
	}
}

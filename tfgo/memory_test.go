package tfgo

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/gotf/gotf/dtypes/half"
	"github.com/stretchr/testify/require"
)

// rss is the resident set size of this process in bytes.
func rss(t *testing.T) int64 {
	runtime.GC()
	b, err := os.ReadFile("/proc/self/statm")
	require.NoError(t, err)
	pages, err := strconv.ParseInt(strings.Fields(string(b))[1], 10, 64)
	require.NoError(t, err)
	return pages * int64(os.Getpagesize())
}

// flatRSS runs step warm times, then n times, and fails if RSS grew more than 10%.
func flatRSS(t *testing.T, warm, n int, step func()) {
	for i := 0; i < warm; i++ {
		step()
	}
	before := rss(t)
	for i := 0; i < n; i++ {
		step()
	}
	after := rss(t)
	t.Logf("RSS after warm-up %.1f MiB, after %d more iterations %.1f MiB (%+.2f%%)",
		float64(before)/(1<<20), n, float64(after)/(1<<20), 100*float64(after-before)/float64(before))
	require.LessOrEqual(t, float64(after), 1.10*float64(before), "RSS grew by more than 10%%")
}

func TestSessionRunsKeepRSSFlat(t *testing.T) {
	s := NewScope()
	x := Placeholder(s, Float, -1, 64)
	kernel := make([][]float32, 64)
	for i := range kernel {
		kernel[i] = make([]float32, 64)
	}
	w := Const(s, kernel)
	y := Softmax(s, MatMul(s, x, w))
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	batch := make([][]float32, 8)
	for i := range batch {
		batch[i] = make([]float32, 64)
	}
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

package runner

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gotf/gotf/internal/testutil"
	"github.com/stretchr/testify/require"
)

// A service loads, runs and unloads model versions for months: each cycle
// must give back all it took, C memory (graph, session, variables) and
// goroutines alike. 150 cycles after 300 of warm-up by default (malloc's
// arenas grow for the first few hundred); make leak runs 10,000.
func TestLoadRunCloseKeepsRSSFlat(t *testing.T) {
	b := newBlock(t)
	dir := filepath.Join(t.TempDir(), "1")
	require.NoError(t, Export(dir, b.s.Graph(), b.sess, b.signatures(), ExportOptions{}))
	x := b.randomInput(2, 1)
	ctx := context.Background()
	goroutines := runtime.NumGoroutine()
	n := testutil.LeakIterations(150)
	testutil.FlatRSSWithin(t, max(300, n/10), n, 8<<10, func() {
		m, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Run(ctx, "serving_default", map[string]any{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			o.Close()
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	})
	testutil.Goroutines(t, goroutines)
}

package keraslike

import (
	"math/rand"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gotf/gotf/internal/testutil"
	"github.com/stretchr/testify/require"
)

// A service that loads users' Keras files over and over must give back
// what each load took: the graph, the session, the HDF5 reads and the
// zip's buffers, and any goroutine. Before the binding's operation map
// held operations weakly, every graph was kept (~250 KB per load here).
// 150 loads of each kind by default after 300 of warm-up (malloc's arenas
// grow for the first few hundred loads); make leak runs 10,000.
func TestKerasFileLoadsKeepRSSFlat(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewSource(5))
	x := randTensor(t, r, 3, 4)
	defer x.Close()
	seq := NewSequential("leak", InputSpec{Shape: []int64{4}},
		NewDense(8, DenseOptions{Name: "d1", Activation: "tanh"}),
		NewLayerNormalization(LayerNormalizationOptions{Name: "ln"}),
		NewDense(2, DenseOptions{Name: "d2"}))
	defer seq.Close()
	require.NoError(t, seq.Build())
	randomizeGo(t, seq, 21)
	paths := map[string]string{
		"keras":      filepath.Join(dir, "m.keras"),
		"legacy":     filepath.Join(dir, "m.h5"),
		"weights.h5": filepath.Join(dir, "m.weights.h5"),
	}
	require.NoError(t, seq.SaveKeras(paths["keras"]))
	require.NoError(t, seq.SaveWeightsLegacyH5(paths["legacy"]))
	require.NoError(t, seq.SaveWeightsH5(paths["weights.h5"]))

	n := testutil.LeakIterations(150)
	warm := max(300, n/10)
	for _, kind := range []string{"keras", "weights.h5", "legacy"} {
		t.Run(kind, func(t *testing.T) {
			goroutines := runtime.NumGoroutine()
			testutil.FlatRSSWithin(t, warm, n, 8<<10, func() {
				switch kind {
				case "weights.h5":
					if err := seq.LoadWeightsH5(paths[kind]); err != nil {
						t.Fatal(err)
					}
					return
				case "legacy":
					if err := seq.LoadWeightsLegacyH5(paths[kind]); err != nil {
						t.Fatal(err)
					}
					return
				}
				m, err := LoadKerasModel(paths[kind], LoadOptions{})
				if err != nil {
					t.Fatal(err)
				}
				y, err := m.Predict(x)
				if err != nil {
					t.Fatal(err)
				}
				y.Close()
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
			})
			testutil.Goroutines(t, goroutines)
		})
	}
}

package keraslike

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fuzzModels are the models whose files seed the fuzzers: Go's writing of
// the Keras test models (Keras' own are in testdata/fuzz/FuzzModelFromJSON,
// written by Keras 3).
func fuzzModels(t testing.TB) []*Model {
	t.Helper()
	var ms []*Model
	for _, build := range []func() (*Model, error){
		goClassifier, goCausal,
		func() (*Model, error) { return goGPT(true) },
		func() (*Model, error) {
			d := NewDense(2, DenseOptions{Name: "d2"})
			d.SetTrainable(false)
			return NewSequential("seqm", InputSpec{Shape: []int64{4}},
				NewDense(8, DenseOptions{Name: "d1", Activation: "tanh"}),
				NewLayerNormalization(LayerNormalizationOptions{Name: "ln"}),
				NewDropout(0.2, DropoutOptions{Name: "drop"}), d), nil
		},
	} {
		m, err := build()
		require.NoError(t, err)
		ms = append(ms, m)
	}
	return ms
}

// FuzzModelFromJSON reads arbitrary bytes as a model config: an error or
// a model, never a panic, a hang or memory beyond the config limits.
func FuzzModelFromJSON(f *testing.F) {
	for _, m := range fuzzModels(f) {
		f.Add(kerasConfigOf(f, m))
		m.Close()
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A small MaxParams keeps every input fast (a valid config builds a
		// graph in tens of milliseconds; its weights are not allocated).
		m, err := modelFromJSON(data, LoadOptions{MaxParams: 1 << 16}, false)
		if err == nil {
			m.Close()
		}
	})
}

// FuzzLoadKeras reads arbitrary bytes as a .keras archive (the zip, its
// config and its HDF5 weights), seeded with the archives Go writes.
func FuzzLoadKeras(f *testing.F) {
	dir := f.TempDir()
	for i, m := range fuzzModels(f) {
		p := filepath.Join(dir, strconv.Itoa(i)+".keras")
		require.NoError(f, m.SaveKeras(p))
		m.Close()
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "m.keras")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := LoadKerasModel(p, LoadOptions{MaxParams: 1 << 16})
		if err == nil {
			m.Close()
		}
	})
}

// The seeds Keras wrote (configs of .keras files and legacy .h5 model_config
// attributes, with a frozen layer) load: the fuzzers start from valid files.
func TestKerasConfigSeedsLoad(t *testing.T) {
	files, err := filepath.Glob("testdata/fuzz/FuzzModelFromJSON/keras_*")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		// go test fuzz v1\n[]byte("...")\n
		lines := strings.SplitN(string(b), "\n", 3)
		require.Len(t, lines, 3, p)
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		require.NoError(t, err, p)
		m, err := modelFromJSON([]byte(s), LoadOptions{}, strings.HasSuffix(p, "_legacy_h5"))
		require.NoError(t, err, p)
		if strings.Contains(p, "sequential") {
			require.Len(t, m.TrainableWeights(), len(m.Weights())-2, "%s: the frozen d2 is not frozen", p)
		}
		m.Close()
	}
}

package runner

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// counterModel exports a model whose every run increments a counter
// variable: "count" returns the number of runs so far, so a run that
// happened shows.
func counterModel(t *testing.T) string {
	t.Helper()
	s := tfgo.NewScope()
	x := tfgo.Placeholder(s.SubScope("x"), tfgo.Float, -1, 3)
	scale := tfgo.Placeholder(s.SubScope("scale"), tfgo.Double, []int64{}...) // a scalar
	n := tfgo.NewVariable(s, "runs", tfgo.Int64, nil, tfgo.Zeros())
	inc := n.AssignAdd(s, tfgo.Const(s, int64(1)))
	count := n.Read(s.WithControlDependencies(inc).SubScope("count"))
	sum := tfgo.Sum(s, x, tfgo.Const(s, int32(1)))
	y := tfgo.Mul(s, sum, tfgo.Cast(s, scale, tfgo.Float))
	init := tfgo.GlobalVariablesInitializer(s)
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	_, err = sess.Run(nil, nil, init)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "counter")
	require.NoError(t, Export(dir, s.Graph(), sess, map[string]Signature{
		"serving_default": {Inputs: map[string]tfgo.Output{"x": x, "scale": scale}, Outputs: map[string]tfgo.Output{"y": y, "count": count}},
	}, ExportOptions{}))
	return dir
}

// TestRunChecksInputs: an unknown signature, a missing or unexpected
// input, a wrong dtype or shape are errors naming the signature and the
// input, and nothing runs.
func TestRunChecksInputs(t *testing.T) {
	dir := counterModel(t)
	m, err := Load(dir)
	require.NoError(t, err)
	defer m.Close()
	ctx := context.Background()
	x := [][]float32{{1, 2, 3}, {4, 5, 6}}
	for _, c := range []struct {
		name   string
		sig    string
		inputs map[string]any
		is     error
		want   []string
	}{
		{"unknown signature", "predict", map[string]any{"x": x, "scale": 2.0}, ErrUnknownSignature,
			[]string{`signature "predict"`, `"serving_default"`}},
		{"missing input", "serving_default", map[string]any{"x": x}, ErrMissingInput,
			[]string{`signature "serving_default"`, `input "scale"`, "float64"}},
		{"unexpected input", "serving_default", map[string]any{"x": x, "scale": 2.0, "bias": 1.0}, ErrUnexpectedInput,
			[]string{`signature "serving_default"`, `input "bias"`, `"scale", "x"`}},
		{"wrong dtype", "serving_default", map[string]any{"x": [][]float64{{1, 2, 3}}, "scale": 2.0}, ErrDType,
			[]string{`signature "serving_default"`, `input "x"`, "float64", "float32"}},
		{"wrong dtype of a tensor", "serving_default", map[string]any{"x": x, "scale": tensor(t, float32(2))}, ErrDType,
			[]string{`input "scale"`, "got float32", "takes float64"}},
		{"wrong shape", "serving_default", map[string]any{"x": [][]float32{{1, 2, 3, 4}}, "scale": 2.0}, ErrShape,
			[]string{`signature "serving_default"`, `input "x"`, "(1, 4)", "(None, 3)"}},
		{"wrong rank", "serving_default", map[string]any{"x": x, "scale": []float64{2}}, ErrShape,
			[]string{`input "scale"`, "(1,)", "()"}},
		{"nil tensor", "serving_default", map[string]any{"x": x, "scale": (*tfgo.Tensor)(nil)}, ErrNilInput,
			[]string{`input "scale"`, "nil or closed"}},
		{"closed tensor", "serving_default", map[string]any{"x": x, "scale": closedTensor(t)}, ErrNilInput,
			[]string{`input "scale"`, "nil or closed"}},
		{"not a tensor value", "serving_default", map[string]any{"x": x, "scale": struct{}{}}, nil,
			[]string{`signature "serving_default"`, `input "scale"`, "unsupported"}},
	} {
		_, err := m.Run(ctx, c.sig, c.inputs)
		require.Error(t, err, c.name)
		if c.is != nil {
			require.ErrorIs(t, err, c.is, c.name)
		}
		for _, w := range c.want {
			require.Contains(t, err.Error(), w, c.name)
		}
		t.Logf("%s: %v", c.name, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = m.Run(cancelled, "serving_default", map[string]any{"x": x, "scale": 2.0})
	require.ErrorIs(t, err, context.Canceled)

	// None of the calls above ran the graph: this is the first run.
	timed, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := m.Run(timed, "serving_default", map[string]any{"x": x, "scale": 2.0})
	require.NoError(t, err)
	runs, err := tfgo.Value(out["count"])
	require.NoError(t, err)
	require.Equal(t, int64(1), runs)
	y, err := tfgo.Value(out["y"])
	require.NoError(t, err)
	require.Equal(t, []float32{12, 30}, y)

	require.NoError(t, m.Close())
	_, err = m.Run(ctx, "serving_default", map[string]any{"x": x, "scale": 2.0})
	require.Error(t, err, "a closed model does not run")
	require.NoError(t, m.Close())

	// A bound on the inputs' bytes, checked before the graph runs.
	small, err := LoadWithOptions(dir, LoadOptions{MaxInputBytes: 16})
	require.NoError(t, err)
	defer small.Close()
	_, err = small.Run(ctx, "serving_default", map[string]any{"x": x, "scale": 2.0})
	require.ErrorIs(t, err, ErrInputTooLarge)
	require.ErrorContains(t, err, "MaxInputBytes")
}

// closedTensor is a float64 scalar tensor, already closed.
func closedTensor(t *testing.T) *tfgo.Tensor {
	tn := tensor(t, float64(2))
	tn.Close()
	return tn
}

// copyDir copies a directory tree.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	}))
}

// TestLoadBrokenDirectories: broken SavedModel directories are errors
// naming the file, from Load (checked in Go first) and from the C loader
// on its own; nothing crashes.
func TestLoadBrokenDirectories(t *testing.T) {
	good := counterModel(t)
	pb := func(dir string) string { return filepath.Join(dir, savedmodel.SavedModelFilename) }
	for _, c := range []struct {
		name    string
		breakIt func(dir string)
		file    func(dir string) string
		is      error
		tags    []string
	}{
		{"no variables/", func(d string) { require.NoError(t, os.RemoveAll(filepath.Join(d, "variables"))) },
			func(d string) string { return savedmodel.IndexFilename(savedmodel.VariablesPrefix(d)) }, fs.ErrNotExist, nil},
		{"no data shard", func(d string) {
			require.NoError(t, os.Remove(savedmodel.DataFilename(savedmodel.VariablesPrefix(d), 0, 1)))
		}, func(d string) string { return savedmodel.DataFilename(savedmodel.VariablesPrefix(d), 0, 1) }, fs.ErrNotExist, nil},
		{"no saved_model.pb", func(d string) { require.NoError(t, os.Remove(pb(d))) }, pb, fs.ErrNotExist, nil},
		{"truncated saved_model.pb", func(d string) {
			b, err := os.ReadFile(pb(d))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(pb(d), b[:len(b)/2], 0o644))
		}, pb, savedmodel.ErrCorrupt, nil},
		{"garbage saved_model.pb", func(d string) {
			require.NoError(t, os.WriteFile(pb(d), []byte("\xff\xff\xff\xff this is not a protocol buffer"), 0o644))
		}, pb, savedmodel.ErrCorrupt, nil},
		{"empty saved_model.pb", func(d string) { require.NoError(t, os.WriteFile(pb(d), nil, 0o644)) }, pb, savedmodel.ErrCorrupt, nil},
		{"not a directory", func(d string) {
			require.NoError(t, os.RemoveAll(d))
			require.NoError(t, os.WriteFile(d, []byte("x"), 0o644))
		}, func(d string) string { return d }, nil, nil},
		{"no such tags", func(string) {}, pb, savedmodel.ErrNotFound, []string{"serve", "gpu"}},
	} {
		dir := filepath.Join(t.TempDir(), "model")
		copyDir(t, good, dir)
		c.breakIt(dir)
		_, err := Load(dir, c.tags...)
		require.Error(t, err, c.name)
		require.Contains(t, err.Error(), c.file(dir), c.name)
		if c.is != nil {
			require.ErrorIs(t, err, c.is, c.name)
		}
		t.Logf("%s: %v", c.name, err)

		// The C++ loader alone reports an error too, without crashing.
		tags := c.tags
		if tags == nil {
			tags = []string{"serve"}
		}
		sess, _, err := tfgo.LoadSavedModel(dir, tags, tfgo.SessionOptions{})
		if c.name == "no data shard" || c.name == "no variables/" {
			// TensorFlow loads a model whose variables are gone (it skips
			// the restore when there is no index): why Load checks first.
			if err == nil {
				sess.Close() // and its graph
				continue
			}
		}
		require.Error(t, err, "C loader: %s", c.name)
		t.Logf("  the C loader alone: %.200v", err)
	}
}

package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/pyref"
	"github.com/gotf/gotf/internal/setup"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/keraslike"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkSame compares an output Python read back from a .npy file gotf
// wrote with Python's own signature output: same dtype and shape, values
// equal within float32 rounding (Python's loader optimizes the same graph
// its own way).
func checkSame(t *testing.T, what string, want, got *pyref.Array) {
	t.Helper()
	require.NotNil(t, want, what)
	require.NotNil(t, got, what+": no .npy output")
	require.Equal(t, want.DType, got.DType, what)
	switch want.DType {
	case "float32":
		w, err := want.Float32s()
		require.NoError(t, err)
		g, err := got.Float32s()
		require.NoError(t, err)
		testutil.AllCloseShape(t, what, want.Shape, w, got.Shape, g, 1e-6, 1e-6)
	default:
		assert.Equal(t, want.Shape, got.Shape, what)
		assert.Equal(t, want.Data, got.Data, what)
	}
}

// gotf run on a SavedModel exported by keraslike's Export gives the
// outputs Python's signature call gives, with the inputs from .npy and
// .npz files (as numpy wrote them, float64 converted to the signature's
// float32), Python literals and JSON; the .npy files it writes are what
// numpy reads back.
func TestRunGoExportedModelMatchesPython(t *testing.T) {
	keraslike.ResetNames()
	m := keraslike.NewSequential("served", keraslike.InputSpec{Shape: []int64{4}},
		keraslike.NewDense(8, keraslike.DenseOptions{Activation: "relu"}),
		keraslike.NewLayerNormalization(keraslike.LayerNormalizationOptions{}),
		keraslike.NewDense(3, keraslike.DenseOptions{}))
	defer m.Close()
	dir := filepath.Join(t.TempDir(), "export")
	require.NoError(t, m.Export(dir, keraslike.ExportOptions{InputName: "x", OutputName: "y"}))
	work := t.TempDir()

	py := python(t, `
import json
d, w = inputs["dir"].item().decode(), inputs["work"].item().decode()
x = np.random.default_rng(3).normal(size=(5, 4))
np.save(w + "/x64.npy", x)
np.savez(w + "/in.npz", a=x.astype(np.float32), b=np.zeros((1, 4), np.float32))
outputs["literal"] = repr(x.tolist())
outputs["json"] = json.dumps({"x": x.tolist()})
sig = tf.saved_model.load(d).signatures["serving_default"]
outputs["want"] = sig(x=tf.constant(x, tf.float32))["y"]
`, map[string]string{"dir": dir, "work": work})
	want := py["want"]

	runs := map[string][]string{
		"npy":   {"--inputs", "x=" + filepath.Join(work, "x64.npy")},
		"npz":   {"--inputs", "x=" + filepath.Join(work, "in.npz") + "[a]"},
		"exprs": {"--input_exprs", "x=" + string(py["literal"].Strings[0])},
		"json":  {"--input_json", string(py["json"].Strings[0])},
	}
	for name, args := range runs {
		out := filepath.Join(work, "out_"+name)
		text := mustGotf(t, append([]string{"run", dir, "--signature_def", "serving_default", "--outdir", out}, args...)...)
		assert.Contains(t, text, "Result for output key y:\n[[", name)
		assert.Contains(t, text, "Output y is saved to "+filepath.Join(out, "y.npy"), name)
		got := python(t, `outputs["y"] = np.load(inputs["path"].item().decode())`, map[string]string{"path": filepath.Join(out, "y.npy")})
		checkSame(t, name, want, got["y"])
	}

	// An existing output is kept unless --overwrite says otherwise, as in
	// saved_model_cli.
	out := filepath.Join(work, "out_npy")
	_, errs, code := gotf(t, "run", dir, "--inputs", "x="+filepath.Join(work, "x64.npy"), "--outdir", out)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, errs, "already exists")
	mustGotf(t, "run", dir, "--inputs", "x="+filepath.Join(work, "x64.npy"), "--outdir", out, "--overwrite")
}

// gotf run on a Python-exported SavedModel: several inputs of several
// dtypes (a scalar, an unknown-rank int64), several outputs, each equal to
// Python's signature call.
func TestRunPythonExportedModelMatchesPython(t *testing.T) {
	dir := exportPythonSavedModel(t)
	out := filepath.Join(t.TempDir(), "out")
	mustGotf(t, "run", dir, "--signature_def", "scaled", "--outdir", out,
		"--input_json", `{"x": [[1, 2, 3], [0.5, -1, 2]], "any": [[1, 2], [3, 4]]}`, "--input_exprs", "k=3")
	mustGotf(t, "run", dir, "--outdir", out, "--input_exprs", "x=((1.5, 2, 3),)")
	py := python(t, `
d, o = inputs["dir"].item().decode(), inputs["out"].item().decode()
m = tf.saved_model.load(d)
r = m.signatures["scaled"](x=tf.constant([[1, 2, 3], [0.5, -1, 2]], tf.float32), k=tf.constant(3), any=tf.constant([[1, 2], [3, 4]], tf.int64))
outputs["z"], outputs["s"] = r["z"], r["s"]
r = m.signatures["serving_default"](x=tf.constant([[1.5, 2, 3]], tf.float32))
outputs["y"], outputs["n"] = r["y"], r["n"]
for k in ["z", "s", "y", "n"]:
    outputs["got_" + k] = np.load(o + "/" + k + ".npy")
`, map[string]string{"dir": dir, "out": out})
	for _, k := range []string{"z", "s", "y", "n"} {
		checkSame(t, k, py[k], py["got_"+k])
	}
	assert.Equal(t, "int64", py["got_s"].DType)
	assert.Equal(t, "int32", py["got_n"].DType)

	// Without --outdir the outputs are printed, one key after another.
	text := mustGotf(t, "run", dir, "--input_exprs", "x=[[1, 2, 3]]")
	assert.True(t, strings.HasPrefix(text, "Result for output key n:\n1\nResult for output key y:\n[["), text)
}

// gotf run on the main job's SavedModel (a small run of
// examples/transformer, which exports saved_model/<step>) gives the
// logits Python's signature call gives for the same token ids.
func TestRunMainJobSavedModelMatchesPython(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the main job")
	}
	root, err := setup.ModuleRoot()
	require.NoError(t, err)
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := t.TempDir()
	job := exec.Command(goTool, "run", "./examples/transformer", "-layers", "1", "-dmodel", "32", "-heads", "2",
		"-seq", "16", "-batch", "8", "-steps", "4", "-epochs", "1", "-corpus", "65536", "-sample", "1", "-out", out)
	job.Dir = root
	log, err := job.CombinedOutput()
	require.NoError(t, err, "%s", log)
	dir := filepath.Join(out, "saved_model", "4")
	require.Contains(t, string(log), dir)

	py := python(t, `
d, w = inputs["dir"].item().decode(), inputs["work"].item().decode()
ids = np.random.default_rng(9).integers(0, 256, size=(3, 16)).astype(np.int32)
np.save(w + "/ids.npy", ids)
outputs["want"] = tf.saved_model.load(d).signatures["serving_default"](token_ids=tf.constant(ids))["logits"]
`, map[string]string{"dir": dir, "work": out})
	// The TF Serving base directory stands for its latest version.
	assert.Equal(t, mustGotf(t, "inspect", dir), mustGotf(t, "inspect", filepath.Dir(dir)))
	res := filepath.Join(out, "gotf")
	mustGotf(t, "run", filepath.Dir(dir), "--inputs", "token_ids="+filepath.Join(out, "ids.npy"), "--outdir", res)
	got := python(t, `outputs["logits"] = np.load(inputs["path"].item().decode())`, map[string]string{"path": filepath.Join(res, "logits.npy")})
	require.Equal(t, []int64{3, 16, 256}, got["logits"].Shape)
	checkSame(t, "logits", py["want"], got["logits"])
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// convertDst names a conversion's output and the flags its format needs.
func convertDst(dir, name, to string) (string, []string) {
	base := filepath.Join(dir, name)
	switch to {
	case toKeras:
		return base + ".keras", nil
	case toH5:
		return base + ".h5", nil
	case toWeightsH5:
		return base + ".weights.h5", nil
	case toWeightsJSON:
		// About 200 bytes a shard: the 332 bytes of weights take two.
		return base + ".weights.json", []string{"--max_shard_size", "2e-7"}
	case toLegacyWeightsH5:
		return base + "_legacy.h5", []string{"--to", to}
	case toCheckpoint:
		return filepath.Join(base+"_ckpt", "ckpt"), []string{"--to", to}
	}
	return base + "_saved_model", []string{"--to", to}
}

// Every pair gotf convert defines gives a file whose predictions, as Keras
// (or TensorFlow, for the SavedModel) computes them after loading it, are
// the predictions of the Keras model it started from. Weights-only files
// are converted with an architecture file of other weights, which they
// must replace.
func TestConvertEveryDefinedPairKeepsPredictions(t *testing.T) {
	dir := t.TempDir()
	py := python(t, `
import keras
d = inputs["dir"].item().decode()
keras.utils.set_random_seed(4)
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
    keras.layers.LayerNormalization(), keras.layers.Dense(3)])
m.layers[1].gamma.assign(np.linspace(0.5, 1.5, 8).astype(np.float32))
m.save(d + "/src.keras")
arch = keras.models.clone_model(m)
arch.save(d + "/arch.keras")
x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
np.save(d + "/x.npy", x)
outputs["want"] = m.predict(x, verbose=0)
outputs["arch"] = arch.predict(x, verbose=0)
`, map[string]string{"dir": dir})
	want, err := py["want"].Float32s()
	require.NoError(t, err)
	arch, err := py["arch"].Float32s()
	require.NoError(t, err)
	require.NotEqual(t, want, arch, "the architecture file must have other weights")

	// Each source format, written by gotf from the Keras file.
	srcs := map[string]string{toKeras: filepath.Join(dir, "src.keras")}
	var outs []string // "format path" lines for Python
	for _, to := range convertTargets {
		if to == toKeras {
			continue
		}
		dst, flags := convertDst(filepath.Join(dir, "src"), "m", to)
		out := mustGotf(t, append([]string{"convert", srcs[toKeras], dst}, flags...)...)
		assert.Equal(t, "Wrote "+dst+" as "+to+"\n", out)
		outs = append(outs, to+" "+dst)
		if to != toSavedModel {
			srcs[to] = dst
		}
	}
	shards, _ := filepath.Glob(filepath.Join(dir, "src", "m_*.weights.h5"))
	assert.Len(t, shards, 2, "sharded weights")
	for from, src := range srcs {
		for _, to := range convertTargets {
			dst, flags := convertDst(filepath.Join(dir, "out"), from+"_to_"+to, to)
			args := append([]string{"convert", src, dst}, flags...)
			if from != toKeras && from != toH5 {
				args = append(args, "--model", filepath.Join(dir, "arch.keras"))
			}
			mustGotf(t, args...)
			outs = append(outs, to+" "+dst)
		}
	}
	require.Len(t, outs, 6+6*7)

	res := python(t, `
import keras, json
d = inputs["dir"].item().decode()
x = np.load(d + "/x.npy")
diffs = {}
for line in inputs["outs"].item().decode().split("\n"):
    fmt, p = line.split(" ", 1)
    if fmt in ("keras", "h5"):
        y = keras.models.load_model(p).predict(x, verbose=0)
    elif fmt == "saved_model":
        y = tf.saved_model.load(p).signatures["serving_default"](inputs=tf.constant(x))["outputs"].numpy()
    else:
        a = keras.models.load_model(d + "/arch.keras")
        if fmt == "checkpoint":
            tf.train.Checkpoint(model=a).read(p).assert_existing_objects_matched()
        else:
            a.load_weights(p)
        y = a.predict(x, verbose=0)
    diffs[p] = y.tolist()
outputs["got"] = json.dumps(diffs)
`, map[string]string{"dir": dir, "outs": strings.Join(outs, "\n")})
	var got map[string][][]float64
	pyJSON(t, res["got"], &got)
	require.Len(t, got, len(outs))
	for _, line := range outs {
		_, p, _ := strings.Cut(line, " ")
		y := got[p]
		require.Len(t, y, 5, p)
		for i := range y {
			for j := range y[i] {
				assert.InDelta(t, want[i*3+j], y[i][j], 2e-6, "%s [%d,%d]", p, i, j)
			}
		}
	}
}

// Pairs that are not defined, and bad input, are one line on stderr.
func TestConvertRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	garbage := write("model.keras", "this is not a zip nor HDF5")
	badIndex := write("bad.weights.json", `{"weight_map": {"/layers/d/vars": [`)
	sm := exportPythonSavedModel(t)
	python(t, `
import keras
keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(inputs["p"].item().decode())
`, map[string]string{"p": filepath.Join(dir, "arch.keras")})
	arch := filepath.Join(dir, "arch.keras")
	weights := filepath.Join(dir, "w.weights.h5")
	mustGotf(t, "convert", arch, weights)
	missing := filepath.Join(dir, "nope.keras")
	out := filepath.Join(dir, "out.keras")
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"convert", arch}, exitUsage, "SRC and DST"},
		{[]string{"convert", missing, out}, exitNotFound, "no such file or directory"},
		{[]string{"convert", garbage, out}, exitFailure, "not a format gotf reads"},
		{[]string{"convert", sm, out}, exitFailure, "converting from one is not defined"},
		{[]string{"convert", weights, out}, exitUsage, "--model"},
		{[]string{"convert", badIndex, out, "--model", arch}, exitFailure, "bad.weights.json"},
		{[]string{"convert", weights, out, "--model", garbage}, exitFailure, "not a format gotf reads"},
		{[]string{"convert", weights, out, "--model", weights}, exitFailure, "not a .keras or .h5 full model"},
		{[]string{"convert", arch, out, "--model", arch}, exitUsage, "full model"},
		{[]string{"convert", arch, filepath.Join(dir, "noext")}, exitUsage, "--to"},
		{[]string{"convert", arch, out, "--to", "onnx"}, exitUsage, "want one of"},
		{[]string{"convert", arch, filepath.Join(dir, "x.weights.json"), "--max_shard_size", "0"}, exitUsage, "positive"},
		{[]string{"convert", arch, dir, "--to", "saved_model"}, exitFailure, "exists"},
	}
	for _, c := range cases {
		name := strings.Join(c.args, " ")
		stdout, errs, code := gotf(t, c.args...)
		assert.Equal(t, c.code, code, "%s: %s", name, errs)
		assert.Empty(t, stdout, name)
		lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
		if assert.Len(t, lines, 1, "%s: %q", name, errs) {
			assert.True(t, strings.HasPrefix(lines[0], "gotf convert: "), "%s: %s", name, lines[0])
			assert.Contains(t, lines[0], c.msg, name)
		}
	}
	_, err := os.Stat(out)
	assert.True(t, os.IsNotExist(err), "nothing written on refusal")
	help := mustGotf(t, "convert", "--help")
	assert.Contains(t, help, "SavedModel -> anything")
}

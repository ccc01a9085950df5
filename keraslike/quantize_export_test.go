package keraslike

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mainJobGPT is the main job's GPT (examples/transformer's defaults:
// 4 blocks of width 256, 4 heads, 128 tokens of bytes).
var mainJobGPT = GPTConfig{SeqLen: 128, DModel: 256, Heads: 4, Layers: 4}

// sourceTokens is this package's Go source as byte tokens, the kind of
// text the main job trains on.
func sourceTokens(t *testing.T) []int32 {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	var toks []int32
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, c := range b {
			toks = append(toks, int32(c))
		}
	}
	return toks
}

// nextTokenLoss is the mean sparse categorical cross-entropy of logits
// [B, T, V] against targets [B][T], in float64.
func nextTokenLoss(t *testing.T, logits *tfgo.Tensor, targets [][]int32) float64 {
	v := floats(t, logits)
	vocab := int(logits.Shape()[2])
	var sum float64
	n := 0
	for b, row := range targets {
		for i, y := range row {
			l := v[(b*len(row)+i)*vocab:][:vocab]
			m := math.Inf(-1)
			for _, x := range l {
				m = math.Max(m, float64(x))
			}
			var z float64
			for _, x := range l {
				z += math.Exp(float64(x) - m)
			}
			sum += m + math.Log(z) - float64(l[y])
			n++
		}
	}
	return sum / float64(n)
}

// dirSize is the bytes of the files under dir.
func dirSize(t *testing.T, dir string) int64 {
	var n int64
	require.NoError(t, filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	}))
	return n
}

// TestQuantizedExportGPT: the main job's GPT, trained briefly on Go
// source, exported as SavedModels with float32, float16 and bfloat16
// (weight-only) and int8 variables. The int8 SavedModel's variables are
// int8 and at most 30% of the float32 ones; it loads in the runner and in
// Python's tf.saved_model.load and predicts as the Go model; the
// validation loss moves by less than the bound below under every
// storage.
func TestQuantizedExportGPT(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the main job's GPT")
	}
	toks := sourceTokens(t)
	split := len(toks) * 9 / 10
	seq := mainJobGPT.SeqLen
	ds, err := NextTokenDataset(toks[:split], seq, 16, 1)
	require.NoError(t, err)
	// 16 held-out windows.
	var xv, yv [][]int32
	for i := 0; i < 16; i++ {
		w := toks[split+i*(seq+1):][:seq+1]
		xv, yv = append(xv, w[:seq]), append(yv, w[1:])
	}

	ResetNames()
	m, err := NewGPT("gpt", mainJobGPT)
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 2e-3}}),
		Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
	_, err = m.Fit(context.Background(), ds, FitOptions{Epochs: 1, StepsPerEpoch: 30})
	require.NoError(t, err)
	floatVals, err := m.GetWeights()
	require.NoError(t, err)

	dir := t.TempDir()
	loss := map[string]float64{}
	size := map[string]int64{}
	y32, err := m.Predict(xv)
	require.NoError(t, err)
	loss["float32"] = nextTokenLoss(t, y32, yv)
	export := func(name string, m *Model, o ExportOptions) string {
		d := filepath.Join(dir, name)
		require.NoError(t, m.Export(d, o))
		size[name] = dirSize(t, filepath.Join(d, "variables"))
		loaded, err := runner.Load(d)
		require.NoError(t, err)
		defer loaded.Close()
		out, err := loaded.Run(context.Background(), "serving_default", map[string]any{"inputs": xv})
		require.NoError(t, err)
		loss[name+" (runner)"] = nextTokenLoss(t, out["outputs"], yv)
		return d
	}
	export("float32", m, ExportOptions{})
	export("float16", m, ExportOptions{WeightDType: tfgo.Half})
	export("bfloat16", m, ExportOptions{WeightDType: tfgo.BFloat16})
	after, err := m.Predict(xv)
	require.NoError(t, err)
	assert.Equal(t, floats(t, y32), floats(t, after), "a half-precision export leaves the model as it was")

	require.NoError(t, m.Quantize("int8"))
	y8, err := m.Predict(xv)
	require.NoError(t, err)
	loss["int8"] = nextTokenLoss(t, y8, yv)
	d8 := export("int8", m, ExportOptions{})

	ResetNames()
	wo, err := NewGPT("gpt", mainJobGPT)
	require.NoError(t, err)
	defer wo.Close()
	require.NoError(t, wo.SetWeights(floatVals))
	require.NoError(t, wo.QuantizeWithOptions("int8", QuantizeOptions{WeightOnly: true}))
	yw, err := wo.Predict(xv)
	require.NoError(t, err)
	loss["weight-only int8"] = nextTokenLoss(t, yw, yv)
	export("weight-only int8", wo, ExportOptions{})

	for k, v := range size {
		t.Logf("variables %-16s %9d bytes (%.1f%% of float32)", k, v, 100*float64(v)/float64(size["float32"]))
	}
	for k, v := range loss {
		t.Logf("validation loss %-26s %.5f (%+.5f)", k, v, v-loss["float32"])
	}
	assert.LessOrEqual(t, float64(size["int8"]), 0.30*float64(size["float32"]), "int8 variables <= 30% of float32's")
	assert.LessOrEqual(t, float64(size["weight-only int8"]), 0.30*float64(size["float32"]))
	assert.LessOrEqual(t, float64(size["float16"]), 0.51*float64(size["float32"]))
	assert.LessOrEqual(t, float64(size["bfloat16"]), 0.51*float64(size["float32"]))
	// The bound: int8 rounding moves each weight and input by at most half
	// a step, 1/254 of its row's or channel's largest magnitude; bfloat16
	// by 2^-9 of its own (the coarsest here). Through 4 blocks and the head
	// such relative perturbations of ~0.4% change logits by a fraction of a
	// percent of their spread, and the cross-entropy, a smooth function of
	// them, by well under 2% of itself.
	for k, v := range loss {
		assert.InDelta(t, loss["float32"], v, 0.02*loss["float32"], "validation loss of %s", k)
	}
	assert.InDelta(t, loss["int8"], loss["int8 (runner)"], 1e-4, "the runner runs the int8 graph as the model does")

	// Python loads the int8 SavedModel: its variables are int8, and it
	// predicts as the Go model.
	dirT := strTensor(t, d8)
	xt, err := tfgo.NewTensor(xv)
	require.NoError(t, err)
	py := interop.Python(t, `
import os
d = inputs["dir"].item().decode()
m = tf.saved_model.load(d)
outputs["y"] = m.signatures["serving_default"](inputs=tf.constant(inputs["x"]))["outputs"]
dt = tf.train.load_checkpoint(os.path.join(d, "variables", "variables")).get_variable_to_dtype_map()
outputs["int8"] = np.array([sum(1 for v in dt.values() if v == tf.int8), len(dt)], dtype=np.float32)
`, map[string]*tfgo.Tensor{"dir": dirT, "x": xt})
	// Python's loader optimizes the graph its own way: a float one ulp
	// apart before an input is quantized can round it to the neighbouring
	// int8 step (1/127 of its row's largest), and the few such flips carry
	// through the 4 blocks: logits within 1% of the largest, and the same
	// loss to 0.1%.
	allCloseTol(t, "int8 SavedModel in Python", y8, py["y"], testutil.Tol{Scaled: 1e-2})
	assert.InDelta(t, loss["int8"], nextTokenLoss(t, py["y"], yv), 1e-3*loss["int8"], "validation loss in Python")
	n := floats(t, py["int8"])
	t.Logf("Python: %v of %v SavedModel variables are int8", n[0], n[1])
	assert.Equal(t, float32(4*6+2), n[0], "int8: per block 4 projections and 2 Dense kernels, the token embedding and lm_head")
}

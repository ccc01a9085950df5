package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gotf quantize writes the int8 model as a Keras file (whose kernels are
// int8 when Go loads it back) or as a SavedModel, and reports size,
// latency, kernels and, for a token model, the next-token loss before and
// after; bad input is one line and an exit code.
func TestQuantizeReport(t *testing.T) {
	dir := t.TempDir()
	// A token model of built-in layers (its Keras file round-trips
	// quantized) and the main job's GPT (whose TransformerBlock's
	// quantized sublayers only a SavedModel carries).
	keraslike.ResetNames()
	tok := keraslike.NewSequential("tok", keraslike.InputSpec{Shape: []int64{16}, DType: tfgo.Int32},
		keraslike.NewEmbedding(256, 16, keraslike.EmbeddingOptions{}), keraslike.NewDense(256, keraslike.DenseOptions{}))
	src := filepath.Join(dir, "model.keras")
	require.NoError(t, tok.SaveKeras(src))
	tok.Close()
	keraslike.ResetNames()
	gpt, err := keraslike.NewGPT("gpt", keraslike.GPTConfig{SeqLen: 16, DModel: 32, Heads: 2, Layers: 1})
	require.NoError(t, err)
	gptSrc := filepath.Join(dir, "gpt.keras")
	require.NoError(t, gpt.SaveKeras(gptSrc))
	gpt.Close()
	text := filepath.Join(dir, "eval.txt")
	b, err := os.ReadFile("quantize.go") // held-out bytes: this command's own source
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(text, b, 0o644))

	dst := filepath.Join(dir, "int8.keras")
	out := mustGotf(t, "quantize", src, dst, "--eval_text", text, "--eval_windows", "8", "--iters", "2")
	for _, want := range []string{"size on disk", "latency, batch 1", "latency, batch 32", "next-token loss", "perplexity", "MatMul kernels, int8:"} {
		assert.Contains(t, out, want)
	}
	q, err := keraslike.LoadKerasModel(dst, keraslike.LoadOptions{})
	require.NoError(t, err)
	int8s := 0
	for _, w := range q.Weights() {
		if w.DType() == tfgo.Int8 {
			int8s++
		}
	}
	q.Close()
	assert.Positive(t, int8s, "no int8 weight in the quantized file")

	sm := filepath.Join(dir, "export", "1")
	out = mustGotf(t, "quantize", gptSrc, sm, "--eval_text", text, "--eval_windows", "4", "--iters", "1", "--batch_sizes", "2")
	assert.Contains(t, out, "next-token loss")
	assert.Contains(t, out, "_MklQuantizedMatMulWithBias", "the int8 kernel ran")
	_, err = os.Stat(filepath.Join(sm, "saved_model.pb"))
	require.NoError(t, err)
	out = mustGotf(t, "quantize", gptSrc, filepath.Join(dir, "export", "2"), "--weight_only", "--iters", "1", "--batch_sizes", "1")
	assert.Contains(t, out, "weight-only int8")
	assert.Contains(t, out, "not measured")

	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"quantize", src}, exitUsage, "SRC and a destination DST"},
		{[]string{"quantize", filepath.Join(dir, "nope.keras"), dst}, exitNotFound, "no such file"},
		{[]string{"quantize", src, filepath.Join(dir, "x.keras"), "--mode", "int4"}, exitFailure, "int4"},
		{[]string{"quantize", dst, filepath.Join(dir, "twice.keras")}, exitFailure, "already"},
		{[]string{"quantize", src, filepath.Join(dir, "y.keras"), "--batch_sizes", "0"}, exitUsage, "--batch_sizes"},
		{[]string{"quantize", src, filepath.Join(dir, "z.weights.h5")}, exitFailure, "weights"},
		{[]string{"quantize", gptSrc, filepath.Join(dir, "gpt_int8.keras")}, exitFailure, "write a SavedModel instead"},
	} {
		o, errs, code := gotf(t, c.args...)
		assert.Equal(t, c.code, code, "%v: %s", c.args, errs)
		assert.Empty(t, o, "%v", c.args)
		assert.Equal(t, 1, strings.Count(errs, "\n"), "%v: %q", c.args, errs)
		assert.Contains(t, errs, c.msg, "%v", c.args)
	}
	assert.NoFileExists(t, filepath.Join(dir, "gpt_int8.keras"), "a Keras file that does not load back was left")
}

package runner

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/cgo"
	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// TestExportKeraslikeGPT exports keraslike's GPT (embeddings, a causal
// transformer block, the LM head) and runs the export in Go's C++ loader
// and in Python; both give the logits keraslike's Predict gives.
//
// keraslike.Model does not expose its graph input and output, so the test
// takes them by name: the input placeholder "input/Placeholder" and the
// last operation Build adds (the LM head's BiasAdd). Comparing with
// Predict checks that these are the model's tensors.
func TestExportKeraslikeGPT(t *testing.T) {
	const seqLen, vocab = 16, 256
	m := keraslike.NewGPT("gpt", keraslike.GPTConfig{SeqLen: seqLen, DModel: 32, Heads: 2, Layers: 1})
	defer m.Close()
	require.NoError(t, m.Build())
	g := m.Scope().Graph()
	ops := g.Operations()
	logits := ops[len(ops)-1].Output(0)
	ids, err := g.OutputByName("input/Placeholder")
	require.NoError(t, err)
	sess, err := m.Session()
	require.NoError(t, err)

	r := rand.New(rand.NewPCG(4, 2))
	x := make([][]int32, 3)
	for i := range x {
		x[i] = make([]int32, seqLen)
		for j := range x[i] {
			x[i][j] = int32(r.IntN(vocab))
		}
	}
	want, err := m.Predict(x)
	require.NoError(t, err)

	dir := filepath.Join(t.TempDir(), "gpt", "1")
	require.NoError(t, Export(dir, g, sess, map[string]Signature{
		"serving_default": {Inputs: map[string]tfgo.Output{"ids": ids}, Outputs: map[string]tfgo.Output{"logits": logits}},
	}, nil))

	loaded, err := Load(dir)
	require.NoError(t, err)
	defer loaded.Close()
	sig, _ := loaded.Signature("serving_default")
	require.Equal(t, cgo.MakeShape(-1, seqLen), sig.Inputs["ids"].Shape)
	require.Equal(t, cgo.Int32, sig.Inputs["ids"].DType)
	require.Equal(t, cgo.MakeShape(-1, seqLen, vocab), sig.Outputs["logits"].Shape)
	t.Logf("%s", sig)
	out, err := loaded.Run(context.Background(), "serving_default", map[string]any{"ids": x})
	require.NoError(t, err)
	closeTo(t, "GPT logits, C++ loader vs Predict", want, out["logits"], 1e-5)

	py := interop.Python(t, `
m = tf.saved_model.load(inputs["dir"].item().decode())
outputs["logits"] = m.signatures["serving_default"](ids=tf.constant(inputs["ids"]))["logits"]
`, map[string]*cgo.Tensor{"dir": str(t, dir), "ids": tensor(t, x)})
	closeTo(t, "GPT logits, Python tf.saved_model.load vs Predict", want, py["logits"], 1e-5)
}

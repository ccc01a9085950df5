package keraslike

import (
	"context"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/setup"
	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A keraslike GPT exported as a SavedModel (TF Serving layout) gives the
// logits Predict gives, in Go's C++ loader and in Python's
// tf.saved_model.load; saved_model_cli lists its signature.
func TestExportGPTSavedModel(t *testing.T) {
	const seqLen = 16
	ResetNames()
	m, err := NewGPT("gpt", GPTConfig{SeqLen: seqLen, DModel: 32, Heads: 2, Layers: 1})
	require.NoError(t, err)
	defer m.Close()
	r := rand.New(rand.NewSource(5))
	x := make([][]int32, 3)
	for i := range x {
		x[i] = make([]int32, seqLen)
		for j := range x[i] {
			x[i][j] = int32(r.Intn(256))
		}
	}
	want, err := m.Predict(x)
	require.NoError(t, err)
	base := filepath.Join(t.TempDir(), "gpt")
	dir, err := m.ExportVersion(base, 1, ExportOptions{InputName: "token_ids", OutputName: "logits"})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(base, "1"), dir)

	loaded, err := runner.Load(dir)
	require.NoError(t, err)
	defer loaded.Close()
	out, err := loaded.Run(context.Background(), "serving_default", map[string]any{"token_ids": x})
	require.NoError(t, err)
	assert.Equal(t, floats(t, want), floats(t, out["logits"]))

	idsT, err := tfgo.NewTensor(x)
	require.NoError(t, err)
	dirT, err := tfgo.NewStringTensor(nil, [][]byte{[]byte(dir)})
	require.NoError(t, err)
	py := interop.Python(t, `
m = tf.saved_model.load(inputs["dir"].item().decode())
outputs["logits"] = m.signatures["serving_default"](token_ids=tf.constant(inputs["ids"]))["logits"]
`, map[string]*tfgo.Tensor{"dir": dirT, "ids": idsT})
	allCloseTol(t, "logits in Python", want, py["logits"], kerasTol) // the same graph, optimised by Python's loader

	root, err := setup.ModuleRoot()
	require.NoError(t, err)
	cli, err := exec.Command(filepath.Join(root, ".venv", "bin", "saved_model_cli"), "show", "--dir", dir, "--all").CombinedOutput()
	require.NoError(t, err, "%s", cli)
	for _, want := range []string{"signature_def['serving_default']", "inputs['token_ids']", "outputs['logits']", "shape: (-1, 16, 256)"} {
		assert.True(t, strings.Contains(string(cli), want), "saved_model_cli output lacks %q:\n%s", want, cli)
	}
}

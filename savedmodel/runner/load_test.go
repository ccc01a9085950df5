package runner

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// describeSignatures is Python code that sets outputs["sigs"] to one line
// per signature tensor of the loaded object m:
// "signature|input or output|key|dtype|dims" (-1 for an unknown dim, "?"
// for an unknown rank), sorted.
const describeSignatures = `
def _dims(shape):
    if shape.rank is None:
        return "?"
    return ",".join("-1" if d is None else str(d) for d in shape.as_list())
_lines = []
for _name, _fn in m.signatures.items():
    for _k, _spec in _fn.structured_input_signature[1].items():
        _lines.append(f"{_name}|input|{_k}|{_spec.dtype.name}|{_dims(_spec.shape)}")
    for _k, _spec in _fn.structured_outputs.items():
        _lines.append(f"{_name}|output|{_k}|{_spec.dtype.name}|{_dims(_spec.shape)}")
outputs["sigs"] = np.array(sorted(_lines), dtype=object)
`

// describe formats a model's signatures as describeSignatures does.
func describe(m *Model) []string {
	var lines []string
	dims := func(s tfgo.Shape) string {
		if s.UnknownRank {
			return "?"
		}
		parts := make([]string, len(s.Dims))
		for i, d := range s.Dims {
			parts[i] = fmt.Sprint(d)
		}
		return strings.Join(parts, ",")
	}
	for _, s := range m.Signatures() {
		for k, ti := range s.Inputs {
			lines = append(lines, fmt.Sprintf("%s|input|%s|%s|%s", s.Name, k, ti.DType, dims(ti.Shape)))
		}
		for k, ti := range s.Outputs {
			lines = append(lines, fmt.Sprintf("%s|output|%s|%s|%s", s.Name, k, ti.DType, dims(ti.Shape)))
		}
	}
	sort.Strings(lines)
	return lines
}

func stringsOf(t *testing.T, tn *tfgo.Tensor) []string {
	t.Helper()
	b, err := tn.Strings()
	require.NoError(t, err)
	s := make([]string, len(b))
	for i, v := range b {
		s[i] = string(v)
	}
	return s
}

// TestLoadKerasExport loads a Keras 3 transformer exported by Python with
// model.export(dir), lists its signatures as Python sees them and runs
// them, matching Keras' own outputs.
func TestLoadKerasExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keras_transformer")
	x := tensor(t, (&block{T: 10, D: 16}).randomInput(4, 2))
	py := interop.Python(t, `
import keras
keras.utils.set_random_seed(3)
inp = keras.Input((10, 16), name="embeddings")
h = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, name="attention")(inp, inp, use_causal_mask=True)
h = keras.layers.LayerNormalization(epsilon=1e-6, name="ln1")(inp + h)
f = keras.layers.Dense(32, activation="gelu", name="up")(h)
f = keras.layers.Dense(16, name="down")(f)
out = keras.layers.LayerNormalization(epsilon=1e-6, name="ln2")(h + f)
model = keras.Model(inp, out, name="block")
d = inputs["dir"].item().decode()
model.export(d, verbose=False)
outputs["want"] = model(inputs["x"], training=False)
m = tf.saved_model.load(d)
`+describeSignatures, map[string]*tfgo.Tensor{"dir": str(t, dir), "x": x})

	m, err := Load(dir)
	require.NoError(t, err)
	defer m.Close()
	require.Equal(t, stringsOf(t, py["sigs"]), describe(m))
	for _, s := range m.Signatures() {
		t.Logf("%s", s)
	}
	sig, ok := m.Signature("serving_default")
	require.True(t, ok)
	require.Len(t, sig.Inputs, 1)
	require.Len(t, sig.Outputs, 1)
	out, err := m.Run(context.Background(), "serving_default", map[string]any{sig.InputNames()[0]: x})
	require.NoError(t, err)
	closeTo(t, "Keras export, serving_default", py["want"], out[sig.OutputNames()[0]], 1e-5)
}

// TestLoadModuleSignatures loads a tf.Module saved with two
// @tf.function(input_signature=...) signatures, of several dtypes and
// shapes, and runs both.
func TestLoadModuleSignatures(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "module")
	x := tensor(t, [][]float32{{1, 2, 3}, {-1, 0.5, 4}})
	n := tensor(t, []int64{3, 1, 4, 1, 5})
	scale := tensor(t, 0.25)
	py := interop.Python(t, `
class Affine(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(np.random.RandomState(0).randn(3, 2).astype("float32"), name="w")
        self.b = tf.Variable([0.5, -1.0], name="b")

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def affine(self, x):
        return {"y": tf.nn.softmax(tf.matmul(x, self.w) + self.b)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="n"), tf.TensorSpec([], tf.float64, name="scale")])
    def scaled(self, n, scale):
        return {"scaled": tf.cast(n, tf.float64) * scale, "count": tf.size(n), "total": tf.reduce_sum(n)}

mod = Affine()
d = inputs["dir"].item().decode()
tf.saved_model.save(mod, d, signatures={"affine": mod.affine, "scaled": mod.scaled})
outputs["y"] = mod.affine(inputs["x"])["y"]
r = mod.scaled(inputs["n"], inputs["scale"])
for k in r:
    outputs[k] = r[k]
m = tf.saved_model.load(d)
`+describeSignatures, map[string]*tfgo.Tensor{"dir": str(t, dir), "x": x, "n": n, "scale": scale})

	m, err := Load(dir)
	require.NoError(t, err)
	defer m.Close()
	require.Equal(t, stringsOf(t, py["sigs"]), describe(m))
	for _, s := range m.Signatures() {
		t.Logf("%s", s)
	}
	out, err := m.Run(context.Background(), "affine", map[string]any{"x": x})
	require.NoError(t, err)
	closeTo(t, "affine y", py["y"], out["y"], 1e-5)

	// Go values as well as tensors.
	out, err = m.Run(context.Background(), "scaled", map[string]any{"n": []int64{3, 1, 4, 1, 5}, "scale": 0.25})
	require.NoError(t, err)
	require.Equal(t, []string{"count", "scaled", "total"}, sortedKeys(out))
	for _, k := range []string{"count", "scaled", "total"} {
		require.Equal(t, py[k].DataType(), out[k].DataType(), k)
		require.Equal(t, py[k].Shape(), out[k].Shape(), k)
		require.Equal(t, py[k].Data(), out[k].Data(), k)
	}
	v, err := tfgo.Value(out["scaled"])
	require.NoError(t, err)
	t.Logf("scaled: %v, count: %v", v, out["count"])
}

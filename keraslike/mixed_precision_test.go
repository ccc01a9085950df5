package keraslike

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/mixedprecision"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withPolicy makes layers under the global policy name, as Keras code
// does between set_global_policy calls, and restores float32 after.
func withPolicy(t *testing.T, name string, build func()) {
	t.Helper()
	require.NoError(t, mixedprecision.SetGlobalPolicyName(name))
	defer mixedprecision.SetGlobalPolicy(mixedprecision.Float32)
	build()
}

// layerDTypes lists "path=compute dtype" for every layer of m and every
// sublayer of a composite, named by layer names as in Keras' layer tree.
func layerDTypes(m *Model) []string {
	var out []string
	var walk func(prefix string, l Layer)
	walk = func(prefix string, l Layer) {
		path := prefix + strings.TrimRight(l.Name(), "_0123456789")
		if !strings.HasSuffix(prefix, "multi_head_attention/") {
			path = prefix + l.Name()
		}
		if p, ok := l.(interface{ DTypePolicy() mixedprecision.Policy }); ok {
			out = append(out, path+"="+p.DTypePolicy().ComputeDType().String())
		}
		if c, ok := l.(KerasSublayers); ok {
			for _, sub := range c.KerasSublayers() {
				walk(path+"/", sub)
			}
		}
	}
	for _, l := range m.Layers() {
		walk("", l)
	}
	sort.Strings(out)
	return out
}

// pyLayerDTypes is layerDTypes for a Keras model (in outputs["layers"]),
// and the variables' "path=dtype" (outputs["vars"]).
const pyLayerDTypes = `
def walk(prefix, l, out):
    path = prefix + l.name
    out.append(path + "=" + l.compute_dtype)
    for sub in l._flatten_layers(include_self=False, recursive=False):
        walk(path + "/", sub, out)
def dtypes_of(m):
    out = []
    for l in m.layers:
        if not isinstance(l, keras.layers.InputLayer):
            walk("", l, out)
    # MultiHeadAttention's softmax and dropout are named by a process-wide
    # counter (softmax_3): the counts are not the layers' business.
    import re
    return sorted(re.sub(r"multi_head_attention/(softmax|dropout)_[0-9]+=", r"multi_head_attention/\1=", s) for s in out)
def var_dtypes(m):
    return [v.path + "=" + v.dtype for v in m.weights]
`

// logits32 is the model's inference output cast to float32.
func logits32(t *testing.T, m *Model, ids *tfgo.Tensor) *tfgo.Tensor {
	t.Helper()
	require.NoError(t, m.Build())
	y := tfgo.Cast(m.Scope().SubScope("test_cast"), m.y, tfgo.Float)
	sess, err := m.Session()
	require.NoError(t, err)
	out, err := sess.Run(map[tfgo.Output]any{m.x: ids}, []tfgo.Output{y})
	require.NoError(t, err)
	return out[0]
}

// A GPT under mixed_float16 and mixed_bfloat16 computes what its Keras twin
// computes under the same policy and weights; the layers' compute dtypes
// and the variables' dtypes are Keras'; the .keras files of each side load
// on the other with the policy kept.
func TestMixedPrecisionGPTMatchesKeras(t *testing.T) {
	for _, c := range []struct {
		policy string
		preLN  bool
		// The outputs are rounded to the compute dtype (8 significant bits
		// for bfloat16, 11 for float16) after two blocks of roundings that
		// need not fall alike on both sides (Grappler fuses and orders
		// differently in a session and in a tf.function): measured max
		// |Go - Keras| / (1 + max|Keras|) 9e-3 for bfloat16 (0.023 on logits
		// up to 1.6: 3 ulps of bfloat16 there) and 9.4e-4 for float16
		// (0.0078 on logits up to 7.3: 2 ulps); the tolerances are about
		// twice that.
		tol float64
	}{
		{"mixed_bfloat16", false, 2e-2},
		{"mixed_float16", true, 2e-3},
	} {
		t.Run(c.policy, func(t *testing.T) {
			dir := t.TempDir()
			ids := randIDs(t, 3, 256)
			var m *Model
			withPolicy(t, c.policy, func() {
				ResetNames()
				var err error
				m, err = NewGPT("gpt", GPTConfig{SeqLen: 8, DModel: 16, Heads: 2, Layers: 2, FFDim: 64, PreLN: c.preLN})
				require.NoError(t, err)
			})
			defer m.Close()
			require.NoError(t, m.Build())
			randomizeGo(t, m, 17)
			assert.Contains(t, m.Summary(), "Dtype policy: "+c.policy)
			y := logits32(t, m, ids)
			require.NoError(t, m.SaveKeras(filepath.Join(dir, "go.keras")))
			ws, err := m.GetWeights()
			require.NoError(t, err)
			in := map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "ids": ids}
			for i, w := range ws {
				in[fmt.Sprintf("w%03d", i)] = w
			}
			ref := interop.Python(t, kerasTwins+pyLayerDTypes+fmt.Sprintf(`
import os
d = inputs["dir"].item().decode()
keras.backend.clear_session()
keras.mixed_precision.set_global_policy(%q)
g = gpt(pre_ln=%s)
g.set_weights([inputs[k] for k in sorted(inputs) if k.startswith("w")])
outputs["y"] = np.asarray(keras.ops.cast(g(inputs["ids"], training=False), "float32"))
outputs["layers"] = np.array([s.encode() for s in dtypes_of(g)], dtype=object)
outputs["vars"] = np.array([s.encode() for s in var_dtypes(g)], dtype=object)
g.save(os.path.join(d, "py.keras"))
# Go's file, read with the global policy back at float32: the layers' own
# policies come from the file.
keras.mixed_precision.set_global_policy("float32")
h = keras.models.load_model(os.path.join(d, "go.keras"), custom_objects=custom_objects)
outputs["go_layers"] = np.array([s.encode() for s in dtypes_of(h)], dtype=object)
outputs["go_y"] = np.asarray(keras.ops.cast(h(inputs["ids"], training=False), "float32"))
`, c.policy, map[bool]string{true: "True", false: "False"}[c.preLN]), in)

			samePredictions(t, ref["y"], y, c.tol, "Go vs Keras logits under "+c.policy)
			samePredictions(t, y, ref["go_y"], c.tol, "Go's .keras in Keras under "+c.policy)
			strs := func(k string) []string {
				b, err := ref[k].Strings()
				require.NoError(t, err)
				out := make([]string, len(b))
				for i := range b {
					out[i] = string(b[i])
				}
				return out
			}
			goLayers := layerDTypes(m)
			assert.Equal(t, strs("layers"), goLayers, "compute dtypes of every layer")
			assert.Equal(t, strs("layers"), strs("go_layers"), "policies of Go's .keras file read by Keras")
			var goVars []string
			for _, w := range m.Weights() {
				goVars = append(goVars, w.Path+"="+w.DType().String())
			}
			assert.Equal(t, strs("vars"), goVars, "variable dtypes")

			// Keras' file in Go, made while the global policy is float32.
			p, err := LoadKerasModel(filepath.Join(dir, "py.keras"), LoadOptions{})
			require.NoError(t, err)
			defer p.Close()
			assert.Equal(t, goLayers, layerDTypes(p), "policies of Keras' .keras file read by Go")
			samePredictions(t, ref["y"], logits32(t, p, ids), c.tol, "Keras' .keras in Go under "+c.policy)
		})
	}
}

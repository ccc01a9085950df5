package keraslike

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/mixedprecision"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quantTol compares int8 predictions of ours with Keras' on the same int8
// weights. Both quantize each input row with the same float32 ops
// (abs-max, add, divide, multiply, round, clip), multiply integers
// exactly and rescale with the same division, so they agree to the bit
// here; a row computed one ulp apart upstream (grappler fuses a session
// graph and a tf.function differently) may round one quantized input
// element the other way: a change of about max|row|/127 · |w| in the
// outputs it feeds, which the softmax head and the layer norms shrink.
// The bound allows that, relative to the largest output.
var quantTol = testutil.Tol{Rtol: 1e-5, Scaled: 1e-3}

// TestQuantizeMatchesKeras: the same float weights quantized by Go's
// Model.Quantize("int8") and by Keras' model.quantize("int8") give the
// same int8 kernels and scales, bit for bit, the same dtype policies and
// weight paths, and the same predictions; the int8 product runs on
// TensorFlow's int8 kernel.
func TestQuantizeMatchesKeras(t *testing.T) {
	dir := t.TempDir()
	m, err := goClassifier()
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Build())
	randomizeGo(t, m, 3)
	require.NoError(t, m.SaveKeras(filepath.Join(dir, "float.keras")))
	x := randIDs(t, 7, 50)
	ref := interop.Python(t, `
import os, keras, warnings
warnings.simplefilter("ignore")  # Keras warns for each layer it cannot quantize
m = keras.models.load_model(os.path.join(inputs["dir"].item().decode(), "float.keras"))
m.quantize("int8")
for v in m.weights:
    outputs["w:" + v.path] = v.numpy()
outputs["policies"] = np.array([("%s=%s" % (l.name, l.dtype_policy.name)).encode() for l in m._flatten_layers() if l.dtype_policy.quantization_mode], dtype=object)
outputs["y"] = m.predict(inputs["x"], verbose=0)
`, map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "x": x})

	require.NoError(t, m.Quantize("int8"))
	vals, err := m.GetWeights()
	require.NoError(t, err)
	seen := 0
	for i, w := range m.Weights() {
		want, ok := ref["w:"+w.Path]
		if !assert.True(t, ok, "Keras has no weight %s", w.Path) {
			continue
		}
		seen++
		assert.Equal(t, want.DataType(), vals[i].DataType(), w.Path)
		assert.Equal(t, want.Shape(), vals[i].Shape(), w.Path)
		assert.True(t, bytes.Equal(want.Data(), vals[i].Data()), "%s differs from Keras' (bit for bit)", w.Path)
	}
	nKeras := 0
	for k := range ref {
		if strings.HasPrefix(k, "w:") {
			nKeras++
		}
	}
	assert.Equal(t, nKeras, seen, "Go and Keras have the same weights")

	pols, err := ref["policies"].Strings()
	require.NoError(t, err)
	var got []string
	walkLayers(m.layers, func(l Layer) {
		if p, ok := l.(interface{ DTypePolicy() mixedprecision.Policy }); ok && p.DTypePolicy().QuantizationMode() != "" {
			got = append(got, l.Name()+"="+p.DTypePolicy().Name())
		}
	})
	var want []string
	for _, p := range pols {
		want = append(want, string(p))
	}
	assert.ElementsMatch(t, want, got)

	y := predict(t, m, x)
	allCloseTol(t, "int8 predictions", ref["y"], y, quantTol)
	t.Logf("int8 predictions equal Keras' bit for bit: %v", bytes.Equal(ref["y"].Data(), y.Data()))

	// Which kernels ran: the int8 × int8 → int32 products.
	sess, err := m.Session()
	require.NoError(t, err)
	_, tr, err := sess.RunTraced(map[tfgo.Output]any{m.Input(): x}, []tfgo.Output{m.Output()})
	require.NoError(t, err)
	kernels := int8Kernels(tr)
	t.Logf("int8 kernels executed: %v", kernels)
	assert.Equal(t, 7, sumCounts(kernels), "one int8 product per projection (query, key, value, attention_output) and Dense (ffn_1, ffn_2, head)")
}

// int8Kernels counts the executed ops with an int8 input type attribute
// (partition graphs of a traced run): which int8 kernels ran.
func int8Kernels(tr *tfgo.Trace) map[string]int {
	ks := map[string]int{}
	for _, g := range tr.Metadata.GetPartitionGraphs() {
		for _, n := range g.GetNode() {
			for _, a := range []string{"T", "Ta", "Tb"} {
				if v, ok := n.GetAttr()[a]; ok && v.GetType().String() == "DT_INT8" && strings.Contains(n.GetOp(), "MatMul") {
					ks[n.GetOp()]++
					break
				}
			}
		}
	}
	return ks
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

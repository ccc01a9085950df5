package keraslike

import (
	"bytes"
	"context"
	"math/rand"
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
	for _, c := range []struct {
		policy mixedprecision.Policy
		tol    testutil.Tol
	}{
		{mixedprecision.Float32, quantTol},
		// bfloat16 keeps 8 bits: an input one bfloat16 ulp apart (0.4%)
		// between the two graphs would move outputs by about that much of
		// the largest (here they agree to the bit).
		{mixedprecision.MixedBFloat16, testutil.Tol{Rtol: 1e-2, Scaled: 1e-2}},
	} {
		t.Run(c.policy.Name(), func(t *testing.T) { quantizeMatchesKeras(t, c.policy, c.tol) })
	}
}

func quantizeMatchesKeras(t *testing.T, policy mixedprecision.Policy, tol testutil.Tol) {
	dir := t.TempDir()
	mixedprecision.SetGlobalPolicy(policy)
	defer mixedprecision.SetGlobalPolicy(mixedprecision.Float32)
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
	allCloseTol(t, "int8 predictions", asFloat32(t, ref["y"]), asFloat32(t, y), tol)
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

// asFloat32 is v cast to float32 (mixed_bfloat16 predictions are bfloat16).
func asFloat32(t *testing.T, v *tfgo.Tensor) *tfgo.Tensor {
	if v.DataType() == tfgo.Float {
		return v
	}
	s := tfgo.NewScope()
	return run(t, s, nil, tfgo.Cast(s, tfgo.Const(s, v), tfgo.Float))[0]
}

// int8Kernels counts the executed MatMul-family ops with 8-bit integer
// inputs (partition graphs of a traced run): which int8 kernels ran.
func int8Kernels(tr *tfgo.Trace) map[string]int {
	ks := map[string]int{}
	for _, g := range tr.Metadata.GetPartitionGraphs() {
		for _, n := range g.GetNode() {
			for _, a := range []string{"T", "Ta", "T1"} {
				if dt := n.GetAttr()[a].GetType().String(); (dt == "DT_INT8" || dt == "DT_QUINT8") && strings.Contains(n.GetOp(), "MatMul") {
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

// quantizedPyModel is a Keras model with the layers Keras can save and
// load quantized (its MultiHeadAttention cannot: Keras 3.15 rebuilds the
// attention's projections from the attention's float policy and fails to
// load their int8 weights).
const quantizedPyModel = `
def quantizable_model(seed):
    keras.utils.set_random_seed(seed)
    ids = keras.Input((8,), dtype="int32", name="ids")
    x = keras.layers.Embedding(50, 16, name="embedding")(ids)
    x = keras.layers.Dense(32, activation="relu", name="ffn")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="ln")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(ids, keras.layers.Dense(3, activation="softmax", name="head")(x), name="quantizable")
`

// goQuantizable is quantizable_model above, built in Go.
func goQuantizable() (*Model, error) {
	ids := Input(InputSpec{Shape: []int64{8}, DType: tfgo.Int32, Name: "ids"})
	x := Apply(NewEmbedding(50, 16, EmbeddingOptions{Name: "embedding"}), ids)
	x = Apply(NewDense(32, DenseOptions{Name: "ffn", Activation: "relu"}), x)
	x = Apply(NewLayerNormalization(LayerNormalizationOptions{Name: "ln", Epsilon: 1e-6}), x)
	x = Apply(NewGlobalAveragePooling1D(GlobalPooling1DOptions{Name: "pool"}), x)
	return NewFunctional("quantizable", ids, Apply(NewDense(3, DenseOptions{Name: "head", Activation: "softmax"}), x))
}

// TestQuantizedKerasFiles: a .keras file of a model Keras quantized (int8,
// and weight-only int8) loads in Go as a quantized model and predicts as
// Keras; a model Go quantized, saved as .keras, loads in Keras 3 as a
// quantized model (QuantizedDTypePolicy, int8 kernels) and predicts as Go,
// and in Go again.
func TestQuantizedKerasFiles(t *testing.T) {
	dir := t.TempDir()
	x := randIDs(t, 9, 50)
	in := map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "x": x}
	ref := interop.Python(t, `
import os, keras, warnings
warnings.simplefilter("ignore")
from keras.quantizers import Int8QuantizationConfig
d = inputs["dir"].item().decode()
`+quantizedPyModel+`
m = quantizable_model(1)
m.quantize("int8")
m.save(os.path.join(d, "py_int8.keras"))
outputs["int8"] = m.predict(inputs["x"], verbose=0)
m = quantizable_model(2)
m.quantize(config=Int8QuantizationConfig(activation_quantizer=None))
m.save(os.path.join(d, "py_weight_only.keras"))
outputs["weight_only"] = m.predict(inputs["x"], verbose=0)
`, in)
	for _, name := range []string{"int8", "weight_only"} {
		t.Run("keras "+name+" to Go", func(t *testing.T) {
			m, err := LoadKerasModel(filepath.Join(dir, "py_"+name+".keras"), LoadOptions{})
			require.NoError(t, err)
			defer m.Close()
			for _, l := range m.Layers() {
				if d, ok := l.(*Dense); ok {
					assert.Equal(t, "int8_from_float32", d.DTypePolicy().Name(), d.Name())
					assert.Equal(t, name == "weight_only", d.weightOnly, d.Name())
				}
			}
			allCloseTol(t, name, ref[name], predict(t, m, x), quantTol)
		})
	}

	for _, o := range []QuantizeOptions{{}, {WeightOnly: true}} {
		t.Run(map[bool]string{false: "go int8", true: "go weight-only int8"}[o.WeightOnly]+" to Keras", func(t *testing.T) {
			m, err := goQuantizable()
			require.NoError(t, err)
			defer m.Close()
			require.NoError(t, m.Build())
			randomizeGo(t, m, 5)
			require.NoError(t, m.QuantizeWithOptions("int8", o))
			yGo := predict(t, m, x)
			path := filepath.Join(dir, "go.keras")
			require.NoError(t, m.SaveKeras(path))
			out := interop.Python(t, `
import os, keras
m = keras.models.load_model(os.path.join(inputs["dir"].item().decode(), "go.keras"))
outputs["y"] = m.predict(inputs["x"], verbose=0)
outputs["policies"] = np.array([("%s=%s" % (l.name, l.dtype_policy.name)).encode() for l in m.layers], dtype=object)
outputs["int8"] = np.array([v.path.encode() for v in m.weights if v.dtype == "int8"], dtype=object)
dense = [l for l in m.layers if isinstance(l, keras.layers.Dense)]
outputs["weight_only"] = np.array([sum(l.inputs_quantizer is None for l in dense), len(dense)], dtype=np.float32)
`, in)
			allCloseTol(t, "Go int8 model in Keras", yGo, out["y"], quantTol)
			pols, err := out["policies"].Strings()
			require.NoError(t, err)
			for _, p := range pols {
				if s := string(p); strings.HasPrefix(s, "embedding=") || strings.HasPrefix(s, "ffn=") || strings.HasPrefix(s, "head=") {
					assert.True(t, strings.HasSuffix(s, "=int8_from_float32"), s)
				}
			}
			i8, err := out["int8"].Strings()
			require.NoError(t, err)
			assert.Len(t, i8, 3, "Keras sees int8 embeddings and kernels")
			wo := floats(t, out["weight_only"])
			want := float32(0)
			if o.WeightOnly {
				want = wo[1]
			}
			assert.Equal(t, want, wo[0], "Keras' Dense layers have no inputs quantizer exactly when weight-only")

			back, err := LoadKerasModel(path, LoadOptions{})
			require.NoError(t, err)
			defer back.Close()
			allCloseTol(t, "Go reads back its quantized model", yGo, predict(t, back, x), kerasTol)
		})
	}
}

// TestQuantizeBadInput: the refusals, with Keras' own messages (from
// Keras in the same run) where Keras refuses too, and nothing changed.
func TestQuantizeBadInput(t *testing.T) {
	dir := t.TempDir()
	ref := interop.Python(t, `
import os, keras, warnings
warnings.simplefilter("ignore")
from keras.quantizers import Int8QuantizationConfig, AbsMaxQuantizer
`+quantizedPyModel+`
def message(f):
    try:
        f()
    except Exception as e:
        return np.array(str(e).encode(), dtype=object)
    raise AssertionError("no error")
m = quantizable_model(1)
outputs["mode"] = message(lambda: m.quantize("int16"))
m.quantize("int8")
outputs["again"] = message(lambda: m.quantize("int8"))
m = quantizable_model(1)
m.quantize(config=Int8QuantizationConfig(weight_quantizer=AbsMaxQuantizer(axis=0, value_range=(-100, 100))), filters=lambda l: isinstance(l, keras.layers.Dense))
m.save(os.path.join(inputs["dir"].item().decode(), "custom_quantizer.keras"))
`, map[string]*tfgo.Tensor{"dir": strTensor(t, dir)})
	kerasMsg := func(k string) string {
		s, err := ref[k].Strings()
		require.NoError(t, err)
		return string(s[0])
	}

	m, err := goQuantizable()
	require.NoError(t, err)
	defer m.Close()
	x := randIDs(t, 3, 50)
	y0 := predict(t, m, x)
	assert.ErrorContains(t, m.Quantize("int16"), kerasMsg("mode"))
	for _, mode := range []string{"float8", "int4", "gptq", "awq"} {
		assert.ErrorContains(t, m.Quantize(mode), `quantization mode "`+mode+`" is not implemented in keraslike (int8 only)`)
	}
	assert.True(t, bytes.Equal(y0.Data(), predict(t, m, x).Data()), "a refused quantization changes nothing")
	require.NoError(t, m.Quantize("int8"))
	// Keras names the first layer it meets; so does Go.
	assert.ErrorContains(t, m.Quantize("int8"), kerasMsg("again"))

	// A filter that leaves nothing to quantize; one that picks a layer.
	f, err := goQuantizable()
	require.NoError(t, err)
	defer f.Close()
	assert.ErrorContains(t, f.QuantizeWithOptions("int8", QuantizeOptions{Filter: func(Layer) bool { return false }}), "no layer can be quantized")
	require.NoError(t, f.QuantizeWithOptions("int8", QuantizeOptions{Filter: func(l Layer) bool { return l.Name() == "head" }}))
	for _, l := range f.Layers() {
		if p, ok := l.(interface{ DTypePolicy() mixedprecision.Policy }); ok {
			assert.Equal(t, l.Name() == "head", p.DTypePolicy().QuantizationMode() == "int8", l.Name())
		}
	}

	ln, err := NewFunctional("norm_only", Input(InputSpec{Shape: []int64{4}}), Apply(NewLayerNormalization(LayerNormalizationOptions{Name: "ln"}), Input(InputSpec{Shape: []int64{4}})))
	if err == nil {
		defer ln.Close()
		assert.ErrorContains(t, ln.Quantize("int8"), "no layer can be quantized: Dense, EinsumDense and Embedding can (Layer LayerNormalization does not have a `quantize` method implemented)")
	}
	seq := NewSequential("norm_only", InputSpec{Shape: []int64{4}}, NewLayerNormalization(LayerNormalizationOptions{Name: "ln"}))
	defer seq.Close()
	assert.ErrorContains(t, seq.Quantize("int8"), "no layer can be quantized")

	func() {
		defer mixedprecision.SetGlobalPolicy(mixedprecision.Float32)
		mixedprecision.SetGlobalPolicy(mixedprecision.MixedFloat16)
		half := NewSequential("half", InputSpec{Shape: []int64{4}}, NewDense(2, DenseOptions{Name: "d"}))
		defer half.Close()
		assert.ErrorContains(t, half.Quantize("int8"), "quantization mode='int8' doesn't work well with compute_dtype='float16'")
		// Keras quantizes bfloat16 variables too (numpy in bfloat16); here
		// only float32 ones are.
		mixedprecision.SetGlobalPolicy(mixedprecision.BFloat16)
		bf := NewSequential("bf", InputSpec{Shape: []int64{4}}, NewDense(2, DenseOptions{Name: "d"}))
		defer bf.Close()
		assert.ErrorContains(t, bf.Quantize("int8"), `layer "d" has bfloat16 weights: quantizing float32 weights only is implemented`)
	}()
	var nilModel *Model
	assert.ErrorContains(t, nilModel.Quantize("int8"), "nil Model")

	_, err = LoadKerasModel(filepath.Join(dir, "custom_quantizer.keras"), LoadOptions{})
	assert.ErrorContains(t, err, "quantization_config=")
	assert.ErrorContains(t, err, "is not supported (Int8QuantizationConfig with the default quantizers, or activation_quantizer=None)")

	// Keras 3.15 cannot load its own quantized MultiHeadAttention from a
	// .keras file (it rebuilds the projections float); Go writes what Keras
	// writes, and refuses it on loading as Keras does: the projection's
	// group holds 3 variables (kernel, bias, kernel_scale), the float
	// projection has 2.
	c, err := goClassifier()
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Quantize("int8"))
	require.NoError(t, c.SaveKeras(filepath.Join(dir, "mha.keras")))
	_, err = LoadKerasModel(filepath.Join(dir, "mha.keras"), LoadOptions{})
	assert.ErrorContains(t, err, "_dense/vars holds 3 variables, the layer has 2")
}

// TestOneDNNInt8MatMul: the oneDNN int8 product (unsigned shifted inputs,
// MIN_FIRST) equals the signed int8 × int8 → int32 product of
// BatchMatMulV3 to the bit, at the extremes (every value ±127 at the
// deepest depth it is used for) and on random values.
func TestOneDNNInt8MatMul(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for _, c := range []struct {
		rows, in, out int
		fill          func(i int) int8
	}{
		{3, maxOneDNNDepth, 5, func(int) int8 { return 127 }},
		{3, maxOneDNNDepth, 5, func(i int) int8 { return int8(127 * (1 - 2*(i%2))) }},
		{2, maxOneDNNDepth, 4, func(int) int8 { return -127 }},
		{33, 256, 768, func(int) int8 { return int8(r.Intn(255) - 127) }},
		{1, 1024, 256, func(int) int8 { return int8(r.Intn(255) - 127) }},
	} {
		xs := make([]float32, c.rows*c.in)
		for i := range xs {
			xs[i] = float32(c.fill(i))
		}
		ks := make([]int8, c.in*c.out)
		for i := range ks {
			ks[i] = c.fill(i + 1)
		}
		s := tfgo.NewScope()
		xt, err := tfgo.NewTensorFromBytes(tfgo.Float, []int64{int64(c.rows), int64(c.in)}, float32Bytes(xs))
		require.NoError(t, err)
		kt, err := tfgo.NewTensorFromBytes(tfgo.Int8, []int64{int64(c.in), int64(c.out)}, int8Bytes(ks))
		require.NoError(t, err)
		x, k := tfgo.Const(s, xt), tfgo.Const(s, kt)
		res := run(t, s, nil, oneDNNInt8MatMul(s, x, k, int64(c.out)), tfgo.BatchMatMulV3(s, tfgo.Cast(s, x, tfgo.Int8), k, tfgo.Int32))
		assert.Equal(t, res[1].Data(), res[0].Data(), "%d×%d·%d×%d", c.rows, c.in, c.in, c.out)
	}
}

// TestQuantizedTraining: a quantized model compiles and trains its float
// weights (biases, normalizations) as Keras trains one (the inputs'
// gradient through the dequantized kernel); the int8 kernels and scales
// stay as they are.
func TestQuantizedTraining(t *testing.T) {
	for _, o := range []QuantizeOptions{{}, {WeightOnly: true}} {
		ids := Input(InputSpec{Shape: []int64{8}, DType: tfgo.Int32})
		x := Apply(NewEmbedding(50, 16, EmbeddingOptions{Name: "embedding"}), ids)
		x = Apply(NewDense(32, DenseOptions{Name: "ffn", Activation: "relu"}), x)
		x = Apply(NewLayerNormalization(LayerNormalizationOptions{Name: "ln"}), x)
		x = Apply(NewGlobalAveragePooling1D(GlobalPooling1DOptions{Name: "pool"}), x)
		m, err := NewFunctional("logits", ids, Apply(NewDense(3, DenseOptions{Name: "head"}), x))
		require.NoError(t, err)
		defer m.Close()
		require.NoError(t, m.QuantizeWithOptions("int8", o))
		before, err := m.GetWeights()
		require.NoError(t, err)
		require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}}),
			Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
		r := rand.New(rand.NewSource(6))
		ds := &ArrayDataset[[]int32, int32]{BatchSize: 4}
		for i := 0; i < 8; i++ {
			ids := make([]int32, 8)
			for j := range ids {
				ids[j] = r.Int31n(50)
			}
			ds.X, ds.Y = append(ds.X, ids), append(ds.Y, int32(i%3))
		}
		h, err := m.Fit(context.Background(), ds, FitOptions{Epochs: 3})
		require.NoError(t, err)
		assert.Less(t, h.Epochs[2]["loss"], h.Epochs[0]["loss"], "training lowers the loss")
		after, err := m.GetWeights()
		require.NoError(t, err)
		for i, w := range m.Weights() {
			same := bytes.Equal(before[i].Data(), after[i].Data())
			if w.Trainable() {
				assert.False(t, same, "%s trains", w.Path)
			} else {
				assert.True(t, same, "%s is not trained", w.Path)
			}
		}
	}
}

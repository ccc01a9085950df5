package keraslike

import (
	"fmt"
	"math/rand"
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

// One TransformerBlock (post-LN, as a Sequential) under mixed_bfloat16
// computes what its Keras twin computes on the same float32 inputs.
func TestMixedPrecisionBlockMatchesKeras(t *testing.T) {
	r := rand.New(rand.NewSource(31))
	x := randTensor(t, r, 2, 8, 16)
	var m *Model
	withPolicy(t, "mixed_bfloat16", func() {
		ResetNames()
		m = NewSequential("blk", InputSpec{Shape: []int64{8, 16}}, NewTransformerBlock(16, 2, 64, TransformerBlockOptions{Name: "transformer_block"}))
	})
	defer m.Close()
	require.NoError(t, m.Build())
	randomizeGo(t, m, 5)
	y := logits32(t, m, x)
	ws, err := m.GetWeights()
	require.NoError(t, err)
	in := map[string]*tfgo.Tensor{"x": x}
	for i, w := range ws {
		in[fmt.Sprintf("w%03d", i)] = w
	}
	ref := interop.Python(t, kerasTwins+`
keras.backend.clear_session()
# The worker is shared by the package's tests: the policy goes back to
# float32 however this ends.
keras.mixed_precision.set_global_policy("mixed_bfloat16")
try:
    m = keras.Sequential([keras.Input((8, 16)), TransformerBlock(16, 2, 64, name="transformer_block")], name="blk")
    m.set_weights([inputs[k] for k in sorted(inputs) if k.startswith("w")])
    y = m(inputs["x"], training=False)
    outputs["dtype"] = np.array([y.dtype.name.encode()], dtype=object)
    outputs["y"] = np.asarray(keras.ops.cast(y, "float32"))
finally:
    keras.mixed_precision.set_global_policy("float32")
`, in)
	dt, err := ref["dtype"].Strings()
	require.NoError(t, err)
	assert.Equal(t, string(dt[0]), m.y.DataType().String(), "output dtype")
	// A post-LN block's outputs are normalized (|y| up to ~3): 3 ulps of
	// bfloat16 there is ~0.05, 1.2e-2 of (1 + max).
	samePredictions(t, ref["y"], y, 1.5e-2, "block under mixed_bfloat16")
}

// Under mixed_float16 Compile wraps the optimizer in a LossScaleOptimizer,
// as Keras' compile does, and three training steps give Keras' weights and
// loss scale.
func TestMixedFloat16CompileScalesLossAsKeras(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	x, yv := randTensor(t, r, 16, 4), randTensor(t, r, 16, 2)
	var m *Model
	withPolicy(t, "mixed_float16", func() {
		ResetNames()
		m = NewSequential("mlp", InputSpec{Shape: []int64{4}},
			NewDense(8, DenseOptions{Name: "hidden", Activation: "relu"}), NewDense(2, DenseOptions{Name: "out"}))
	})
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}}), Loss: MeanSquaredError{}}))
	lso, ok := m.Optimizer().(*LossScaleOptimizer)
	require.True(t, ok, "the optimizer is a %T", m.Optimizer())
	randomizeGo(t, m, 9)
	initial, err := m.GetWeights()
	require.NoError(t, err)
	sess, err := m.Session()
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		_, err = sess.Run(map[tfgo.Output]any{m.train.x: x, m.train.yTrue: yv}, nil, m.train.step)
		require.NoError(t, err)
	}
	after, err := m.GetWeights()
	require.NoError(t, err)
	st, err := sess.Run(nil, []tfgo.Output{lso.DynamicScale().Value(), lso.Iterations().Value()})
	require.NoError(t, err)

	in := map[string]*tfgo.Tensor{"x": x, "y": yv}
	for i, w := range initial {
		in[fmt.Sprintf("w%02d", i)] = w
	}
	ref := interop.Python(t, `
import keras
keras.backend.clear_session()
keras.mixed_precision.set_global_policy("mixed_float16")
try:
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="hidden"), keras.layers.Dense(2, name="out")], name="mlp")
    m.set_weights([inputs[k] for k in sorted(inputs) if k.startswith("w")])
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    assert isinstance(m.optimizer, keras.optimizers.LossScaleOptimizer), type(m.optimizer)
    for _ in range(3):
        m.train_on_batch(inputs["x"], inputs["y"])
    for i, v in enumerate(m.get_weights()):
        outputs["w%02d" % i] = v
    outputs["scale"] = np.float32(m.optimizer.dynamic_scale.numpy())
    outputs["iterations"] = np.int64(m.optimizer.iterations.numpy())
finally:
    keras.mixed_precision.set_global_policy("float32")
`, in)
	for i := range after {
		// Three Adam steps of lr 0.01 from float16 gradients: Adam's step
		// is ~lr·g/|g|, so the gradients' float16 rounding (~1e-3 relative)
		// moves each step by ~1e-5.
		allClose(t, "weight "+m.Weights()[i].Path, ref[fmt.Sprintf("w%02d", i)], after[i], 1e-4, 0)
	}
	assert.Equal(t, floats(t, ref["scale"]), floats(t, st[0]), "dynamic scale")
	wantIt, err := tfgo.Int64s(ref["iterations"])
	require.NoError(t, err)
	gotIt, err := tfgo.Int64s(st[1])
	require.NoError(t, err)
	assert.Equal(t, wantIt, gotIt, "iterations")
}

// digammaLayer computes digamma, whose CPU kernels have no bfloat16
// variant in TensorFlow's registry.
type digammaLayer struct{ Base }

func (l *digammaLayer) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(l, inputs)
	if !ok {
		return tfgo.Output{}
	}
	l.Build(ctx)
	return tfgo.Digamma(ctx.Scope.SubScope(l.Name()), x)
}

func (l *digammaLayer) Config() map[string]any { return l.BaseConfig() }

// A policy whose compute dtype some op of a layer has no kernel for is an
// error naming the op (under the layer's name) and the dtype, before any
// run; an unknown policy name in a file is refused naming the layer.
func TestPolicyWithoutKernelsRefused(t *testing.T) {
	var m *Model
	withPolicy(t, "mixed_bfloat16", func() {
		ResetNames()
		m = NewSequential("special", InputSpec{Shape: []int64{3}}, &digammaLayer{Base: NewBase("Digamma", "digamma")})
	})
	defer m.Close()
	_, err := m.Predict([][]float32{{1, 2, 3}})
	require.Error(t, err)
	assert.Regexp(t, `^model "special" \(dtype policy mixed_bfloat16\): op "special/digamma(_\d+)?/Digamma" \(Digamma\) has no CPU kernel for T=bfloat16 \(kernels: .*float32`, err.Error())
	assert.Less(t, len(err.Error()), 300)

	_, err = modelFromJSON([]byte(`{"class_name": "Sequential", "config": {"name": "s", "layers": [
		{"class_name": "InputLayer", "config": {"batch_shape": [null, 3], "dtype": "float32", "name": "in"}},
		{"class_name": "Dense", "config": {"name": "d", "units": 2, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_float17"}, "registered_name": null}}}]}}`), LoadOptions{}, false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"d"`)
	assert.Contains(t, err.Error(), `unknown dtype policy "mixed_float17"`)
}

// Under a mixed policy each float32 weight is read and cast to the compute
// dtype once per pass (the training graph here), whatever the number of
// uses (a layer called twice); LayerNormalization's weights are not cast at all (its statistics
// are computed in float32).
func TestMixedPrecisionCastsOncePerPass(t *testing.T) {
	var m *Model
	withPolicy(t, "mixed_bfloat16", func() {
		ResetNames()
		var err error
		m, err = NewGPT("gpt", GPTConfig{Vocab: 32, SeqLen: 8, DModel: 16, Heads: 2, Layers: 2, Remat: true})
		require.NoError(t, err)
	})
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
	casts := map[string]int{} // by weight path, in the training pass
	for _, w := range m.Weights() {
		casts[w.Path] = 0
		for _, c := range w.Handle().Op.Consumers(0) {
			if c.Op.Type() != "ReadVariableOp" || !strings.HasPrefix(c.Op.Name(), "train/") {
				continue
			}
			for _, cc := range c.Op.Consumers(0) {
				if cc.Op.Type() == "Cast" && !containsPathElem(cc.Op.Name(), "gradients") {
					casts[w.Path]++
				}
			}
		}
	}
	// A layer called twice (shared weights) still casts its kernel once.
	var shared *Model
	withPolicy(t, "mixed_bfloat16", func() {
		ResetNames()
		in := Input(InputSpec{Shape: []int64{6}})
		d := NewDense(6, DenseOptions{Name: "shared", Activation: "tanh"})
		var err error
		shared, err = NewFunctional("twice", in, Apply(d, Apply(d, in)))
		require.NoError(t, err)
	})
	defer shared.Close()
	require.NoError(t, shared.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{}), Loss: MeanSquaredError{}}))
	for _, w := range shared.Weights() {
		casts[w.Path] = 0
		for _, c := range w.Handle().Op.Consumers(0) {
			if c.Op.Type() == "ReadVariableOp" && strings.HasPrefix(c.Op.Name(), "train/") {
				for _, cc := range c.Op.Consumers(0) {
					if cc.Op.Type() == "Cast" {
						casts[w.Path]++
					}
				}
			}
		}
	}
	require.Contains(t, casts, "shared/kernel")
	for path, n := range casts {
		want := 1
		if strings.Contains(path, "layer_normalization") {
			want = 0
		}
		if strings.HasSuffix(path, "token_embedding/embeddings") {
			want = 0 // gathered by handle, the rows cast after the gather
		}
		assert.Equal(t, want, n, "casts of %s in the training pass", path)
	}
}

// A GPT's train step under mixed_bfloat16 peaks well below float32's in
// TensorFlow's allocator: the activations are kept in bfloat16, and the
// float32 statistics of LayerNormalization and the float32 attention
// softmax are recomputed in the backward pass rather than kept.
func TestMixedBFloat16LowersStepPeak(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a GPT twice")
	}
	c := GPTConfig{Vocab: 128, SeqLen: 64, DModel: 64, Heads: 4, Layers: 4, Float32Logits: true}
	peak := func(policy string) int64 {
		var m *Model
		var feeds map[tfgo.Output]any
		withPolicy(t, policy, func() { m, feeds = rematGPT(t, c, 8) })
		sess, err := m.Session()
		require.NoError(t, err)
		_, mem, err := sess.RunWithMemory(feeds, nil, m.train.step)
		require.NoError(t, err)
		return mem.PeakBytes
	}
	f32, bf16 := peak("float32"), peak("mixed_bfloat16")
	t.Logf("train step peak: float32 %d bytes, mixed_bfloat16 %d (%.0f%% lower)", f32, bf16, 100*(1-float64(bf16)/float64(f32)))
	assert.Less(t, float64(bf16), 0.7*float64(f32))
}

// The Activation("softmax", dtype="float32") idiom: the last layer of a
// mixed_bfloat16 model computes in float32, its output is float32, and the
// .keras file says so to Keras, which computes the same probabilities.
func TestFloat32OutputIdiom(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewSource(12))
	x := randTensor(t, r, 5, 6)
	var m *Model
	withPolicy(t, "mixed_bfloat16", func() {
		ResetNames()
		act := NewActivation("softmax", ActivationOptions{Name: "probs"})
		act.SetDTypePolicy(mixedprecision.Float32)
		m = NewSequential("clf", InputSpec{Shape: []int64{6}}, NewDense(4, DenseOptions{Name: "logits"}), act)
	})
	defer m.Close()
	require.NoError(t, m.Build())
	randomizeGo(t, m, 2)
	y, err := m.Predict(x)
	require.NoError(t, err)
	assert.Equal(t, tfgo.Float, y.DataType(), "the model's output")
	assert.Contains(t, m.Summary(), "Dtype policy: mixed_bfloat16 (float32: probs)")
	require.NoError(t, m.SaveKeras(filepath.Join(dir, "clf.keras")))
	ref := interop.Python(t, `
import os, keras
m = keras.models.load_model(os.path.join(inputs["dir"].item().decode(), "clf.keras"))
outputs["policies"] = np.array([(l.name + "=" + l.dtype_policy.name).encode() for l in m.layers], dtype=object)
y = m(inputs["x"])
outputs["dtype"] = np.array([y.dtype.name.encode()], dtype=object)
outputs["y"] = np.asarray(y)
`, map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "x": x})
	pol, err := ref["policies"].Strings()
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("logits=mixed_bfloat16"), []byte("probs=float32")}, pol)
	dt, err := ref["dtype"].Strings()
	require.NoError(t, err)
	assert.Equal(t, "float32", string(dt[0]))
	// Probabilities from bfloat16 logits: within a few bfloat16 ulps.
	samePredictions(t, ref["y"], y, 1e-2, "float32 softmax after bfloat16 logits")
}

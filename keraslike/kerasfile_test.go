package keraslike

import (
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Python twins of keraslike's TransformerBlock and PositionalEmbedding
// as custom Keras classes (config keys as Go's Config; sublayers tracked as
// attributes named as the Go block's sublayers), and the two test models.
const kerasTwins = `
import keras
class PositionalEmbedding(keras.layers.Layer):
    def __init__(self, sequence_length, output_dim, **kw):
        super().__init__(**kw)
        self.sequence_length, self.output_dim = sequence_length, output_dim
    def build(self, shape):
        self.embeddings = self.add_weight(shape=(self.sequence_length, self.output_dim), name="embeddings")
    def call(self, x):
        return x + keras.ops.cast(self.embeddings[None, :keras.ops.shape(x)[1]], x.dtype)
    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length, "output_dim": self.output_dim}
class TransformerBlock(keras.layers.Layer):
    def __init__(self, d_model, num_heads, ff_dim, key_dim=None, dropout=0.0, epsilon=1e-6,
                 pre_ln=False, activation="gelu", causal=True, seed=None, **kw):
        super().__init__(**kw)
        # Sublayers take the block's policy, as Keras' own composites do.
        self.d_model, self.num_heads, self.ff_dim = d_model, num_heads, ff_dim
        self.key_dim = key_dim or d_model // num_heads
        self.rate, self.epsilon, self.pre_ln = dropout, epsilon, pre_ln
        self.activation, self.causal, self.seed = activation, causal, seed
        self.multi_head_attention = keras.layers.MultiHeadAttention(num_heads, self.key_dim, dropout=dropout, name="multi_head_attention", dtype=self.dtype_policy)
        self.layer_normalization = keras.layers.LayerNormalization(epsilon=epsilon, name="layer_normalization", dtype=self.dtype_policy)
        self.layer_normalization_1 = keras.layers.LayerNormalization(epsilon=epsilon, name="layer_normalization_1", dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(ff_dim, activation=activation, name="dense", dtype=self.dtype_policy)
        self.dense_1 = keras.layers.Dense(d_model, name="dense_1", dtype=self.dtype_policy)
        self.dropout = keras.layers.Dropout(dropout, name="dropout", dtype=self.dtype_policy)
        self.dropout_1 = keras.layers.Dropout(dropout, name="dropout_1", dtype=self.dtype_policy)
    def call(self, x, training=None):
        attend = lambda h: self.multi_head_attention(h, h, use_causal_mask=self.causal, training=training)
        ffn = lambda h: self.dense_1(self.dense(h))
        if self.pre_ln:
            x = x + self.dropout(attend(self.layer_normalization(x)), training=training)
            return x + self.dropout_1(ffn(self.layer_normalization_1(x)), training=training)
        x = self.layer_normalization(x + self.dropout(attend(x), training=training))
        return self.layer_normalization_1(x + self.dropout_1(ffn(x), training=training))
    def get_config(self):
        return {**super().get_config(), "d_model": self.d_model, "num_heads": self.num_heads,
                "ff_dim": self.ff_dim, "key_dim": self.key_dim, "dropout": self.rate,
                "epsilon": self.epsilon, "pre_ln": self.pre_ln, "activation": self.activation,
                "causal": self.causal, "seed": self.seed}
custom_objects = {"TransformerBlock": TransformerBlock, "PositionalEmbedding": PositionalEmbedding}

def classifier(ff=32):
    ids = keras.Input((8,), dtype="int32", name="ids")
    x = keras.layers.Embedding(50, 16, name="embedding")(ids)
    a = keras.layers.MultiHeadAttention(2, 8, name="mha")(x, x)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="ln_1")(keras.layers.Add(name="add_1")([x, a]))
    f = keras.layers.Dense(ff, activation="relu", name="ffn_1")(x)
    f = keras.layers.Dense(16, name="ffn_2")(f)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="ln_2")(keras.layers.Add(name="add_2")([x, f]))
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    x = keras.layers.Dropout(0.1, name="drop")(x)
    return keras.Model(ids, keras.layers.Dense(3, activation="softmax", name="head")(x), name="classifier")

def gpt(pre_ln=False):
    ids = keras.Input((8,), dtype="int32")
    x = keras.layers.Embedding(256, 16, name="token_embedding")(ids)
    x = PositionalEmbedding(8, 16, name="position_embedding")(x)
    for i in range(2):
        x = TransformerBlock(16, 2, 64, pre_ln=pre_ln, name="block_%d" % i)(x)
    return keras.Model(ids, keras.layers.Dense(256, name="lm_head")(x), name="gpt")

def causal():
    ids = keras.Input((8,), dtype="int32")
    x = keras.layers.Embedding(50, 16, name="embedding")(ids)
    a = keras.layers.MultiHeadAttention(4, 4, name="self_attention")(x, x, use_causal_mask=True)
    x = keras.layers.Activation("gelu", name="act")(keras.layers.Add(name="residual")([x, a]))
    x = keras.layers.Flatten(name="flat")(x)
    return keras.Model(ids, keras.layers.Dense(5, name="out")(x), name="causal")

def randomize(m, seed):
    rng = np.random.default_rng(seed)
    m.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in m.get_weights()])
`

// goClassifier is the classifier above, built in Go.
func goClassifier() (*Model, error) {
	ids := Input(InputSpec{Shape: []int64{8}, DType: tfgo.Int32, Name: "ids"})
	x := Apply(NewEmbedding(50, 16, EmbeddingOptions{Name: "embedding"}), ids)
	a := Apply(NewMultiHeadAttention(2, 8, MultiHeadAttentionOptions{Name: "mha"}), x, x)
	x = Apply(NewLayerNormalization(LayerNormalizationOptions{Name: "ln_1", Epsilon: 1e-6}), Apply(NewAdd(AddOptions{Name: "add_1"}), x, a))
	f := Apply(NewDense(32, DenseOptions{Name: "ffn_1", Activation: "relu"}), x)
	f = Apply(NewDense(16, DenseOptions{Name: "ffn_2"}), f)
	x = Apply(NewLayerNormalization(LayerNormalizationOptions{Name: "ln_2", Epsilon: 1e-6}), Apply(NewAdd(AddOptions{Name: "add_2"}), x, f))
	x = Apply(NewGlobalAveragePooling1D(GlobalPooling1DOptions{Name: "pool"}), x)
	x = Apply(NewDropout(0.1, DropoutOptions{Name: "drop"}), x)
	return NewFunctional("classifier", ids, Apply(NewDense(3, DenseOptions{Name: "head", Activation: "softmax"}), x))
}

// goGPT is the GPT above, built in Go as a functional graph.
func goGPT(preLN bool) (*Model, error) {
	ids := Input(InputSpec{Shape: []int64{8}, DType: tfgo.Int32})
	x := Apply(NewEmbedding(256, 16, EmbeddingOptions{Name: "token_embedding"}), ids)
	x = Apply(NewPositionalEmbedding(8, 16, PositionalEmbeddingOptions{Name: "position_embedding"}), x)
	for _, n := range []string{"block_0", "block_1"} {
		x = Apply(NewTransformerBlock(16, 2, 64, TransformerBlockOptions{Name: n, PreLN: preLN}), x)
	}
	return NewFunctional("gpt", ids, Apply(NewDense(256, DenseOptions{Name: "lm_head"}), x))
}

// goCausal is causal() above: a keyword argument in a functional node.
func goCausal() (*Model, error) {
	ids := Input(InputSpec{Shape: []int64{8}, DType: tfgo.Int32})
	x := Apply(NewEmbedding(50, 16, EmbeddingOptions{Name: "embedding"}), ids)
	a := ApplyKw(NewMultiHeadAttention(4, 4, MultiHeadAttentionOptions{Name: "self_attention"}), []any{x, x}, map[string]any{"use_causal_mask": true})
	x = Apply(NewActivation("gelu", ActivationOptions{Name: "act"}), Apply(NewAdd(AddOptions{Name: "residual"}), x, a))
	x = Apply(NewFlatten(FlattenOptions{Name: "flat"}), x)
	return NewFunctional("causal", ids, Apply(NewDense(5, DenseOptions{Name: "out"}), x))
}

func strTensor(t *testing.T, s string) *tfgo.Tensor {
	tn, err := tfgo.NewStringTensor(nil, [][]byte{[]byte(s)})
	require.NoError(t, err)
	return tn
}

func randIDs(t *testing.T, seed int64, vocab int32) *tfgo.Tensor {
	r := rand.New(rand.NewSource(seed))
	ids := make([][]int32, 4)
	for i := range ids {
		ids[i] = make([]int32, 8)
		for j := range ids[i] {
			ids[i][j] = r.Int31n(vocab)
		}
	}
	tn, err := tfgo.NewTensor(ids)
	require.NoError(t, err)
	return tn
}

func predict(t *testing.T, m *Model, x *tfgo.Tensor) *tfgo.Tensor {
	t.Helper()
	y, err := m.Predict(x)
	require.NoError(t, err)
	return y
}

// randomizeGo sets every weight of m to N(0, 0.3) draws (Go's initial
// LayerNormalization and bias values, ones and zeros, would hide
// differences in how the two sides apply them).
func randomizeGo(t *testing.T, m *Model, seed int64) {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	var vals []*tfgo.Tensor
	for _, w := range m.Weights() {
		v := randTensor(t, r, w.Shape()...)
		f := floats(t, v)
		for i := range f {
			f[i] *= 0.3
		}
		s, err := tfgo.NewTensor(f)
		require.NoError(t, err)
		v, err = tfgo.NewTensorFromBytes(tfgo.Float, w.Shape(), s.Data())
		require.NoError(t, err)
		vals = append(vals, v)
	}
	require.NoError(t, m.SetWeights(vals))
}

// samePredictions checks |want - got| <= tol·(1 + max |want|) at every
// element, with equal shapes and no NaN.
func samePredictions(t *testing.T, want, got *tfgo.Tensor, tol float64, what string) {
	t.Helper()
	allCloseTol(t, what, want, got, testutil.Tol{Atol: tol, Scaled: tol})
}

// roundTrips checks one model both ways: Python .keras, .weights.h5 and
// legacy .h5 read by Go; Go's .keras, .weights.h5 and legacy-layout
// weights read by Python; predictions equal within tol.
func roundTrips(t *testing.T, pyModel string, build func() (*Model, error), vocab int32, tol float64) {
	dir := t.TempDir()
	x := randIDs(t, 5, vocab)
	in := map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "x": x}

	// Python writes.
	ref := interop.Python(t, kerasTwins+`
import os
d = inputs["dir"].item().decode()
keras.backend.clear_session()
m = `+pyModel+`
randomize(m, 7)
m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")  # the files then hold optimizer state too
outputs["y"] = m.predict(inputs["x"], verbose=0)
m.save(os.path.join(d, "py.keras"))
m.save_weights(os.path.join(d, "py.weights.h5"))
m.save(os.path.join(d, "py.h5"))
`, in)

	t.Run("python .keras to Go", func(t *testing.T) {
		m, err := LoadKerasModel(filepath.Join(dir, "py.keras"), LoadOptions{})
		require.NoError(t, err)
		defer m.Close()
		samePredictions(t, ref["y"], predict(t, m, x), tol, ".keras")
	})
	t.Run("python legacy .h5 to Go", func(t *testing.T) {
		m, err := LoadKerasModel(filepath.Join(dir, "py.h5"), LoadOptions{})
		require.NoError(t, err)
		defer m.Close()
		samePredictions(t, ref["y"], predict(t, m, x), tol, "legacy .h5")
		// The weights alone, into a model built in Go.
		g, err := build()
		require.NoError(t, err)
		defer g.Close()
		require.NoError(t, g.LoadWeightsLegacyH5(filepath.Join(dir, "py.h5")))
		samePredictions(t, ref["y"], predict(t, g, x), tol, "legacy .h5 weights")
	})
	t.Run("python .weights.h5 to Go", func(t *testing.T) {
		m, err := build()
		require.NoError(t, err)
		defer m.Close()
		require.NoError(t, m.LoadWeightsH5(filepath.Join(dir, "py.weights.h5")))
		samePredictions(t, ref["y"], predict(t, m, x), tol, ".weights.h5")
	})

	// Go writes: a model built in Go with Go's initial weights.
	m, err := build()
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Build())
	randomizeGo(t, m, 11)
	yGo := predict(t, m, x)
	require.NoError(t, m.SaveKeras(filepath.Join(dir, "go.keras")))
	require.NoError(t, m.SaveWeightsH5(filepath.Join(dir, "go.weights.h5")))
	require.NoError(t, m.SaveWeightsLegacyH5(filepath.Join(dir, "go_legacy.h5")))
	out := interop.Python(t, kerasTwins+`
import os
d = inputs["dir"].item().decode()
keras.backend.clear_session()
m = keras.models.load_model(os.path.join(d, "go.keras"), custom_objects=custom_objects)
outputs["keras"] = m.predict(inputs["x"], verbose=0)
keras.backend.clear_session()
m = `+pyModel+`
m.load_weights(os.path.join(d, "go.weights.h5"))
outputs["weights"] = m.predict(inputs["x"], verbose=0)
keras.backend.clear_session()
m = `+pyModel+`
m.load_weights(os.path.join(d, "go_legacy.h5"))
outputs["legacy"] = m.predict(inputs["x"], verbose=0)
`, in)
	samePredictions(t, yGo, out["keras"], tol, "Go .keras in Python")
	samePredictions(t, yGo, out["weights"], tol, "Go .weights.h5 in Python")
	samePredictions(t, yGo, out["legacy"], tol, "Go legacy-layout weights in Python")

	// Go reads back what Go wrote.
	back, err := LoadKerasModel(filepath.Join(dir, "go.keras"), LoadOptions{})
	require.NoError(t, err)
	defer back.Close()
	samePredictions(t, yGo, predict(t, back, x), 0, "Go .keras in Go")
}

func TestKerasFilesTransformerClassifier(t *testing.T) {
	roundTrips(t, "classifier()", goClassifier, 50, 1e-6)
}

func TestKerasFilesCausalAttention(t *testing.T) {
	roundTrips(t, "causal()", goCausal, 50, 1e-6)
}

// Graphs that are not models are errors, not panics.
func TestFunctionalGraphErrors(t *testing.T) {
	in := Input(InputSpec{Shape: []int64{4}})
	_, err := NewFunctional("m", in, in)
	assert.ErrorContains(t, err, "no layers")
	_, err = NewFunctional("m", in, Apply(NewDense(2, DenseOptions{Name: "d"}), Input(InputSpec{Shape: []int64{4}})))
	assert.ErrorContains(t, err, "second keraslike.Input")
	d := NewDense(2, DenseOptions{Name: "same"})
	_, err = NewFunctional("m", in, Apply(NewDense(2, DenseOptions{Name: "same"}), Apply(d, in)))
	assert.ErrorContains(t, err, `two layers are named "same"`)
	_, err = NewFunctional("m", in, ApplyKw(nil, []any{in}, nil))
	assert.Error(t, err)
	m, err := NewFunctional("m", in, ApplyKw(NewDense(2, DenseOptions{Name: "k"}), []any{in}, map[string]any{"bogus": true}))
	require.NoError(t, err)
	err = m.Build()
	assert.ErrorContains(t, err, "bogus")
}

func TestKerasFilesGPT(t *testing.T) {
	roundTrips(t, "gpt()", func() (*Model, error) { return goGPT(false) }, 256, 1e-6)
}

func TestKerasFilesPreLNGPT(t *testing.T) {
	roundTrips(t, "gpt(pre_ln=True)", func() (*Model, error) { return goGPT(true) }, 256, 1e-6)
}

// A Sequential model both ways, and NewGPT (a Go forward function): its
// weights go to Python's functional twin, but not a .keras config.
func TestKerasFilesSequentialAndClosureModels(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewSource(3))
	x := randTensor(t, r, 5, 4)
	seq := NewSequential("seqm", InputSpec{Shape: []int64{4}},
		NewDense(8, DenseOptions{Name: "d1", Activation: "tanh"}),
		NewLayerNormalization(LayerNormalizationOptions{Name: "ln"}),
		NewDense(2, DenseOptions{Name: "d2"}))
	defer seq.Close()
	require.NoError(t, seq.Build())
	randomizeGo(t, seq, 12)
	y := predict(t, seq, x)
	require.NoError(t, seq.SaveKeras(filepath.Join(dir, "seq.keras")))
	require.NoError(t, seq.SaveWeightsH5(filepath.Join(dir, "seq.weights.h5")))
	require.NoError(t, seq.SaveWeightsLegacyH5(filepath.Join(dir, "seq.h5")))

	gpt, err := NewGPT("gpt", GPTConfig{SeqLen: 8, DModel: 16, Heads: 2, Layers: 2, FFDim: 64})
	require.NoError(t, err)
	defer gpt.Close()
	require.NoError(t, gpt.Build())
	randomizeGo(t, gpt, 13)
	ids := randIDs(t, 9, 256)
	yGPT := predict(t, gpt, ids)
	require.NoError(t, gpt.SaveKeras(filepath.Join(dir, "gpt.keras")))
	require.NoError(t, gpt.SaveWeightsH5(filepath.Join(dir, "gpt.weights.h5")))

	out := interop.Python(t, kerasTwins+`
import os
d = inputs["dir"].item().decode()
keras.backend.clear_session()
m = keras.models.load_model(os.path.join(d, "seq.keras"))
outputs["keras"] = m.predict(inputs["x"], verbose=0)
def seq():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh", name="d1"),
        keras.layers.LayerNormalization(name="ln"), keras.layers.Dense(2, name="d2")], name="seqm")
m = seq(); m.load_weights(os.path.join(d, "seq.weights.h5"))
outputs["weights"] = m.predict(inputs["x"], verbose=0)
m = seq(); m.load_weights(os.path.join(d, "seq.h5"))
outputs["legacy"] = m.predict(inputs["x"], verbose=0)
# Seeded random weights: with uniform ones a loader that permuted or skipped weights would pass.
rng = np.random.default_rng(12)
m = seq(); m.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in m.get_weights()])
m.save_weights(os.path.join(d, "py_seq.weights.h5"))
m.save(os.path.join(d, "py_seq.h5"))
outputs["py_seq"] = m.predict(inputs["x"], verbose=0)
keras.backend.clear_session()
g = gpt()
g.load_weights(os.path.join(d, "gpt.weights.h5"))
outputs["gpt"] = g.predict(inputs["ids"], verbose=0)
g = keras.models.load_model(os.path.join(d, "gpt.keras"), custom_objects=custom_objects)
outputs["gpt_keras"] = g.predict(inputs["ids"], verbose=0)
`, map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "x": x, "ids": ids})
	samePredictions(t, y, out["keras"], 1e-6, "Go Sequential .keras in Python")
	samePredictions(t, y, out["weights"], 1e-6, "Go Sequential .weights.h5 in Python")
	samePredictions(t, y, out["legacy"], 1e-6, "Go Sequential legacy weights in Python")
	samePredictions(t, yGPT, out["gpt"], 1e-6, "NewGPT .weights.h5 in Python's functional twin")
	samePredictions(t, yGPT, out["gpt_keras"], 1e-6, "NewGPT .keras in Python's load_model")

	require.NoError(t, seq.LoadWeightsH5(filepath.Join(dir, "py_seq.weights.h5")))
	samePredictions(t, out["py_seq"], predict(t, seq, x), 1e-6, "Python Sequential .weights.h5 in Go")
	m, err := LoadKerasModel(filepath.Join(dir, "py_seq.h5"), LoadOptions{})
	require.NoError(t, err)
	defer m.Close()
	samePredictions(t, out["py_seq"], predict(t, m, x), 1e-6, "Python Sequential legacy .h5 in Go")
}

// Files that must be refused: clear errors naming the layer, no crash.
func TestKerasFilesRefused(t *testing.T) {
	dir := t.TempDir()
	lx := randTensor(t, rand.New(rand.NewSource(6)), 3, 4)
	ref := interop.Python(t, kerasTwins+`
import os
d = inputs["dir"].item().decode()
keras.backend.clear_session()
x = keras.Input((4,))
y = keras.layers.Lambda(lambda v: v * 2.0, name="doubler")(keras.layers.Dense(3, name="dense")(x))
lam = keras.Model(x, y)
lam.set_weights([np.random.default_rng(5).normal(0, 0.5, w.shape).astype("float32") for w in lam.get_weights()])
lam.save(os.path.join(d, "lambda.keras"))
outputs["lambda_y"] = lam(inputs["lx"])
class MyScale(keras.layers.Layer):
    def call(self, v):
        return v * 3.0
x = keras.Input((4,))
keras.Model(x, MyScale(name="scaler")(x)).save(os.path.join(d, "custom.keras"))
m = classifier()
m.save(os.path.join(d, "clf.h5"))
m.save_weights(os.path.join(d, "clf.weights.h5"))
# A classifier whose first feed-forward layer is wider than the Go model's.
m = classifier(ff=40)
m.save_weights(os.path.join(d, "wide.weights.h5"))
m.save(os.path.join(d, "wide.h5"))
`, map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "lx": lx})

	_, err := LoadKerasModel(filepath.Join(dir, "lambda.keras"), LoadOptions{})
	require.Error(t, err)
	t.Log(err)
	assert.Contains(t, err.Error(), `layer "doubler" (class Lambda`)
	assert.Contains(t, err.Error(), "RegisterLayer")

	// With a Go implementation registered for this load, it loads.
	double := func(c map[string]any) (Layer, error) {
		name, _ := c["name"].(string)
		return &goLambda{Base: NewBase("Lambda", name), f: func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
			return tfgo.Mul(s, x, tfgo.Const(s, float32(2)))
		}}, nil
	}
	m, err := LoadKerasModel(filepath.Join(dir, "lambda.keras"), LoadOptions{CustomLayers: map[string]LayerFactory{"Lambda": double}})
	require.NoError(t, err)
	got, err := m.Predict(lx)
	require.NoError(t, err)
	allCloseTol(t, "the Go Lambda's model", ref["lambda_y"], got, kerasTol) // Keras' v * 2.0 after its Dense
	m.Close()

	_, err = LoadKerasModel(filepath.Join(dir, "custom.keras"), LoadOptions{})
	require.Error(t, err)
	t.Log(err)
	assert.Contains(t, err.Error(), `layer "scaler" (class MyScale`)
	assert.Contains(t, err.Error(), "unknown class")

	// Truncated files: the legacy model and a weights file.
	for _, name := range []string{"clf.h5", "clf.weights.h5"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		for _, frac := range []float64{0.1, 0.5, 0.9} {
			p := filepath.Join(dir, "trunc_"+name)
			require.NoError(t, os.WriteFile(p, data[:int(float64(len(data))*frac)], 0o644))
			if strings.HasSuffix(name, ".weights.h5") {
				g, err := goClassifier()
				require.NoError(t, err)
				err = g.LoadWeightsH5(p)
				g.Close()
				require.Error(t, err)
				t.Logf("%.0f%% of %s: %v", 100*frac, name, err)
				assert.Contains(t, err.Error(), p)
				continue
			}
			_, err = LoadKerasModel(p, LoadOptions{})
			require.Error(t, err)
			t.Logf("%.0f%% of %s: %v", 100*frac, name, err)
			assert.Contains(t, err.Error(), p)
		}
	}
	// A truncated .keras archive.
	data, err := os.ReadFile(filepath.Join(dir, "lambda.keras"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "trunc.keras"), data[:len(data)/2], 0o644))
	_, err = LoadKerasModel(filepath.Join(dir, "trunc.keras"), LoadOptions{})
	require.Error(t, err)
	t.Log(err)

	// A dataset whose shape disagrees with the layer's weight.
	g, err := goClassifier()
	require.NoError(t, err)
	defer g.Close()
	err = g.LoadWeightsH5(filepath.Join(dir, "wide.weights.h5"))
	require.Error(t, err)
	t.Log(err)
	assert.Contains(t, err.Error(), `layer "ffn_1" (Dense)`)
	assert.Contains(t, err.Error(), "ffn_1/kernel")
	assert.Contains(t, err.Error(), "[16 40]")
	// The same in the legacy layout.
	err = g.LoadWeightsLegacyH5(filepath.Join(dir, "wide.h5"))
	require.Error(t, err)
	t.Log(err)
	assert.Contains(t, err.Error(), `layer "ffn_1" (Dense)`)
	assert.Contains(t, err.Error(), "ffn_1/kernel")
	assert.Contains(t, err.Error(), "[16 40]")
	// A Keras 3 weights file is not a legacy one.
	err = g.LoadWeightsLegacyH5(filepath.Join(dir, "clf.weights.h5"))
	require.Error(t, err)
	t.Log(err)
}

// goLambda is a test stand-in for a Lambda layer implemented in Go.
type goLambda struct {
	Base
	f func(*tfgo.Scope, tfgo.Output) tfgo.Output
}

func (l *goLambda) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	l.Build(ctx)
	return l.f(ctx.Scope.SubScope(l.name), inputs[0])
}

func (l *goLambda) Config() map[string]any { return l.BaseConfig() }

// Keras' snake_case of class names, which names .weights.h5 groups.
func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"Dense": "dense", "MultiHeadAttention": "multi_head_attention", "InputLayer": "input_layer",
		"GlobalAveragePooling1D": "global_average_pooling1d", "LayerNormalization": "layer_normalization",
		"TransformerBlock": "transformer_block", "EinsumDense": "einsum_dense", "HTTPLayer": "http_layer",
	} {
		assert.Equal(t, want, toSnakeCase(in), in)
	}
}

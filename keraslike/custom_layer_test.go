package keraslike_test

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/keraslike"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scaledResidualDense is a layer written outside keraslike with its
// exported API only:
//
//	y = norm(x + gain * activation(x·kernel + bias))
//
// with its own weights "kernel" [d, d], "bias" [d] and "gain" [d], and a
// LayerNormalization sublayer kept as the attribute "norm" (its weights
// "<name>/norm/gamma" and "<name>/norm/beta"), as its Python twin below.
type scaledResidualDense struct {
	keraslike.Base
	activation         string // "tanh" or "linear"
	epsilon            float64
	kernel, bias, gain *keraslike.Weight
	norm               *keraslike.LayerNormalization
}

func newScaledResidualDense(name, activation string, epsilon float64) *scaledResidualDense {
	return &scaledResidualDense{
		Base:       keraslike.NewBase("ScaledResidualDense", name),
		activation: activation,
		epsilon:    epsilon,
		norm:       keraslike.NewLayerNormalization(keraslike.LayerNormalizationOptions{Name: "norm", Epsilon: epsilon}),
	}
}

func (l *scaledResidualDense) Call(ctx *keraslike.Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(l, inputs)
	if !ok {
		return tfgo.Output{}
	}
	sh, err := x.Shape()
	if err != nil || sh.Rank() != 2 || sh.Dims[1] < 0 || x.DataType() != tfgo.Float {
		ctx.Fail(l, "needs float32 inputs [batch, features], got %s %v", x.DataType(), sh)
		return tfgo.Output{}
	}
	if l.activation != "tanh" && l.activation != "linear" {
		ctx.Fail(l, "activation %q is not supported (tanh, linear)", l.activation)
		return tfgo.Output{}
	}
	d := sh.Dims[1]
	if l.Build(ctx) {
		l.kernel = l.AddWeight("kernel", tfgo.Float, []int64{d, d}, tfgo.GlorotUniform(17), true)
		l.bias = l.AddWeight("bias", tfgo.Float, []int64{d}, tfgo.Zeros(), true)
		l.gain = l.AddWeight("gain", tfgo.Float, []int64{d}, tfgo.Ones(), true)
		l.Track(l.norm) // its weights follow ours in Weights, once it is built
	}
	s := ctx.Scope.SubScope(l.Name())
	h := tfgo.BiasAdd(s, tfgo.MatMul(s, x, l.kernel.Read(s)), l.bias.Read(s))
	if l.activation == "tanh" {
		h = tfgo.Tanh(s, h)
	}
	sctx := l.SublayerContext(ctx)
	sctx.Scope = s
	return l.norm.Call(sctx, tfgo.AddV2(s, x, tfgo.Mul(s, l.gain.Read(s), h)))
}

func (l *scaledResidualDense) Config() map[string]any {
	c := l.BaseConfig()
	c["activation"] = l.activation
	c["epsilon"] = l.epsilon
	return c
}

// KerasSublayers names the sublayer as the Python twin's attribute.
func (l *scaledResidualDense) KerasSublayers() map[string]keraslike.Layer {
	return map[string]keraslike.Layer{"norm": l.norm}
}

// scaledResidualDenseFromConfig is the layer's from_config.
func scaledResidualDenseFromConfig(c map[string]any) (keraslike.Layer, error) {
	name, _ := c["name"].(string)
	act, ok := c["activation"].(string)
	if !ok {
		return nil, fmt.Errorf("activation: want a string, got %v", c["activation"])
	}
	eps, ok := c["epsilon"].(float64)
	if !ok || !(eps > 0) {
		return nil, fmt.Errorf("epsilon: want a positive number, got %v", c["epsilon"])
	}
	return newScaledResidualDense(name, act, eps), nil
}

// The Python twin of scaledResidualDense and of the model.
const customTwin = `
import os
import keras
class ScaledResidualDense(keras.layers.Layer):
    def __init__(self, activation="tanh", epsilon=1e-3, **kw):
        super().__init__(**kw)
        self.activation, self.epsilon = activation, epsilon
        self.norm = keras.layers.LayerNormalization(epsilon=epsilon, name="norm")
    def build(self, shape):
        d = shape[-1]
        self.kernel = self.add_weight(shape=(d, d), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(d,), initializer="zeros", name="bias")
        self.gain = self.add_weight(shape=(d,), initializer="ones", name="gain")
        self.norm.build(shape)
    def call(self, x):
        h = keras.activations.get(self.activation)(keras.ops.matmul(x, self.kernel) + self.bias)
        return self.norm(x + self.gain * h)
    def get_config(self):
        return {**super().get_config(), "activation": self.activation, "epsilon": self.epsilon}
custom_objects = {"ScaledResidualDense": ScaledResidualDense}
def custom_model():
    x = keras.Input((6,))
    h = keras.layers.Dense(8, activation="relu", name="proj")(x)
    h = ScaledResidualDense(activation="tanh", epsilon=1e-3, name="res")(h)
    return keras.Model(x, keras.layers.Dense(2, name="head")(h), name="custom")
d = inputs["dir"].item().decode()
keras.backend.clear_session()
`

// customModel is custom_model() above, built in Go.
func customModel() (*keraslike.Model, error) {
	x := keraslike.Input(keraslike.InputSpec{Shape: []int64{6}})
	h := keraslike.Apply(keraslike.NewDense(8, keraslike.DenseOptions{Name: "proj", Activation: "relu"}), x)
	h = keraslike.Apply(newScaledResidualDense("res", "tanh", 1e-3), h)
	return keraslike.NewFunctional("custom", x, keraslike.Apply(keraslike.NewDense(2, keraslike.DenseOptions{Name: "head"}), h))
}

// regressionData is n examples of 6 features with 2 targets a small
// network can learn.
func regressionData(r *rand.Rand, n int) ([][]float32, [][]float32) {
	x, y := make([][]float32, n), make([][]float32, n)
	for i := range x {
		x[i] = make([]float32, 6)
		for j := range x[i] {
			x[i][j] = float32(r.NormFloat64())
		}
		y[i] = []float32{0.5 * (x[i][0] + x[i][1] - x[i][2]), float32(math.Tanh(float64(x[i][3]))) - 0.3*x[i][4]}
	}
	return x, y
}

func mustTensor(t *testing.T, v any) *tfgo.Tensor {
	t.Helper()
	tn, err := tfgo.NewTensor(v)
	require.NoError(t, err)
	return tn
}

func mustPredict(t *testing.T, m *keraslike.Model, x *tfgo.Tensor) *tfgo.Tensor {
	t.Helper()
	y, err := m.Predict(x)
	require.NoError(t, err)
	return y
}

// maxDiff is max |a - b| over two tensors of one shape, and max |a|.
func maxDiff(t *testing.T, a, b *tfgo.Tensor) (d, scale float64) {
	t.Helper()
	require.Equal(t, a.Shape(), b.Shape())
	fa, err := tfgo.Float32s(a)
	require.NoError(t, err)
	fb, err := tfgo.Float32s(b)
	require.NoError(t, err)
	for i := range fa {
		d = math.Max(d, math.Abs(float64(fa[i])-float64(fb[i])))
		scale = math.Max(scale, math.Abs(float64(fa[i])))
	}
	return d, scale
}

// same checks |want - got| <= tol·(1 + max |want|) at every element, with
// equal shapes and no NaN.
func same(t *testing.T, want, got *tfgo.Tensor, tol float64, what string) {
	t.Helper()
	fw, err := tfgo.Float32s(want)
	require.NoError(t, err)
	fg, err := tfgo.Float32s(got)
	require.NoError(t, err)
	testutil.AllCloseShapeTol(t, what, want.Shape(), fw, got.Shape(), fg, testutil.Tol{Atol: tol, Scaled: tol})
}

// A layer defined outside keraslike, registered with RegisterLayer,
// trains with Fit and goes through .keras and .weights.h5 files both ways
// between Go and Keras.
func TestCustomLayerOutsideThePackage(t *testing.T) {
	keraslike.RegisterLayer("ScaledResidualDense", scaledResidualDenseFromConfig)
	t.Cleanup(func() { keraslike.RegisterLayer("ScaledResidualDense", nil) })
	dir := t.TempDir()
	r := rand.New(rand.NewSource(21))
	xs, ys := regressionData(r, 256)
	xTest, _ := regressionData(r, 8)
	x := mustTensor(t, xTest)
	dirT, err := tfgo.NewStringTensor(nil, [][]byte{[]byte(dir)})
	require.NoError(t, err)

	keraslike.ResetNames()
	m, err := customModel()
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Build())
	var paths []string
	for _, w := range m.Weights() {
		paths = append(paths, w.Path)
	}
	assert.Equal(t, []string{"proj/kernel", "proj/bias", "res/kernel", "res/bias", "res/gain", "res/norm/gamma", "res/norm/beta", "head/kernel", "head/bias"}, paths)

	// Fit: the loss falls.
	require.NoError(t, m.Compile(keraslike.CompileOptions{
		Optimizer: keraslike.NewAdam(keraslike.AdamOptions{OptimizerOptions: keraslike.OptimizerOptions{LearningRate: 0.01}}),
		Loss:      keraslike.MeanSquaredError{}, BatchSize: 32}))
	data := &keraslike.ArrayDataset[[]float32, []float32]{X: xs, Y: ys, BatchSize: 32, Shuffle: true, Seed: 1, DropRemainder: true}
	before, err := m.Evaluate(data)
	require.NoError(t, err)
	hist, err := m.Fit(context.Background(), data, keraslike.FitOptions{Epochs: 5})
	require.NoError(t, err)
	require.Len(t, hist.Epochs, 5)
	after, err := m.Evaluate(data)
	require.NoError(t, err)
	t.Logf("loss %.4f before training, %.4f after (epochs: %v)", before["loss"], after["loss"], hist.Epochs)
	assert.Less(t, after["loss"], 0.5*before["loss"], "training the model with the custom layer")
	assert.Less(t, hist.Epochs[4]["loss"], hist.Epochs[0]["loss"])

	yGo := mustPredict(t, m, x)
	require.NoError(t, m.SaveKeras(filepath.Join(dir, "go.keras")))
	require.NoError(t, m.SaveWeightsH5(filepath.Join(dir, "go.weights.h5")))

	// Go reads back what it wrote.
	back, err := keraslike.LoadKerasModel(filepath.Join(dir, "go.keras"), keraslike.LoadOptions{})
	require.NoError(t, err)
	defer back.Close()
	same(t, yGo, mustPredict(t, back, x), 0, "Go .keras in Go")
	fresh, err := customModel()
	require.NoError(t, err)
	defer fresh.Close()
	d, _ := maxDiff(t, yGo, mustPredict(t, fresh, x))
	require.Greater(t, d, 1e-3, "an untrained model predicts as the trained one")
	require.NoError(t, fresh.LoadWeightsH5(filepath.Join(dir, "go.weights.h5")))
	same(t, yGo, mustPredict(t, fresh, x), 0, "Go .weights.h5 in Go")

	// Keras reads what Go wrote, and writes files of its own.
	out := interop.Python(t, customTwin+`
m = keras.models.load_model(os.path.join(d, "go.keras"), custom_objects=custom_objects)
outputs["keras"] = m.predict(inputs["x"], verbose=0)
keras.backend.clear_session()
m = custom_model()
m.load_weights(os.path.join(d, "go.weights.h5"))
outputs["weights"] = m.predict(inputs["x"], verbose=0)
rng = np.random.default_rng(3)
m.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in m.get_weights()])
outputs["py"] = m.predict(inputs["x"], verbose=0)
m.save(os.path.join(d, "py.keras"))
m.save_weights(os.path.join(d, "py.weights.h5"))
import h5py
def layout(path):  # every group and dataset (with its shape) and the vars' name attributes
    items = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda k, v: items.append("%s %s %s" % (k, getattr(v, "shape", ""), v.attrs.get("name", ""))))
    return "\n".join(sorted(items))
outputs["go_layout"] = np.array(layout(os.path.join(d, "go.weights.h5")).encode(), dtype=object)
outputs["py_layout"] = np.array(layout(os.path.join(d, "py.weights.h5")).encode(), dtype=object)
`, map[string]*tfgo.Tensor{"dir": dirT, "x": x})
	same(t, yGo, out["keras"], 1e-5, "Go .keras in Python")
	same(t, yGo, out["weights"], 1e-5, "Go .weights.h5 in Python")
	goLayout, err := out["go_layout"].Strings()
	require.NoError(t, err)
	pyLayout, err := out["py_layout"].Strings()
	require.NoError(t, err)
	assert.Equal(t, string(pyLayout[0]), string(goLayout[0]), "the groups of Go's and Keras' .weights.h5 files")
	assert.Contains(t, string(goLayout[0]), "layers/scaled_residual_dense/norm/vars/1 (8,)")

	// Go reads what Keras wrote.
	py, err := keraslike.LoadKerasModel(filepath.Join(dir, "py.keras"), keraslike.LoadOptions{})
	require.NoError(t, err)
	defer py.Close()
	same(t, out["py"], mustPredict(t, py, x), 1e-5, "Python .keras in Go")
	require.NoError(t, fresh.LoadWeightsH5(filepath.Join(dir, "py.weights.h5")))
	same(t, out["py"], mustPredict(t, fresh, x), 1e-5, "Python .weights.h5 in Go")

	// Without the registration, the class is refused, naming it.
	keraslike.RegisterLayer("ScaledResidualDense", nil)
	_, err = keraslike.LoadKerasModel(filepath.Join(dir, "go.keras"), keraslike.LoadOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `layer "res" (class ScaledResidualDense`)
	assert.Contains(t, err.Error(), "RegisterLayer")
}

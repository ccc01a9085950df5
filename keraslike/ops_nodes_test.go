package keraslike

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// opModels are functional Keras models whose graphs hold operation nodes
// and eager constants, by name, each a Python function of its input; the
// inputs are x (float32, [batch, 6, 4]) or ids (int32, [batch, 6]).
const opModels = `
import numpy as np, keras
from keras import ops, layers
def flat(*ts):
    return ops.concatenate([ops.reshape(t, (-1, int(np.prod(t.shape[1:])))) for t in ts], axis=-1)
def dense_input():
    inp = keras.Input((6, 4))
    return inp, layers.Dense(4)(inp)
def m_weightless():
    # Ops only: the model has no weights at all.
    x = keras.Input((6, 4))
    return keras.Model(x, flat(x * 2.0 + 1.0, ops.transpose(x, (0, 2, 1)), ops.relu(x)))
def m_position():
    ids = keras.Input((6,), dtype="int32")
    e = layers.Embedding(20, 8)(ids)
    angle = np.arange(6)[:, None] / np.power(100.0, np.arange(8)[None, :] / 8)
    table = ops.convert_to_tensor(np.sin(angle).astype("float32"))   # __tensor__
    x = e + table
    x = x * ops.convert_to_tensor(np.float32(1.5))                    # scalar __tensor__
    x = x + np.linspace(-1, 1, 8).astype("float32")                   # __numpy__
    rows = ops.convert_to_tensor(np.cos(np.arange(160) / 7).reshape(20, 8).astype("float32"))
    x = x + ops.take(rows, ids, axis=0)                               # a constant gathered by a tensor
    x = x + ops.take(x, [5, 4, 3, 2, 1, -6], axis=-2) * 0.5            # a Python list of indices
    return keras.Model(ids, layers.Dense(3)(x))
def m_residual():
    x = keras.Input((6, 4))
    d = layers.Dense(4)(x)
    y = (x + d) * 0.5
    y = y - 1.0
    y = 2.0 / (y + 3.0)
    y = -y + ops.square(y) - ops.maximum(y, -0.4) + ops.minimum(y, 0.1) + ops.power(ops.abs(y), 2.0)
    return keras.Model(x, y)
def m_shapes():
    inp, x = dense_input()
    r = ops.reshape(x, (-1, 24))
    r = ops.squeeze(ops.expand_dims(r, 1), axis=1)
    r = ops.reshape(r, (-1, 6, 4))
    t = ops.transpose(r, (0, 2, 1))
    c = ops.concatenate([t, t * 2.0], axis=-1)
    s = ops.stack([t, t + 1.0], axis=1)
    e = ops.expand_dims(x, -1)
    return keras.Model(inp, flat(c, s, e, ops.squeeze(e, -1)))
def m_getitem():
    inp, x = dense_input()
    return keras.Model(inp, flat(x[:, 0], x[..., 1:3], x[:, ::2, None, -1], x[:, -1], x[:, 1:-1:2], x[:, 3, 1:]))
def m_matmul():
    inp, x = dense_input()
    w = ops.convert_to_tensor(np.linspace(-1, 1, 20).reshape(4, 5).astype("float32"))
    a = ops.matmul(x, ops.transpose(x, (0, 2, 1)))
    b = ops.einsum("bij,bkj->bik", x, x)
    c = ops.matmul(x, w)
    d = ops.einsum("bij,jk->bik", x, w)
    return keras.Model(inp, flat(a, b, c, d))
def m_activations():
    inp, x = dense_input()
    return keras.Model(inp, flat(ops.relu(x), ops.sigmoid(x), ops.softmax(x, axis=-1), ops.softmax(x, axis=1),
        keras.activations.gelu(x), ops.gelu(x), ops.silu(x), ops.tanh(x), ops.exp(x), ops.sqrt(ops.abs(x)),
        ops.log_softmax(x), ops.relu6(x * 4.0), ops.leaky_relu(x), ops.softplus(x), ops.log(ops.abs(x) + 1.0)))
def m_where():
    inp, x = dense_input()
    w1 = ops.where(x > 0.2, x, ops.zeros_like(x))
    w2 = ops.where(ops.logical_and(x < 0.5, x >= -0.5), 0.0, x * 2.0)
    k = ops.cast(ops.cast(x * 3.0, "int32"), "float32")
    m = ops.cast(ops.not_equal(x, 0.0), "float32") + ops.cast(ops.less_equal(x, 0.1), "float32")
    s = ops.sum(x, axis=1) + ops.max(x, axis=(1,)) - ops.min(x, axis=1)
    return keras.Model(inp, flat(w1, w2, k, m, s, ops.mean(x, axis=-1, keepdims=True), ops.sum(x, axis=(1, 2)), ops.ones_like(x), ops.clip(x, -0.3, 0.3)))
def m_arithmetic():
    inp, x = dense_input()
    e = ops.cast(ops.logical_or(ops.equal(ops.floor(x * 2.0), 1.0), ops.logical_not(x >= 0.3)), "float32")
    return keras.Model(inp, flat(x // 0.3, x % 0.3, ops.floor(x), ops.ceil(x), ops.sign(x), ops.divide(x, 3.0),
        ops.rsqrt(ops.abs(x) + 0.5), ops.erf(x), e, ops.exp(ops.cast(x > 0, "int32") * 2)))
def m_scalars():
    # Python's 2.0 and 3 promote an int32 tensor differently (float32, int32).
    inp, x = dense_input()
    return keras.Model(inp, flat(ops.cast(x > 0, "int32") * 2.0 + ops.cast(x < 0, "int32") * 3))
`

// opModelNames are the models of opModels, with their input.
var opModelNames = []struct{ name, input string }{
	{"position", "ids"}, {"residual", "x"}, {"shapes", "x"}, {"getitem", "x"},
	{"matmul", "x"}, {"activations", "x"}, {"where", "x"}, {"arithmetic", "x"}, {"scalars", "x"},
	{"weightless", "x"},
}

func opInputs(t *testing.T) (x, ids *tfgo.Tensor) {
	r := rand.New(rand.NewSource(3))
	xs := make([][][]float32, 4)
	for i := range xs {
		xs[i] = make([][]float32, 6)
		for j := range xs[i] {
			xs[i][j] = make([]float32, 4)
			for k := range xs[i][j] {
				xs[i][j][k] = float32(r.NormFloat64())
			}
		}
	}
	x, err := tfgo.NewTensor(xs)
	require.NoError(t, err)
	idv := make([][]int32, 4)
	for i := range idv {
		idv[i] = make([]int32, 6)
		for j := range idv[i] {
			idv[i][j] = r.Int31n(20)
		}
	}
	ids, err = tfgo.NewTensor(idv)
	require.NoError(t, err)
	return x, ids
}

// Models with operation nodes and eager constants, written by Keras, load
// from .keras and legacy .h5 and predict as Keras does; Go writes them back
// as .keras files that Keras loads and predicts the same from.
func TestOpNodesKerasModels(t *testing.T) {
	dir := t.TempDir()
	x, ids := opInputs(t)
	in := map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "x": x, "ids": ids}
	ref := interop.Python(t, opModels+`
import os
d = inputs["dir"].item().decode()
for name, inp in `+pyPairs()+`:
    keras.backend.clear_session()
    m = globals()["m_" + name]()
    for w in m.weights:
        w.assign(np.random.default_rng(5).normal(0, 0.5, w.shape).astype("float32"))
    outputs[name] = m.predict(inputs[inp], verbose=0)
    m.save(os.path.join(d, name + ".keras"))
    m.save(os.path.join(d, name + ".h5"))
`, in)
	for _, mc := range opModelNames {
		input := map[string]*tfgo.Tensor{"x": x, "ids": ids}[mc.input]
		for _, ext := range []string{".keras", ".h5"} {
			t.Run(mc.name+ext, func(t *testing.T) {
				m, err := LoadKerasModel(filepath.Join(dir, mc.name+ext), LoadOptions{})
				require.NoError(t, err)
				defer m.Close()
				got := predict(t, m, input)
				assert.Equal(t, ref[mc.name].DataType(), got.DataType(), "the output's dtype")
				samePredictions(t, ref[mc.name], got, 1e-5, mc.name+ext)
				if ext == ".keras" {
					require.NoError(t, m.SaveKeras(filepath.Join(dir, "go_"+mc.name+".keras")))
				}
			})
		}
	}
	back := interop.Python(t, opModels+`
import os
d = inputs["dir"].item().decode()
for name, inp in `+pyPairs()+`:
    keras.backend.clear_session()
    m = keras.models.load_model(os.path.join(d, "go_" + name + ".keras"))
    outputs[name] = m.predict(inputs[inp], verbose=0)
`, in)
	for _, mc := range opModelNames {
		assert.Equal(t, ref[mc.name].DataType(), back[mc.name].DataType(), "the output's dtype of Go's %s.keras in Keras", mc.name)
		samePredictions(t, ref[mc.name], back[mc.name], 1e-5, "Go's "+mc.name+".keras in Keras")
	}
}

func pyPairs() string {
	var b strings.Builder
	b.WriteString("[")
	for _, mc := range opModelNames {
		b.WriteString(`("` + mc.name + `", "` + mc.input + `"), `)
	}
	b.WriteString("]")
	return b.String()
}

// A model built in Go with operations and constants is saved as .keras,
// and Keras loads it and predicts what Go predicts.
func TestOpNodesGoModel(t *testing.T) {
	dir := t.TempDir()
	x, _ := opInputs(t)
	table := make([]float64, 6*4)
	for i := range table {
		table[i] = math.Sin(float64(i) / 3)
	}
	pos, err := NewConstant(tfgo.Float, []int64{6, 4}, table)
	require.NoError(t, err)
	posT, err := NewConstant(tfgo.Float, []int64{4, 6}, table)
	require.NoError(t, err)
	in := Input(InputSpec{Shape: []int64{6, 4}})
	h := OpAdd(in, pos)
	d := Apply(NewDense(4, DenseOptions{Name: "dense"}), h)
	h = OpMultiply(OpAdd(h, d), 0.5)
	first := OpGetItem(h, Slice{}, 0)                                     // x[:, 0]
	mid := OpGetItem(h, Ellipsis, Slice{Start: Bound(1), Stop: Bound(3)}) // x[..., 1:3]
	att := OpEinsum("bij,bkj->bik", h, h)
	mask := ApplyOp("Greater", nil, h, 0.1)
	w := OpWhere(mask, h, OpDivide(h, 4.0))
	out := OpConcatenate(-1,
		first, OpReshape(mid, -1, 12), OpReshape(att, -1, 36), OpReshape(OpTranspose(w, 0, 2, 1), -1, 24),
		OpCast(OpCast(OpMultiply(first, 3.0), tfgo.Int32), tfgo.Float),
		ApplyOp("Softmax", map[string]any{"axis": -1}, OpMatmul(first, posT)))
	m, err := NewFunctional("go_ops", in, out)
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Build())
	randomizeGo(t, m, 4)
	want := predict(t, m, x)
	require.NoError(t, m.SaveKeras(filepath.Join(dir, "go.keras")))

	got := interop.Python(t, `
import keras, os
d = inputs["dir"].item().decode()
m = keras.models.load_model(os.path.join(d, "go.keras"))
outputs["y"] = m.predict(inputs["x"], verbose=0)
outputs["layers"] = np.array([len(m.layers)], dtype="float32")
`, map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "x": x})
	samePredictions(t, want, got["y"], 1e-5, "Go's model in Keras")
	assert.EqualValues(t, []float32{2}, floats(t, got["layers"]), "model.layers: the InputLayer and the Dense, not the operations")

	back, err := LoadKerasModel(filepath.Join(dir, "go.keras"), LoadOptions{})
	require.NoError(t, err)
	defer back.Close()
	samePredictions(t, want, predict(t, back, x), 0, "Go's model in Go")
}

// opConfig is a functional config whose second entry is the operation
// entry op, called with args (the input tensor as "$x").
func opConfig(t *testing.T, op map[string]any, args []any) []byte {
	ref := map[string]any{"class_name": "__keras_tensor__", "config": map[string]any{
		"shape": []any{nil, 4}, "dtype": "float32", "keras_history": []any{"input_layer", 0, 0}}}
	for i, a := range args {
		if a == "$x" {
			args[i] = ref
		}
	}
	op["name"] = "op"
	op["inbound_nodes"] = []any{map[string]any{"args": args, "kwargs": map[string]any{}}}
	conf := map[string]any{"module": "keras.src.models.functional", "class_name": "Functional", "config": map[string]any{
		"name": "m", "trainable": true,
		"layers": []any{
			map[string]any{"module": "keras.layers", "class_name": "InputLayer", "name": "input_layer", "inbound_nodes": []any{},
				"config": map[string]any{"batch_shape": []any{nil, 4}, "dtype": "float32", "name": "input_layer"}},
			op,
		},
		"input_layers": []any{"input_layer", 0, 0}, "output_layers": []any{"op", 0, 0},
	}}
	raw, err := json.Marshal(conf)
	require.NoError(t, err)
	return raw
}

// Hostile or unsupported operation nodes are refused with short errors
// naming the operation, before a large constant is copied.
func TestOpNodesRefused(t *testing.T) {
	big := make([]any, 1100)
	for i := range big {
		row := make([]any, 1000)
		for j := range row {
			row[j] = 0.25
		}
		big[i] = row
	}
	ragged := []any{[]any{1.0, 2.0}, []any{1.0}}
	for _, tc := range []struct {
		name string
		op   map[string]any
		args []any
		want string
	}{
		{"huge constant", map[string]any{"module": "keras.src.ops.numpy", "class_name": "Add", "config": map[string]any{"name": "op"}},
			[]any{"$x", map[string]any{"class_name": "__tensor__", "config": map[string]any{"value": big, "dtype": "float32"}}}, "more than 1048576 elements"},
		{"ragged constant", map[string]any{"module": "keras.src.ops.numpy", "class_name": "Add", "config": map[string]any{"name": "op"}},
			[]any{"$x", map[string]any{"class_name": "__numpy__", "config": map[string]any{"value": ragged, "dtype": "float32"}}}, "not a rectangular array"},
		{"string constant", map[string]any{"module": "keras.src.ops.numpy", "class_name": "Add", "config": map[string]any{"name": "op"}},
			[]any{"$x", map[string]any{"class_name": "__tensor__", "config": map[string]any{"value": strings.Repeat("a", 5000), "dtype": "string"}}}, "dtype"},
		{"unknown op", map[string]any{"module": "keras.src.ops.numpy", "class_name": "Fft2", "config": map[string]any{"name": "op"}},
			[]any{"$x"}, `operation "Fft2" is not supported`},
		{"unknown argument", map[string]any{"module": "keras.src.ops.numpy", "class_name": "Reshape", "config": map[string]any{"name": "op", "newshape": []any{-1, 4}, "order": strings.Repeat("C", 3000)}},
			[]any{"$x"}, "order="},
		{"tensor index", map[string]any{"module": "keras.src.ops.numpy", "class_name": "GetItem", "config": map[string]any{"name": "op"}},
			[]any{"$x", []any{map[string]any{"k": strings.Repeat("z", 4000)}}}, "tensor indices are not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := modelFromJSON(opConfig(t, tc.op, tc.args), LoadOptions{}, false)
			if err == nil {
				err = m.Build()
				m.Close()
			}
			require.Error(t, err)
			t.Log(err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), `"op"`, "the error names the operation's layer")
			assert.Less(t, len(err.Error()), 700, "an error quotes at most a short excerpt: %.300s", err.Error())
		})
	}
}

// A Keras model with operation nodes trains in Go as in Keras: one SGD
// step moves the weights as train_on_batch does (gradients flow through
// the operations and past the constants).
func TestOpNodesTrainAsKeras(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewSource(8))
	x, y := randTensor(t, r, 8, 24), randTensor(t, r, 8, 3)
	in := map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "x": x, "y": y}
	ref := interop.Python(t, `
import os, keras, numpy as np
from keras import ops, layers
d = inputs["dir"].item().decode()
keras.backend.clear_session()
inp = keras.Input((24,))
h = layers.Dense(24, activation="tanh")(inp)
h = ops.reshape(h, (-1, 6, 4)) * 0.5 + ops.convert_to_tensor(np.linspace(-1, 1, 24).reshape(6, 4).astype("float32"))
a = ops.softmax(ops.matmul(h, ops.transpose(h, (0, 2, 1))), axis=-1)
h = ops.matmul(a, h)
z = ops.concatenate([h[:, 0], ops.mean(h, axis=1), h[..., 1:3][:, -1]], axis=-1)
z = ops.where(z > 0, z, z * 0.1)
m = keras.Model(inp, layers.Dense(3)(z))
rng = np.random.default_rng(4)
m.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in m.get_weights()])
m.save(os.path.join(d, "train.keras"))
m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
m.train_on_batch(inputs["x"], inputs["y"])
for i, w in enumerate(m.get_weights()):
    outputs["after%d" % i] = w
`, in)
	m, err := LoadKerasModel(filepath.Join(dir, "train.keras"), LoadOptions{})
	require.NoError(t, err)
	defer m.Close()
	got := sgdStep(t, m, x, y)
	require.Len(t, got, 4)
	for i := range got {
		allCloseTol(t, fmt.Sprintf("weight %d after the step", i), ref[fmt.Sprintf("after%d", i)], got[i], kerasTol)
	}
}

// sgdStep compiles m with SGD(0.1) and mean squared error, as the Python
// twins of these tests do, fits it on the batch (x, y) of rank-2 tensors
// for one step, and returns its weights.
func sgdStep(t *testing.T, m *Model, x, y *tfgo.Tensor) []*tfgo.Tensor {
	t.Helper()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.1}}), Loss: MeanSquaredError{}}))
	n, dx, dy := int(x.Shape()[0]), int(x.Shape()[1]), int(y.Shape()[1])
	xs, ys := make([][]float32, n), make([][]float32, n)
	xf, yf := floats(t, x), floats(t, y)
	for i := range xs {
		xs[i], ys[i] = xf[dx*i:dx*i+dx], yf[dy*i:dy*i+dy]
	}
	_, err := m.Fit(context.Background(), &ArrayDataset[[]float32, []float32]{X: xs, Y: ys, BatchSize: n}, FitOptions{Epochs: 1})
	require.NoError(t, err)
	got, err := m.GetWeights()
	require.NoError(t, err)
	return got
}

// The Go API refuses what it cannot build, naming the operation.
func TestOpNodesGoErrors(t *testing.T) {
	in := Input(InputSpec{Shape: []int64{4}})
	_, err := NewFunctional("m", in, ApplyOp("Fft2", nil, in))
	assert.ErrorContains(t, err, `operation "Fft2" is not supported`)
	_, err = NewOp("Reshape", "", map[string]any{"newshape": "wide"})
	assert.ErrorContains(t, err, "newshape=wide is not supported")
	_, err = NewConstant(tfgo.Float, []int64{2, 2}, []float64{1, 2, 3})
	assert.ErrorContains(t, err, "has 4 elements, got 3 values")

	for _, tc := range []struct {
		out  *KerasTensor
		want string
	}{
		{ApplyOp("Add", nil, in, in, in), "takes 2 arguments (x1, x2), got 3"},
		{OpGetItem(in, "a"), "is not an int, slice, None or ..."},
		{OpWhere(ApplyOp("Greater", nil, in, 0.0), in, nil), "without x1 and x2"},
	} {
		m, err := NewFunctional("m", in, tc.out)
		require.NoError(t, err)
		err = m.Build()
		m.Close()
		assert.ErrorContains(t, err, tc.want)
	}
}

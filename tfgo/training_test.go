package tfgo

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A model for the training parity tests: named initial weights, the data,
// the forward pass and loss in Go, and the same in Python.
type parityModel struct {
	weights map[string][]int64 // name -> shape, drawn N(0, scale²) in Go
	order   []string
	scale   float64
	data    map[string]any // Go values, fed to both sides as constants
	loss    func(s *Scope, w map[string]Output, data map[string]Output) Output
	pyLoss  string // Python: def loss(w, d): ... (w, d: dicts of tensors/arrays)
}

func randn(r *rand.Rand, shape []int64, scale float64) *Tensor {
	n := numElements(shape)
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	t, err := AllocateTensor(Float, shape)
	if err != nil {
		panic(err)
	}
	for i, f := range v {
		putFloat32(t.Data()[4*i:], f)
	}
	return t
}

func putFloat32(b []byte, f float32) {
	u := math.Float32bits(f)
	b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
}

// trainAndCompare trains m with plain gradient descent for steps steps in
// Go (one session run per step) and in Python (tf.GradientTape, assign_sub)
// from the same initial weights on the same data, and compares the loss of
// every step and after the last one.
func trainAndCompare(t *testing.T, m parityModel, steps int, lr float32) {
	r := rand.New(rand.NewSource(3))
	init := map[string]*Tensor{}
	for _, name := range m.order {
		init[name] = randn(r, m.weights[name], m.scale)
	}

	s := NewScope()
	model := s.SubScope("model")
	w := map[string]Output{}
	var vars []*Variable
	for _, name := range m.order {
		v := NewVariable(model, name, Float, m.weights[name], InitialValue(init[name]))
		vars = append(vars, v)
		w[name] = v.Value()
	}
	d := map[string]Output{}
	for k, v := range m.data {
		d[k] = Const(s.SubScope("data").SubScope(k), v)
	}
	loss := m.loss(model, w, d)
	handles := make([]Output, len(vars))
	for i, v := range vars {
		handles[i] = v.Handle()
	}
	grads := Gradients(s, []Output{loss}, handles, nil)
	train := s.SubScope("sgd")
	var updates []*Operation
	for i, v := range vars {
		updates = append(updates, v.AssignSub(train, Mul(train, Const(train, lr), grads[i])))
	}
	step := train.WithControlDependencies(updates...).AddOperation(OpSpec{Type: "NoOp", Name: "step"})
	initAll := GlobalVariablesInitializer(s)
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	_, err = sess.Run(nil, nil, initAll)
	require.NoError(t, err)

	goLosses := make([]float64, 0, steps+1)
	for i := 0; i < steps; i++ {
		out, err := sess.Run(nil, []Output{loss}, step)
		require.NoError(t, err)
		goLosses = append(goLosses, asFloat64s(t, out[0])[0])
		out[0].Close()
	}
	out, err := sess.Run(nil, []Output{loss})
	require.NoError(t, err)
	goLosses = append(goLosses, asFloat64s(t, out[0])[0])

	in := map[string]*Tensor{}
	for k, v := range init {
		in["w_"+k] = v
	}
	for k, v := range m.data {
		tn, err := NewTensor(v)
		require.NoError(t, err)
		in["d_"+k] = tn
	}
	ref := python(t, fmt.Sprintf(`
%s
names = %s
w = {n: tf.Variable(inputs["w_" + n]) for n in names}
d = {k[2:]: tf.constant(v) for k, v in inputs.items() if k.startswith("d_")}
losses = []
for _ in range(%d):
    with tf.GradientTape() as tape:
        l = loss(w, d)
    gs = tape.gradient(l, [w[n] for n in names])
    for n, g in zip(names, gs):
        w[n].assign_sub(%g * g)
    losses.append(float(l))
losses.append(float(loss(w, d)))
outputs["losses"] = np.array(losses, np.float64)
`, m.pyLoss, pyList(m.order), steps, lr), in)
	pyLosses := asFloat64s(t, ref["losses"])
	t.Logf("loss: Go %.6f -> %.6f, Python %.6f -> %.6f after %d steps", goLosses[0], goLosses[steps], pyLosses[0], pyLosses[steps], steps)
	require.Less(t, goLosses[steps], goLosses[0], "training did not reduce the loss")
	for i := range pyLosses {
		require.InDelta(t, pyLosses[i], goLosses[i], 1e-4, "loss at step %d", i)
	}
}

func pyList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func matrixData(r *rand.Rand, rows, cols int) [][]float32 {
	m := make([][]float32, rows)
	for i := range m {
		m[i] = make([]float32, cols)
		for j := range m[i] {
			m[i][j] = float32(r.NormFloat64())
		}
	}
	return m
}

// A 2-layer MLP classifier: relu(x·W1 + b1)·W2 + b2, mean sparse softmax
// cross-entropy, 50 steps of gradient descent.
func TestMLPTrainingMatchesPython(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	labels := make([]int32, 32)
	for i := range labels {
		labels[i] = int32(r.Intn(4))
	}
	m := parityModel{
		weights: map[string][]int64{"w1": {8, 16}, "b1": {16}, "w2": {16, 4}, "b2": {4}},
		order:   []string{"w1", "b1", "w2", "b2"},
		scale:   0.5,
		data:    map[string]any{"x": matrixData(r, 32, 8), "y": labels},
		loss: func(s *Scope, w, d map[string]Output) Output {
			h := Relu(s, BiasAdd(s, MatMul(s, d["x"], w["w1"]), w["b1"]))
			logits := AddV2(s, MatMul(s, h, w["w2"]), w["b2"])
			ce, _ := SparseSoftmaxCrossEntropyWithLogits(s, logits, d["y"])
			return Mean(s, ce, Const(s, []int32{0}))
		},
		pyLoss: `
def loss(w, d):
    h = tf.nn.relu(d["x"] @ w["w1"] + w["b1"])
    logits = h @ w["w2"] + w["b2"]
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=d["y"], logits=logits))`,
	}
	trainAndCompare(t, m, 50, 0.1)
}

// One post-LN transformer block (causal multi-head self-attention +
// residual + LayerNormalization, then a GELU feed-forward + residual +
// LayerNormalization) regressing onto a target, 50 steps of gradient descent.
func TestTransformerBlockTrainingMatchesPython(t *testing.T) {
	const B, T, D, H, K, FF = 4, 6, 8, 2, 4, 32
	r := rand.New(rand.NewSource(12))
	seq := func() [][][]float32 {
		v := make([][][]float32, B)
		for i := range v {
			v[i] = matrixData(r, T, D)
		}
		return v
	}
	m := parityModel{
		weights: map[string][]int64{
			"wq": {D, H * K}, "bq": {H * K}, "wk": {D, H * K}, "bk": {H * K}, "wv": {D, H * K}, "bv": {H * K},
			"wo": {H * K, D}, "bo": {D}, "g1": {D}, "be1": {D}, "w1": {D, FF}, "c1": {FF}, "w2": {FF, D}, "c2": {D},
			"g2": {D}, "be2": {D},
		},
		order: []string{"wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo", "g1", "be1", "w1", "c1", "w2", "c2", "g2", "be2"},
		scale: 0.3,
		data:  map[string]any{"x": seq(), "target": seq()},
		loss: func(s *Scope, w, d map[string]Output) Output {
			flat := func(x Output, cols int) Output { return Reshape(s, x, Const(s, []int32{-1, int32(cols)})) }
			dense := func(x Output, k, b string) Output {
				return BiasAdd(s, MatMul(s, x, w[k]), w[b])
			}
			heads := func(x Output) Output { // [B*T, H*K] -> [B, H, T, K]
				x = Reshape(s, x, Const(s, []int32{B, T, H, K}))
				return Transpose(s, x, Const(s, []int32{0, 2, 1, 3}))
			}
			x := d["x"]
			xf := flat(x, D)
			q, k, v := heads(dense(xf, "wq", "bq")), heads(dense(xf, "wk", "bk")), heads(dense(xf, "wv", "bv"))
			scores := Mul(s, BatchMatMulV2(s, q, k, BatchMatMulV2AdjY(true)), Const(s, float32(1/math.Sqrt(K))))
			mask := Reshape(s, CausalMask(s, Const(s, int32(T))), Const(s, []int32{1, 1, T, T}))
			probs := MaskedSoftmax(s, scores, mask, -1)
			att := Transpose(s, BatchMatMulV2(s, probs, v), Const(s, []int32{0, 2, 1, 3}))
			att = dense(flat(att, H*K), "wo", "bo")
			x1 := LayerNormalize(s, AddV2(s, xf, att), w["g1"], w["be1"], -1, 1e-6)
			ff := dense(Gelu(s, dense(x1, "w1", "c1"), false), "w2", "c2")
			x2 := LayerNormalize(s, AddV2(s, x1, ff), w["g2"], w["be2"], -1, 1e-6)
			diff := Sub(s, x2, flat(d["target"], D))
			return Mean(s, Square(s, diff), Const(s, []int32{0, 1}))
		},
		pyLoss: fmt.Sprintf(`
B, T, D, H, K = %d, %d, %d, %d, %d
def ln(x, g, b):
    mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(var + 1e-6) * g + b
def loss(w, d):
    xf = tf.reshape(d["x"], [-1, D])
    heads = lambda t: tf.transpose(tf.reshape(t, [B, T, H, K]), [0, 2, 1, 3])
    q = heads(xf @ w["wq"] + w["bq"]); k = heads(xf @ w["wk"] + w["bk"]); v = heads(xf @ w["wv"] + w["bv"])
    scores = tf.matmul(q, k, transpose_b=True) * (1.0 / np.sqrt(K))
    causal = tf.linalg.band_part(tf.ones([T, T], tf.bool), -1, 0)
    probs = tf.nn.softmax(tf.where(causal, scores, -1e9))
    att = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]), [-1, H * K]) @ w["wo"] + w["bo"]
    x1 = ln(xf + att, w["g1"], w["be1"])
    ff = tf.nn.gelu(x1 @ w["w1"] + w["c1"], approximate=False) @ w["w2"] + w["c2"]
    x2 = ln(x1 + ff, w["g2"], w["be2"])
    return tf.reduce_mean(tf.square(x2 - tf.reshape(d["target"], [-1, D])))`, B, T, D, H, K),
	}
	trainAndCompare(t, m, 50, 0.05)
}

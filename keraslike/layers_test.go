package keraslike

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/mixedprecision"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of Embedding, LayerNormalization, MultiHeadAttention, Dropout,
// PositionalEmbedding, Activation and TransformerBlock against Keras 3 in
// the same run: Go gives its layer random weights, Python sets the same
// values into the Keras layer (set_weights), both compute, and the outputs,
// weight paths and shapes, parameter counts and configs are compared.

// ltPrelude defines, in the Python worker, helpers describing a Keras layer.
const ltPrelude = `
import json
import keras
def describe(layer):
    outputs["paths"] = np.array([v.path.encode() for v in layer.weights], dtype=object)
    outputs["shapes"] = json.dumps([[int(d) for d in v.shape] for v in layer.weights])
    outputs["count"] = np.array([layer.count_params()], np.int64)
    outputs["config"] = json.dumps(layer.get_config(), default=str)
def weights():
    return [inputs["w%d" % i] for i in range(len([k for k in inputs if k.startswith("w")]))]
`

// ltRandn is a float32 tensor of N(0, scale²) values.
func ltRandn(t *testing.T, r *rand.Rand, scale float64, shape ...int64) *tfgo.Tensor {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	flat, err := tfgo.NewTensor(v)
	require.NoError(t, err)
	defer flat.Close()
	tn, err := tfgo.NewTensorFromBytes(tfgo.Float, shape, flat.Data())
	require.NoError(t, err)
	return tn
}

// ltSession is a session on s's graph in which every variable was
// initialized and then each weight of ws set to a random N(0, scale²)
// value; it returns the session and the values, in the order of ws (as
// Keras' set_weights takes them, named w0, w1 ... in inputs).
func ltSession(t *testing.T, s *tfgo.Scope, ws []*Weight, r *rand.Rand, scale float64, inputs map[string]*tfgo.Tensor) *tfgo.Session {
	t.Helper()
	ss := s.SubScope("set_weights")
	var assigns []*tfgo.Operation
	for i, w := range ws {
		v := ltRandn(t, r, scale, w.Shape()...)
		if inputs != nil {
			inputs[fmt.Sprintf("w%d", i)] = v
		}
		assigns = append(assigns, w.Assign(ss, tfgo.Const(ss, v)))
	}
	init := tfgo.GlobalVariablesInitializer(s)
	require.NoError(t, s.Err())
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { sess.Close() })
	_, err = sess.Run(nil, nil, init)
	require.NoError(t, err)
	if len(assigns) > 0 {
		_, err = sess.Run(nil, nil, assigns...)
		require.NoError(t, err)
	}
	return sess
}

func ltRun(t *testing.T, sess *tfgo.Session, feeds map[tfgo.Output]any, outs ...tfgo.Output) []*tfgo.Tensor {
	t.Helper()
	res, err := sess.Run(feeds, outs)
	require.NoError(t, err)
	return res
}

// ltCheckWeights compares l's weights (paths, in order, and shapes) and
// parameter count with those describe() reported for the Keras layer.
func ltCheckWeights(t *testing.T, l Layer, ref map[string]*tfgo.Tensor) {
	t.Helper()
	paths, err := ref["paths"].Strings()
	require.NoError(t, err)
	shapesJSON, err := ref["shapes"].Strings()
	require.NoError(t, err)
	var shapes [][]int64
	require.NoError(t, json.Unmarshal(shapesJSON[0], &shapes))
	count, err := tfgo.Int64s(ref["count"])
	require.NoError(t, err)
	ws := l.Weights()
	require.Len(t, ws, len(paths), "number of weights")
	var n int64
	for i, w := range ws {
		assert.Equal(t, string(paths[i]), w.Path, "weight %d path", i)
		assert.Equal(t, w.Path, w.Name(), "the variable is named as Keras' path")
		assert.Equal(t, shapes[i], w.Shape(), "weight %s shape", w.Path)
		size := int64(1)
		for _, d := range w.Shape() {
			size *= d
		}
		n += size
	}
	assert.Equal(t, count[0], n, "count_params")
}

// ltCheckConfig checks that l's Config and Keras' get_config have the same
// keys with the same values, both ways (a key either side lacks fails),
// except the keys configWritesNot names.
func ltCheckConfig(t *testing.T, l Layer, ref map[string]*tfgo.Tensor) {
	t.Helper()
	raw, err := ref["config"].Strings()
	require.NoError(t, err)
	var py map[string]any
	require.NoError(t, json.Unmarshal(raw[0], &py))
	b, err := json.Marshal(l.Config())
	require.NoError(t, err)
	var gc map[string]any
	require.NoError(t, json.Unmarshal(b, &gc))
	for k, v := range gc {
		pv, ok := py[k]
		if !assert.True(t, ok, "Keras' get_config has no key %q", k) {
			continue
		}
		if k == "dtype" { // both a serialized DTypePolicy
			assert.Equal(t, pv, v, "dtype policy")
			continue
		}
		assert.Equal(t, pv, v, "config key %q", k)
	}
	for k := range py {
		if _, ok := gc[k]; !ok && !configWritesNot(k) {
			t.Errorf("Keras' get_config has %q, our Config does not", k)
		}
	}
}

// configWritesNot reports the get_config keys our layers do not write:
// weight initializers, regularizers and constraints, and the quantization
// config. Keras fills each with its default when it loads our files (we
// train with no regularizer or constraint; the weights are in the file).
func configWritesNot(key string) bool {
	if key == "quantization_config" {
		return true
	}
	for _, suffix := range []string{"_initializer", "_regularizer", "_constraint"} {
		if strings.HasSuffix(key, suffix) {
			return true
		}
	}
	return false
}

func ltMaxDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

func TestEmbeddingMatchesKeras(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	ids32, err := tfgo.NewTensor([][]int32{{0, 3, 9, -1}, {5, 5, 2, -10}})
	require.NoError(t, err)
	ids64, err := tfgo.NewTensor([][][]int64{{{1, 2}, {3, 4}}, {{9, 0}, {8, -3}}})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		ids  *tfgo.Tensor
	}{{"int32 rank 2", ids32}, {"int64 rank 3", ids64}} {
		t.Run(tc.name, func(t *testing.T) {
			s := tfgo.NewScope()
			e := NewEmbedding(10, 6, EmbeddingOptions{Name: "embedding"})
			ph := tfgo.Placeholder(s, tc.ids.DataType(), -1, -1)
			if len(tc.ids.Shape()) == 3 {
				ph = tfgo.Placeholder(s, tc.ids.DataType(), -1, -1, -1)
			}
			y := e.Call(NewContext(s, false), ph)
			require.NoError(t, s.Err())
			in := map[string]*tfgo.Tensor{"ids": tc.ids}
			sess := ltSession(t, s, e.Weights(), r, 1, in)
			got := ltRun(t, sess, map[tfgo.Output]any{ph: tc.ids}, y)[0]
			ref := interop.Python(t, ltPrelude+`
e = keras.layers.Embedding(10, 6, name="embedding")
e.build(None)
e.set_weights(weights())
outputs["y"] = e(inputs["ids"])
describe(e)
`, in)
			allCloseTol(t, "embedding lookup", ref["y"], got, kerasTol)
			ltCheckWeights(t, e, ref)
			ltCheckConfig(t, e, ref)
		})
	}

	t.Run("default initializer equals keras RandomUniform", func(t *testing.T) {
		s := tfgo.NewScope()
		e := NewEmbedding(50, 8, EmbeddingOptions{EmbeddingsInitializer: uniformInitializer(-0.05, 0.05, 1234)})
		e.Call(NewContext(s, false), tfgo.Const(s, []int32{1}))
		sess := ltSession(t, s, nil, r, 0, nil)
		got := ltRun(t, sess, nil, e.Embeddings().Value())[0]
		ref := interop.Python(t, `
import keras
outputs["w"] = keras.initializers.RandomUniform(-0.05, 0.05, seed=1234)((50, 8))
`, nil)
		assert.Equal(t, floats(t, ref["w"]), floats(t, got), "bit-identical to Keras")
		for _, v := range floats(t, got) {
			require.True(t, v >= -0.05 && v < 0.05)
		}
	})

	t.Run("gradient through ResourceGather", func(t *testing.T) {
		s := tfgo.NewScope()
		e := NewEmbedding(10, 6, EmbeddingOptions{Name: "embedding"})
		y := e.Call(NewContext(s, false), tfgo.Const(s, ids32))
		c := ltRandn(t, r, 1, 2, 4, 6)
		loss := tfgo.Sum(s, tfgo.Mul(s, y, tfgo.Const(s, c)), tfgo.Const(s, []int32{0, 1, 2}))
		g := tfgo.Gradients(s, []tfgo.Output{loss}, []tfgo.Output{e.Embeddings().Handle()}, nil)
		require.NoError(t, s.Err())
		in := map[string]*tfgo.Tensor{"ids": ids32, "c": c}
		sess := ltSession(t, s, e.Weights(), r, 1, in)
		got := ltRun(t, sess, nil, g[0])[0]
		ref := interop.Python(t, ltPrelude+`
e = keras.layers.Embedding(10, 6, name="embedding")
e.build(None)
e.set_weights(weights())
with tf.GradientTape() as tape:
    loss = tf.reduce_sum(e(inputs["ids"]) * inputs["c"])
outputs["g"] = tf.convert_to_tensor(tape.gradient(loss, e.embeddings))
`, in)
		allCloseTol(t, "d loss / d embeddings", ref["g"], got, kerasTol)
	})
}

func TestLayerNormalizationMatchesKeras(t *testing.T) {
	r := rand.New(rand.NewSource(22))
	x := ltRandn(t, r, 2, 3, 5, 8)
	for _, tc := range []struct {
		name string
		opts LayerNormalizationOptions
		py   string
	}{
		{"defaults", LayerNormalizationOptions{}, ""},
		{"epsilon 1e-6", LayerNormalizationOptions{Epsilon: 1e-6}, "epsilon=1e-6"},
		{"no center", LayerNormalizationOptions{NoCenter: true}, "center=False"},
		{"no scale", LayerNormalizationOptions{NoScale: true}, "scale=False"},
		{"axis 1", LayerNormalizationOptions{Axis: 1}, "axis=1"},
		{"axis -2", LayerNormalizationOptions{Axis: -2}, "axis=-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tfgo.NewScope()
			tc.opts.Name = "layer_normalization"
			l := NewLayerNormalization(tc.opts)
			ph := tfgo.Placeholder(s, tfgo.Float, -1, 5, 8)
			y := l.Call(NewContext(s, false), ph)
			require.NoError(t, s.Err())
			in := map[string]*tfgo.Tensor{"x": x}
			sess := ltSession(t, s, l.Weights(), r, 1, in)
			got := ltRun(t, sess, map[tfgo.Output]any{ph: x}, y)[0]
			ref := interop.Python(t, ltPrelude+fmt.Sprintf(`
l = keras.layers.LayerNormalization(%sname="layer_normalization")
l.build((None, 5, 8))
l.set_weights(weights())
outputs["y"] = l(inputs["x"])
describe(l)
`, pyArgs(tc.py)), in)
			allCloseTol(t, "layer normalization", ref["y"], got, kerasTol)
			ltCheckWeights(t, l, ref)
			ltCheckConfig(t, l, ref)
		})
	}
}

// mhaCase is one MultiHeadAttention parity case.
type mhaCase struct {
	name          string
	heads, keyDim int
	opts          MultiHeadAttentionOptions
	pyArgs        string
	q, v, k       []int64 // shapes; k nil: key = value; v nil: self-attention
	mask          [][][]bool
	mask2D        [][]bool
	causal        bool
	training      bool
	dynamic       bool // placeholders with unknown batch and lengths
}

func TestMultiHeadAttentionMatchesKeras(t *testing.T) {
	const B, T, S = 2, 5, 4
	padding := make([][][]bool, B) // batch 0 sees every key, batch 1 all but the last two
	for b := range padding {
		padding[b] = make([][]bool, T)
		for i := range padding[b] {
			padding[b][i] = make([]bool, T)
			for j := range padding[b][i] {
				padding[b][i][j] = b == 0 || j < T-2
			}
		}
	}
	rowMasked := make([][][]bool, B) // query 1 of batch 1 sees no key
	for b := range rowMasked {
		rowMasked[b] = make([][]bool, T)
		for i := range rowMasked[b] {
			rowMasked[b][i] = make([]bool, T)
			for j := range rowMasked[b][i] {
				rowMasked[b][i][j] = !(b == 1 && i == 1) && (i+j)%3 != 0
			}
		}
	}
	cross := make([][]bool, T) // [T, S]
	for i := range cross {
		cross[i] = make([]bool, S)
		for j := range cross[i] {
			cross[i][j] = j != i%S
		}
	}
	seed := int64(5)
	cases := []mhaCase{
		{name: "self-attention", heads: 2, keyDim: 4, q: []int64{B, T, 8}},
		{name: "self-attention dynamic shapes", heads: 3, keyDim: 2, q: []int64{B, T, 8}, dynamic: true},
		{name: "padding mask", heads: 2, keyDim: 4, q: []int64{B, T, 8}, mask: padding},
		{name: "causal", heads: 2, keyDim: 4, q: []int64{B, T, 8}, causal: true},
		{name: "causal dynamic shapes", heads: 2, keyDim: 4, q: []int64{B, T, 8}, causal: true, dynamic: true},
		{name: "causal and padding mask", heads: 2, keyDim: 4, q: []int64{B, T, 8}, mask: padding, causal: true},
		{name: "fully masked query, dot-product path", heads: 2, keyDim: 4, q: []int64{B, T, 8}, mask: rowMasked},
		{name: "fully masked query, softmax path (dropout>0, inference)", heads: 2, keyDim: 4, q: []int64{B, T, 8}, mask: rowMasked,
			opts: MultiHeadAttentionOptions{Dropout: 0.25}, pyArgs: "dropout=0.25"},
		{name: "cross-attention value_dim != key_dim, [T, S] mask", heads: 2, keyDim: 4, q: []int64{B, T, 8}, v: []int64{B, S, 6}, k: []int64{B, S, 5},
			mask2D: cross, opts: MultiHeadAttentionOptions{ValueDim: 3}, pyArgs: "value_dim=3"},
		{name: "cross-attention causal, key = value, dynamic", heads: 3, keyDim: 2, q: []int64{B, T, 8}, v: []int64{B, S, 6}, causal: true, dynamic: true,
			opts: MultiHeadAttentionOptions{ValueDim: 5}, pyArgs: "value_dim=5"},
		{name: "no bias, output_shape 7", heads: 2, keyDim: 4, q: []int64{B, T, 8}, causal: true,
			opts: MultiHeadAttentionOptions{NoBias: true, OutputShape: 7}, pyArgs: "use_bias=False, output_shape=7"},
		{name: "dropout in training, seeded: the same masks as Keras", heads: 2, keyDim: 4, q: []int64{B, T, 8}, mask: padding, causal: true, training: true,
			opts: MultiHeadAttentionOptions{Dropout: 0.3, Seed: &seed}, pyArgs: "dropout=0.3, seed=5"},
	}
	r := rand.New(rand.NewSource(23))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tfgo.NewScope()
			opts := tc.opts
			opts.Name = "multi_head_attention"
			m := NewMultiHeadAttention(tc.heads, tc.keyDim, opts)
			in := map[string]*tfgo.Tensor{}
			feeds := map[tfgo.Output]any{}
			input := func(name string, shape []int64) tfgo.Output {
				v := ltRandn(t, r, 1, shape...)
				in[name] = v
				ph := tfgo.Placeholder(s.SubScope(name), tfgo.Float, shape...)
				if tc.dynamic {
					ph = tfgo.Placeholder(s.SubScope(name), tfgo.Float, -1, -1, shape[2])
				}
				feeds[ph] = v
				return ph
			}
			q := input("q", tc.q)
			v, k := q, tfgo.Output{}
			pyCall := `m(inputs["q"], inputs["q"]`
			if tc.v != nil {
				v = input("v", tc.v)
				pyCall = `m(inputs["q"], inputs["v"]`
			}
			if tc.k != nil {
				k = input("k", tc.k)
				pyCall += `, key=inputs["k"]`
			}
			var mask tfgo.Output
			if tc.mask != nil || tc.mask2D != nil {
				var mv any = tc.mask
				if tc.mask2D != nil {
					mv = tc.mask2D
				}
				mt, err := tfgo.NewTensor(mv)
				require.NoError(t, err)
				in["mask"] = mt
				mask = tfgo.Const(s.SubScope("mask"), mt)
				pyCall += `, attention_mask=inputs["mask"]`
			}
			pyCall += fmt.Sprintf(", use_causal_mask=%s, training=%s)", pyBool(tc.causal), pyBool(tc.training))
			ctx := NewContext(s, tc.training)
			var y tfgo.Output
			if mask.Op == nil && !tc.causal && tc.k == nil {
				if tc.v == nil {
					y = m.Call(ctx, q)
				} else {
					y = m.Call(ctx, q, v)
				}
			} else {
				y = m.CallWithMask(ctx, q, v, k, mask, tc.causal)
			}
			require.NoError(t, s.Err())
			sess := ltSession(t, s, m.Weights(), r, 0.5, in)
			got := ltRun(t, sess, feeds, y)[0]
			buildArgs := `(None, ` + fmt.Sprint(tc.q[1]) + `, ` + fmt.Sprint(tc.q[2]) + `)`
			vshape := tc.q
			if tc.v != nil {
				vshape = tc.v
			}
			kshape := vshape
			if tc.k != nil {
				kshape = tc.k
			}
			ref := interop.Python(t, ltPrelude+fmt.Sprintf(`
m = keras.layers.MultiHeadAttention(%d, %d, %sname="multi_head_attention")
m.build(%s, (None, %d, %d), (None, %d, %d))
m.set_weights(weights())
outputs["y"] = %s
describe(m)
`, tc.heads, tc.keyDim, pyArgs(tc.pyArgs), buildArgs, vshape[1], vshape[2], kshape[1], kshape[2], pyCall), in)
			allCloseTol(t, "attention output", ref["y"], got, kerasTol)
			ltCheckWeights(t, m, ref)
			ltCheckConfig(t, m, ref)
		})
	}
}

// pyArgs is args followed by ", " (nothing when empty).
func pyArgs(args string) string {
	if args == "" {
		return ""
	}
	return args + ", "
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func TestDropout(t *testing.T) {
	r := rand.New(rand.NewSource(24))
	const rate = 0.3
	x := ltRandn(t, r, 1, 200, 500)
	seed := int64(7)

	t.Run("inference is the identity", func(t *testing.T) {
		s := tfgo.NewScope()
		d := NewDropout(rate, DropoutOptions{Seed: &seed})
		ph := tfgo.Placeholder(s, tfgo.Float, -1, 500)
		y := d.Call(NewContext(s, false), ph)
		require.NoError(t, s.Err())
		assert.Equal(t, ph, y, "no op is added")
		assert.Empty(t, d.Weights())
	})

	t.Run("training: statistics, the sequence of masks equals Keras'", func(t *testing.T) {
		s := tfgo.NewScope()
		d := NewDropout(rate, DropoutOptions{Name: "dropout", Seed: &seed})
		ph := tfgo.Placeholder(s, tfgo.Float, -1, 500)
		y := d.Call(NewContext(s, true), ph)
		require.NoError(t, s.Err())
		require.NotNil(t, d.SeedState())
		assert.Equal(t, "dropout/seed_generator_state", d.SeedState().Name())
		assert.False(t, d.SeedState().Trainable())
		assert.Empty(t, d.Weights(), "the seed state is not a weight, as in Keras")
		sess := ltSession(t, s, nil, r, 0, nil)
		xs := floats(t, x)
		scale := float32(1 / (1 - rate))
		var runs [][]float32
		for step := 0; step < 3; step++ {
			ys := floats(t, ltRun(t, sess, map[tfgo.Output]any{ph: x}, y)[0])
			dropped := 0
			for i, v := range ys {
				if v == 0 {
					dropped++
				} else {
					require.Equal(t, xs[i]*scale, v, "kept values are scaled by exactly 1/(1-rate)")
				}
			}
			frac := float64(dropped) / float64(len(ys))
			t.Logf("step %d: dropped %.4f of %d values (rate %.2f)", step, frac, len(ys), rate)
			assert.InDelta(t, rate, frac, 0.01)
			runs = append(runs, ys)
		}
		assert.NotEqual(t, runs[0], runs[1], "each run draws a new mask")
		ref := interop.Python(t, ltPrelude+`
d = keras.layers.Dropout(0.3, seed=7, name="dropout")
for i in range(3):
    outputs["y%d" % i] = d(inputs["x"], training=True)
outputs["config"] = json.dumps(d.get_config())
`, map[string]*tfgo.Tensor{"x": x})
		for i := range runs {
			assert.Equal(t, floats(t, ref[fmt.Sprintf("y%d", i)]), runs[i], "call %d is bit-identical to Keras'", i)
		}
		ltCheckConfig(t, d, ref)

		// A new session starts the sequence again.
		sess2, err := tfgo.NewSession(s, tfgo.SessionOptions{})
		require.NoError(t, err)
		defer sess2.Close()
		_, err = sess2.Run(nil, nil, tfgo.GlobalVariablesInitializer(s))
		require.NoError(t, err)
		again, err := sess2.Run(map[tfgo.Output]any{ph: x}, []tfgo.Output{y})
		require.NoError(t, err)
		assert.Equal(t, runs[0], floats(t, again[0]))
	})

	t.Run("two calls in one graph draw different masks", func(t *testing.T) {
		s := tfgo.NewScope()
		d := NewDropout(0.5, DropoutOptions{})
		ctx := NewContext(s, true)
		one := tfgo.Const(s, [][]float32{{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}})
		a, b := d.Call(ctx, one), d.Call(ctx, one)
		sess := ltSession(t, s, nil, r, 0, nil)
		out := ltRun(t, sess, nil, a, b)
		assert.NotEqual(t, floats(t, out[0]), floats(t, out[1]))
	})

	t.Run("rate 0 and 1", func(t *testing.T) {
		s := tfgo.NewScope()
		ctx := NewContext(s, true)
		ph := tfgo.Placeholder(s, tfgo.Float, -1, 500)
		assert.Equal(t, ph, NewDropout(0, DropoutOptions{}).Call(ctx, ph))
		zero := NewDropout(1, DropoutOptions{}).Call(ctx, ph)
		sess := ltSession(t, s, nil, r, 0, nil)
		for _, v := range floats(t, ltRun(t, sess, map[tfgo.Output]any{ph: x}, zero)[0]) {
			require.Zero(t, v)
		}
	})
}

func TestPositionalEmbeddingMatchesKeras(t *testing.T) {
	r := rand.New(rand.NewSource(25))
	for _, dynamic := range []bool{false, true} {
		t.Run(fmt.Sprintf("dynamic length %v", dynamic), func(t *testing.T) {
			s := tfgo.NewScope()
			p := NewPositionalEmbedding(10, 6, PositionalEmbeddingOptions{})
			x := ltRandn(t, r, 1, 3, 7, 6)
			ph := tfgo.Placeholder(s, tfgo.Float, -1, 7, 6)
			if dynamic {
				ph = tfgo.Placeholder(s, tfgo.Float, -1, -1, 6)
			}
			y := p.Call(NewContext(s, false), ph)
			require.NoError(t, s.Err())
			in := map[string]*tfgo.Tensor{"x": x}
			sess := ltSession(t, s, p.Weights(), r, 1, in)
			got := ltRun(t, sess, map[tfgo.Output]any{ph: x}, y)[0]
			// The Python twin (python/gotf/keraslike.py) is keras_hub's
			// PositionEmbedding (not installed) plus the addition.
			ref := interop.Python(t, ltPrelude+fmt.Sprintf(`
from gotf.keraslike import PositionalEmbedding
p = PositionalEmbedding(10, 6, name=%q)
p.build((None, 7, 6))
p.set_weights(weights())
outputs["y"] = p(inputs["x"])
describe(p)
`, p.Name()), in)
			allCloseTol(t, "x + position embeddings", ref["y"], got, kerasTol)
			ltCheckWeights(t, p, ref)
		})
	}
}

func TestActivationLayerMatchesKeras(t *testing.T) {
	r := rand.New(rand.NewSource(26))
	x := ltRandn(t, r, 2, 3, 4, 5)
	for _, act := range []string{"linear", "relu", "gelu", "tanh", "sigmoid", "softmax"} {
		t.Run(act, func(t *testing.T) {
			s := tfgo.NewScope()
			a := NewActivation(act, ActivationOptions{Name: "activation"})
			y := a.Call(NewContext(s, false), tfgo.Const(s, x))
			require.NoError(t, s.Err())
			sess := ltSession(t, s, nil, r, 0, nil)
			got := ltRun(t, sess, nil, y)[0]
			ref := interop.Python(t, ltPrelude+fmt.Sprintf(`
a = keras.layers.Activation(%q, name="activation")
outputs["y"] = a(inputs["x"])
describe(a)
`, act), map[string]*tfgo.Tensor{"x": x})
			allCloseTol(t, act, ref["y"], got, kerasTol)
			ltCheckWeights(t, a, ref)
			ltCheckConfig(t, a, ref)
		})
	}
}

// ltPyBlock imports the Python twin of TransformerBlock, a layer of Keras
// layers (python/gotf/keraslike.py).
const ltPyBlock = `
from gotf.keraslike import TransformerBlock
`

type blockCase struct {
	name     string
	opts     TransformerBlockOptions
	training bool
	mask     bool
}

func ltBlockCases() []blockCase {
	seed := int64(11)
	return []blockCase{
		{name: "post-LN causal gelu", opts: TransformerBlockOptions{}},
		{name: "pre-LN causal gelu", opts: TransformerBlockOptions{PreLN: true}},
		{name: "post-LN relu, not causal, padding mask, epsilon 1e-3", opts: TransformerBlockOptions{Activation: "relu", NoCausalMask: true, Epsilon: 1e-3}, mask: true},
		{name: "pre-LN causal, padding mask, key_dim 3", opts: TransformerBlockOptions{PreLN: true, KeyDim: 3}, mask: true},
		{name: "post-LN training with seeded dropout 0.2", opts: TransformerBlockOptions{Dropout: 0.2, Seed: &seed}, training: true},
		{name: "pre-LN training with seeded dropout 0.2", opts: TransformerBlockOptions{PreLN: true, Dropout: 0.2, Seed: &seed}, training: true},
	}
}

// ltBlock builds a transformer_block on x (and a padding mask) in Go, and
// returns the Python code building the same block of Keras layers (as b,
// weights set) and computing it (as y, inside a GradientTape).
func ltBlock(t *testing.T, s *tfgo.Scope, tc blockCase, x tfgo.Output, in map[string]*tfgo.Tensor) (*TransformerBlock, tfgo.Output, string) {
	const D, H, FF = 8, 2, 16
	opts := tc.opts
	opts.Name = "transformer_block"
	b := NewTransformerBlock(D, H, FF, opts)
	var mask tfgo.Output
	pyMask := "None"
	if tc.mask {
		const B, T = 3, 6
		m := make([][][]bool, B)
		for i := range m {
			m[i] = make([][]bool, 1)
			m[i][0] = make([]bool, T)
			for j := range m[i][0] {
				m[i][0][j] = int64(j) < T-int64(i)
			}
		}
		mt, err := tfgo.NewTensor(m)
		require.NoError(t, err)
		in["mask"] = mt
		mask = tfgo.Const(s, mt)
		pyMask = `inputs["mask"]`
	}
	y := b.CallWithMask(NewContext(s, tc.training), x, mask)
	require.NoError(t, s.Err())
	seed := int64(0)
	if tc.opts.Seed != nil {
		seed = *tc.opts.Seed
	}
	c := b.Config()
	py := ltPrelude + ltPyBlock + fmt.Sprintf(`
b = TransformerBlock(%d, %d, %d, key_dim=%d, dropout=%g, epsilon=%g, pre_ln=%s, activation=%q, causal=%s, seed=%d, name="transformer_block")
b(inputs["x"], attention_mask=%s)
b.set_weights(weights())
with tf.GradientTape() as tape:
    y = b(inputs["x"], attention_mask=%s, training=%s)
    loss = tf.reduce_sum(y * inputs["c"])
`, D, H, FF, c["key_dim"], tc.opts.Dropout, c["epsilon"], pyBool(tc.opts.PreLN), c["activation"], pyBool(c["causal"].(bool)), seed,
		pyMask, pyMask, pyBool(tc.training))
	return b, y, py
}

func TestTransformerBlockMatchesKeras(t *testing.T) {
	r := rand.New(rand.NewSource(27))
	for _, tc := range ltBlockCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := tfgo.NewScope()
			xv := ltRandn(t, r, 1, 3, 6, 8)
			in := map[string]*tfgo.Tensor{"x": xv, "c": ltRandn(t, r, 1, 3, 6, 8)}
			x := tfgo.Placeholder(s, tfgo.Float, -1, -1, 8) // batch and length known only at run time
			b, y, py := ltBlock(t, s, tc, x, in)
			sess := ltSession(t, s, b.Weights(), r, 0.4, in)
			got := ltRun(t, sess, map[tfgo.Output]any{x: xv}, y)[0]
			ref := interop.Python(t, py+`
outputs["y"] = y
describe(b)
`, in)
			allCloseTol(t, "block output", ref["y"], got, kerasTol)
			ltCheckWeights(t, b, ref)
		})
	}
}

// Gradients of a scalar loss through the block with respect to every
// weight handle, in Go (tfgo.Gradients) and with tf.GradientTape.
func TestTransformerBlockGradientsMatchKeras(t *testing.T) {
	r := rand.New(rand.NewSource(28))
	for _, tc := range ltBlockCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := tfgo.NewScope()
			xv, cv := ltRandn(t, r, 1, 3, 6, 8), ltRandn(t, r, 1, 3, 6, 8)
			in := map[string]*tfgo.Tensor{"x": xv, "c": cv}
			x := tfgo.Const(s, xv)
			b, y, py := ltBlock(t, s, tc, x, in)
			loss := tfgo.Sum(s, tfgo.Mul(s, y, tfgo.Const(s, cv)), tfgo.Const(s, []int32{0, 1, 2}))
			var handles []tfgo.Output
			for _, w := range b.Weights() {
				handles = append(handles, w.Handle())
			}
			grads := tfgo.Gradients(s, []tfgo.Output{loss}, handles, nil)
			require.NoError(t, s.Err(), "the gradient graph builds")
			for i, g := range grads {
				require.NotNil(t, g.Op, "gradient of %s", b.Weights()[i].Path)
			}
			sess := ltSession(t, s, b.Weights(), r, 0.4, in)
			got := ltRun(t, sess, nil, append([]tfgo.Output{loss}, grads...)...)
			ref := interop.Python(t, py+`
outputs["loss"] = loss
for i, g in enumerate(tape.gradient(loss, b.weights)):
    outputs["g%d" % i] = tf.convert_to_tensor(g)
`, in)
			// The loss: one float32 sum, both sides rounding each product
			// the same way but summing in another order: a few ulps.
			allClose(t, "loss", ref["loss"], got[0], 0, 1e-6)
			// The gradients: both are sums over the same backward graph,
			// built from different but equivalent ops (Keras' einsums, our
			// matmuls), so their rounding follows the largest magnitudes
			// flowing through the block, not each element (the key bias'
			// gradient is zero in exact arithmetic and is that rounding
			// alone). The bound is relative to the largest gradient element.
			scale := 0.0
			for i := range b.Weights() {
				scale = math.Max(scale, ltMaxDiff(floats(t, ref[fmt.Sprintf("g%d", i)]), make([]float32, ref[fmt.Sprintf("g%d", i)].NumElements())))
			}
			worst, worstName := 0.0, ""
			for i, w := range b.Weights() {
				want := ref[fmt.Sprintf("g%d", i)]
				allClose(t, "gradient of "+w.Path, want, got[i+1], 1e-6*scale, 0)
				if d := ltMaxDiff(floats(t, want), floats(t, got[i+1])); d > worst {
					worst, worstName = d, w.Path
				}
			}
			worst /= scale
			t.Logf("%d weight gradients: max |Go - TF| / max |gradient| = %.3g (%s)", len(grads), worst, worstName)
		})
	}
}

func TestLayersBadInput(t *testing.T) {
	check := func(t *testing.T, l Layer, want string, inputs ...func(s *tfgo.Scope) tfgo.Output) {
		t.Helper()
		s := tfgo.NewScope()
		xs := make([]tfgo.Output, len(inputs))
		for i, f := range inputs {
			xs[i] = f(s)
		}
		y := l.Call(NewContext(s, true), xs...)
		assert.Nil(t, y.Op)
		err := s.Err()
		require.Error(t, err)
		prefix := fmt.Sprintf("layer %q (%s): ", l.Name(), l.ClassName())
		assert.Contains(t, err.Error(), prefix)
		assert.Contains(t, err.Error(), want)
	}
	ph := func(dt tfgo.DataType, dims ...int64) func(s *tfgo.Scope) tfgo.Output {
		return func(s *tfgo.Scope) tfgo.Output { return tfgo.Placeholder(s, dt, dims...) }
	}
	t.Run("Embedding", func(t *testing.T) {
		check(t, NewEmbedding(10, 4, EmbeddingOptions{Name: "tokens"}), "needs int32, int64 or floating-point ids, got string", ph(tfgo.String, 2, 3))
		check(t, NewEmbedding(0, 4, EmbeddingOptions{Name: "tokens"}), "must be positive", ph(tfgo.Int32, 2, 3))
	})
	t.Run("LayerNormalization", func(t *testing.T) {
		check(t, NewLayerNormalization(LayerNormalizationOptions{Name: "ln"}), "floating-point", ph(tfgo.Int32, 2, 3))
		check(t, NewLayerNormalization(LayerNormalizationOptions{Name: "ln"}), "axis -1 of known size", ph(tfgo.Float))
		check(t, NewLayerNormalization(LayerNormalizationOptions{Name: "ln", Axis: 2}), "axis 2 of known size", ph(tfgo.Float, 4, 3))
	})
	t.Run("MultiHeadAttention", func(t *testing.T) {
		m := func() Layer { return NewMultiHeadAttention(2, 4, MultiHeadAttentionOptions{Name: "attn"}) }
		check(t, m(), "needs query of rank 3", ph(tfgo.Float, 2, 8))
		check(t, m(), "needs value of rank 3", ph(tfgo.Float, 2, 5, 8), ph(tfgo.Float, 2, 5, 3, 8))
		check(t, m(), "floating-point query", ph(tfgo.Int32, 2, 5, 8))
		check(t, m(), "floating-point key of the query's dtype float32, got int32", ph(tfgo.Float, 2, 5, 8), ph(tfgo.Float, 2, 5, 8), ph(tfgo.Int32, 2, 5, 8))
		check(t, m(), "value and key must have the same length, got 5 and 4", ph(tfgo.Float, 2, 5, 8), ph(tfgo.Float, 2, 5, 8), ph(tfgo.Float, 2, 4, 8))
		check(t, m(), "takes 1 to 3 inputs")

		s := tfgo.NewScope()
		mm := NewMultiHeadAttention(2, 4, MultiHeadAttentionOptions{Name: "attn"})
		x := tfgo.Placeholder(s, tfgo.Float, 2, 5, 8)
		mm.CallWithMask(NewContext(s, false), x, x, tfgo.Output{}, tfgo.Placeholder(s, tfgo.Bool, 2, 5, 6), false)
		require.ErrorContains(t, s.Err(), `layer "attn" (MultiHeadAttention): attention mask of shape [2 5 6] does not broadcast`)
		s = tfgo.NewScope()
		x = tfgo.Placeholder(s, tfgo.Float, 2, 5, 8)
		mm.CallWithMask(NewContext(s, false), x, x, tfgo.Output{}, tfgo.Placeholder(s, tfgo.Bool, 5), false)
		require.ErrorContains(t, s.Err(), "attention mask of rank 2 to 4")
		s = tfgo.NewScope()
		ctx := NewContext(s, false)
		mm = NewMultiHeadAttention(2, 4, MultiHeadAttentionOptions{Name: "attn"})
		mm.Call(ctx, tfgo.Placeholder(s, tfgo.Float, 2, 5, 8))
		mm.Call(ctx, tfgo.Placeholder(s, tfgo.Float, 2, 5, 6))
		require.ErrorContains(t, s.Err(), "was built for query with 8 features, got 6")
	})
	t.Run("Dropout", func(t *testing.T) {
		check(t, NewDropout(0.5, DropoutOptions{Name: "drop"}), "floating-point", ph(tfgo.Int64, 2, 3))
		check(t, NewDropout(1.5, DropoutOptions{Name: "drop"}), "rate must be in [0, 1], got 1.5", ph(tfgo.Float, 2, 3))
	})
	t.Run("PositionalEmbedding", func(t *testing.T) {
		p := func() Layer { return NewPositionalEmbedding(8, 4, PositionalEmbeddingOptions{Name: "pos"}) }
		check(t, p(), "rank >= 2 with last dimension output_dim=4", ph(tfgo.Float, 4))
		check(t, p(), "rank >= 2 with last dimension output_dim=4, got shape (2, 3, 5)", ph(tfgo.Float, 2, 3, 5))
		check(t, p(), "longer than sequence_length=8", ph(tfgo.Float, 2, 9, 4))
		check(t, p(), "floating-point", ph(tfgo.Int32, 2, 3, 4))
	})
	t.Run("Activation", func(t *testing.T) {
		check(t, NewActivation("relu", ActivationOptions{Name: "act"}), "floating-point", ph(tfgo.Int32, 2, 3))
		check(t, NewActivation("swishy", ActivationOptions{Name: "act"}), `unknown activation "swishy"`, ph(tfgo.Float, 2, 3))
		check(t, NewActivation("softmax", ActivationOptions{Name: "act"}), "rank >= 1", func(s *tfgo.Scope) tfgo.Output { return tfgo.Const(s, float32(1)) })
	})
	t.Run("TransformerBlock", func(t *testing.T) {
		b := func() Layer { return NewTransformerBlock(8, 2, 16, TransformerBlockOptions{Name: "block"}) }
		check(t, b(), "needs inputs of shape [batch, length, d_model=8], got shape (2, 8)", ph(tfgo.Float, 2, 8))
		check(t, b(), "needs inputs of shape [batch, length, d_model=8], got shape (2, 5, 6)", ph(tfgo.Float, 2, 5, 6))
		check(t, b(), "floating-point", ph(tfgo.Int32, 2, 5, 8))
		check(t, NewTransformerBlock(8, 3, 16, TransformerBlockOptions{Name: "block", KeyDim: -1}), "must be positive", ph(tfgo.Float, 2, 5, 8))
		check(t, NewTransformerBlock(8, 2, 16, TransformerBlockOptions{Name: "block", Activation: "swishy"}), "unknown activation", ph(tfgo.Float, 2, 5, 8))
	})
}

// The layers also build and run under mixed_float16 and mixed_bfloat16
// (float32 weights cast to the compute dtype), close to float32.
func TestTransformerBlockHalfPrecision(t *testing.T) {
	r := rand.New(rand.NewSource(29))
	xv := ltRandn(t, r, 1, 2, 5, 8)
	ids, err := tfgo.NewTensor([][]int32{{1, 2, 3, 4, 5}, {6, 7, 8, 9, 0}})
	require.NoError(t, err)
	s := tfgo.NewScope()
	// One set of layers per policy, with the same names (so the same
	// initial weights: the seeds derive from the names) in separate scopes.
	type layers struct{ emb, pos, block, ln, act Layer }
	sets := map[tfgo.DataType]layers{}
	for dt, p := range map[tfgo.DataType]mixedprecision.Policy{tfgo.Float: mixedprecision.Float32, tfgo.Half: mixedprecision.MixedFloat16, tfgo.BFloat16: mixedprecision.MixedBFloat16} {
		mixedprecision.SetGlobalPolicy(p)
		sets[dt] = layers{
			NewEmbedding(10, 8, EmbeddingOptions{Name: "emb"}), NewPositionalEmbedding(5, 8, PositionalEmbeddingOptions{Name: "pos"}),
			NewTransformerBlock(8, 2, 16, TransformerBlockOptions{Name: "block", PreLN: true, Dropout: 0.1}),
			NewLayerNormalization(LayerNormalizationOptions{Name: "ln"}), NewActivation("softmax", ActivationOptions{Name: "act"}),
		}
	}
	mixedprecision.SetGlobalPolicy(mixedprecision.Float32)
	forward := func(dt tfgo.DataType, training bool) tfgo.Output {
		l := sets[dt]
		ctx := NewContext(s.SubScope(dt.String()), training)
		x := l.pos.Call(ctx, l.emb.Call(ctx, tfgo.Const(s, ids)))
		x = tfgo.AddV2(ctx.Scope, x, tfgo.Cast(ctx.Scope, tfgo.Const(s, xv), dt))
		y := l.act.Call(ctx, l.ln.Call(ctx, l.block.Call(ctx, x)))
		if y.Op != nil && y.DataType() != dt {
			t.Errorf("%s: output is %s", dt, y.DataType())
		}
		return tfgo.Cast(ctx.Scope, y, tfgo.Float)
	}
	outs := []tfgo.Output{forward(tfgo.Float, false), forward(tfgo.Half, false), forward(tfgo.BFloat16, false),
		forward(tfgo.Float, true), forward(tfgo.Half, true), forward(tfgo.BFloat16, true)}
	require.NoError(t, s.Err())
	sess := ltSession(t, s, nil, r, 0, nil)
	res := ltRun(t, sess, nil, outs...)
	// Inference: each half-precision output is the float32 one within the
	// dtype's precision: float16 keeps 11 significant bits (2^-11 ~ 5e-4
	// relative, a few roundings through the block ~2e-3), bfloat16 8 (~4e-3,
	// ~2e-2).
	tols := []float64{2e-3, 2e-2}
	for i, tol := range tols {
		allClose(t, []string{"float16", "bfloat16"}[i], res[0], res[1+i], tol, 0)
	}
	// Training: each forward call draws its own dropout mask (the seed
	// generator advances per call), so the outputs of the three dtypes are
	// not comparable element by element. Each must still be what the
	// model's final softmax makes of it, computed in that dtype: values in
	// [0, 1] whose rows (5 positions x 8 classes) sum to 1 within the
	// dtype's precision, and not the inference output (dropout acted).
	for i, out := range res[3:] {
		name := []string{"float32", "float16", "bfloat16"}[i]
		v := floats(t, out)
		require.Len(t, v, 80, name)
		sums := make([]float32, 10)
		ones := make([]float32, 10)
		for j, p := range v {
			require.True(t, p >= 0 && p <= 1, "%s training output [%d] = %v is not a probability", name, j, p)
			sums[j/8] += p
			ones[j/8] = 1
		}
		tol := append([]float64{1e-6}, tols...)[i]
		testutil.AllClose(t, name+" training: softmax rows sum to 1", ones, sums, tol, 0)
		assert.NotEqual(t, floats(t, res[i%3]), v, "%s training output equals the inference output", name)
	}
}

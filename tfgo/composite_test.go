package tfgo

import (
	endian "encoding/binary"
	"math"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// compRandTensor is a float32 tensor of the shape with N(0, scale²) values.
func compRandTensor(t *testing.T, r *rand.Rand, scale float64, shape ...int64) *Tensor {
	t.Helper()
	n := numElements(shape)
	buf := make([]byte, 4*n)
	for i := int64(0); i < n; i++ {
		endian.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(r.NormFloat64()*scale)))
	}
	tn, err := NewTensorFromBytes(Float, shape, buf)
	require.NoError(t, err)
	return tn
}

// compRun opens a session on s, runs targets, then fetches.
func compRun(t *testing.T, s *Scope, feeds map[Output]any, fetches []Output, targets ...*Operation) []*Tensor {
	t.Helper()
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { sess.Close() })
	if len(targets) > 0 {
		_, err = sess.Run(nil, nil, targets...)
		require.NoError(t, err)
	}
	out, err := sess.Run(feeds, fetches)
	require.NoError(t, err)
	return out
}

// compAssertClose checks dtype, shape and every element within tol (abs),
// and returns the largest difference.
func compAssertClose(t *testing.T, want, got *Tensor, tol float64, what string) float64 {
	t.Helper()
	require.Equal(t, want.DataType(), got.DataType(), what)
	require.Equal(t, want.Shape(), got.Shape(), what)
	w, g := asFloat64s(t, want), asFloat64s(t, got)
	maxDiff := 0.0
	for i := range w {
		d := math.Abs(w[i] - g[i])
		if w[i] == g[i] || math.IsNaN(w[i]) && math.IsNaN(g[i]) { // incl. equal infinities
			d = 0
		}
		if !(d <= tol) {
			t.Errorf("%s: element %d: got %v, want %v (diff %g > %g)", what, i, g[i], w[i], d, tol)
			return d
		}
		maxDiff = math.Max(maxDiff, d)
	}
	t.Logf("%s: %d elements, max |diff| %g", what, len(w), maxDiff)
	return maxDiff
}

// Both Gelu forms equal keras.activations.gelu and tf.nn.gelu. The Go graph
// runs the same kernels on the same float32 inputs, so agreement is within
// 1e-6 absolute (outputs reach ~4.5, whose float32 spacing is 4.8e-7; a
// Grappler rewrite may round once differently).
func TestCompositeGeluMatchesKeras(t *testing.T) {
	r := rand.New(rand.NewSource(10))
	x := compRandTensor(t, r, 1.5, 4, 7, 33)
	s := NewScope()
	px := Placeholder(s, Float, -1, 7, 33)
	exact := Gelu(s, px, false)
	approx := Gelu(s, px, true)
	got := compRun(t, s, map[Output]any{px: x}, []Output{exact, approx})
	ref := python(t, `
import keras
x = inputs["x"]
outputs["exact"] = keras.activations.gelu(x, approximate=False)
outputs["approx"] = keras.activations.gelu(x, approximate=True)
outputs["tf_exact"] = tf.nn.gelu(x, approximate=False)
outputs["tf_approx"] = tf.nn.gelu(x, approximate=True)
`, map[string]*Tensor{"x": x})
	compAssertClose(t, ref["exact"], got[0], 1e-6, "gelu exact vs keras")
	compAssertClose(t, ref["approx"], got[1], 1e-6, "gelu approximate vs keras")
	compAssertClose(t, ref["tf_exact"], got[0], 1e-6, "gelu exact vs tf.nn.gelu")
	compAssertClose(t, ref["tf_approx"], got[1], 1e-6, "gelu approximate vs tf.nn.gelu")
}

// LayerNormalize equals keras.layers.LayerNormalization with the same
// gamma/beta: over the last axis, with scale and/or center off, and over a
// middle axis (gamma/beta reshaped for broadcasting as Keras does).
// Tolerance 1e-5: the outputs reach ~15 (gamma and beta are N(0,1), the
// normalized values up to ~4), where the float32 spacing is ~1e-6, and the
// reductions (mean, variance over 64 elements) may be summed in another
// order by Grappler/oneDNN-rewritten graphs than by eager kernels, moving
// the result a few ulps.
func TestCompositeLayerNormMatchesKeras(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	x := compRandTensor(t, r, 2, 3, 5, 64)
	gamma := compRandTensor(t, r, 1, 64)
	beta := compRandTensor(t, r, 1, 64)
	gamma5 := compRandTensor(t, r, 1, 5)
	beta5 := compRandTensor(t, r, 1, 5)
	const eps = float32(1e-3)

	s := NewScope()
	px := Placeholder(s, Float, -1, 5, 64)
	g, b := Const(s, gamma), Const(s, beta)
	g5, b5 := Const(s, gamma5), Const(s, beta5)
	fetch := []Output{
		LayerNormalize(s, px, g, b, -1, eps),
		LayerNormalize(s, px, Output{}, b, -1, eps),
		LayerNormalize(s, px, g, Output{}, 2, eps),
		LayerNormalize(s, px, Output{}, Output{}, -1, 1e-5),
		LayerNormalize(s, px, g5, b5, 1, eps),
	}
	require.NoError(t, s.Err())
	got := compRun(t, s, map[Output]any{px: x}, fetch)
	ref := python(t, `
import keras
x, g, b, g5, b5 = inputs["x"], inputs["g"], inputs["b"], inputs["g5"], inputs["b5"]
eps = float(np.float32(1e-3))
def ln(weights, axis=-1, epsilon=eps, **kw):
    layer = keras.layers.LayerNormalization(axis=axis, epsilon=epsilon, **kw)
    layer.build(x.shape)
    layer.set_weights(weights)
    return layer(x)
outputs["full"] = ln([g, b])
outputs["center_only"] = ln([b], scale=False)
outputs["scale_only"] = ln([g], axis=2, center=False)
outputs["plain"] = ln([], epsilon=float(np.float32(1e-5)), scale=False, center=False)
outputs["axis1"] = ln([g5, b5], axis=1)
`, map[string]*Tensor{"x": x, "g": gamma, "b": beta, "g5": gamma5, "b5": beta5})
	for i, k := range []string{"full", "center_only", "scale_only", "plain", "axis1"} {
		compAssertClose(t, ref[k], got[i], 1e-5, "layer norm "+k)
	}
}

// MaskedSoftmax equals keras.layers.Softmax called with a mask: a padding
// mask, a causal mask from CausalMask, both combined as MultiHeadAttention
// combines them, a numeric (0/1 float) mask, a row with every key masked
// (zeros), a softmax over a middle axis; and with no mask tf.nn.softmax.
// Probabilities are in [0, 1], so 1e-6 absolute is ~8 float32 ulps at 1.
func TestCompositeMaskedSoftmaxMatchesKeras(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	const B, H, T = 2, 3, 6
	logits := compRandTensor(t, r, 3, B, H, T, T)
	// Batch 0 pads its last two positions, batch 1 none.
	pad := make([]bool, B*T)
	for i := range pad {
		pad[i] = !(i/T == 0 && i%T >= T-2)
	}
	padT, err := NewTensorFromBytes(Bool, []int64{B, 1, 1, T}, boolBytes(pad))
	require.NoError(t, err)
	// A float 0/1 mask of the logits' shape with one fully masked row.
	fm := make([]byte, 4*B*H*T*T)
	for i := 0; i < B*H*T*T; i++ {
		v := float32(0)
		row := i / T
		if row != 4 && r.Float64() < 0.7 {
			v = 1
		}
		endian.LittleEndian.PutUint32(fm[4*i:], math.Float32bits(v))
	}
	floatMask, err := NewTensorFromBytes(Float, []int64{B, H, T, T}, fm)
	require.NoError(t, err)

	s := NewScope()
	pl := Placeholder(s, Float, B, H, T, T)
	ppad := Placeholder(s, Bool, B, 1, 1, T)
	pfm := Placeholder(s, Float, B, H, T, T)
	causal := CausalMask(s, Const(s, int32(T)))
	both := LogicalAnd(s, ppad, causal)
	fetch := []Output{
		MaskedSoftmax(s, pl, Output{}, -1),
		MaskedSoftmax(s, pl, ppad, -1),
		MaskedSoftmax(s, pl, causal, -1),
		MaskedSoftmax(s, pl, both, -1),
		MaskedSoftmax(s, pl, pfm, -1),
		MaskedSoftmax(s, pl, pfm, 1),
		MaskedSoftmax(s, pl, Output{}, 2),
	}
	require.NoError(t, s.Err())
	got := compRun(t, s, map[Output]any{pl: logits, ppad: padT, pfm: floatMask}, fetch)
	ref := python(t, `
import keras
x, pad, fm = inputs["x"], inputs["pad"], inputs["fm"]
T = x.shape[-1]
mha = keras.layers.MultiHeadAttention(num_heads=1, key_dim=2)
causal = mha._compute_causal_mask(np.zeros((1, T, 2), np.float32))
sm = keras.layers.Softmax(axis=-1)
outputs["plain"] = tf.nn.softmax(x)
outputs["pad"] = sm(x, mask=pad)
outputs["causal"] = sm(x, mask=causal)
outputs["both"] = sm(x, mask=tf.logical_and(pad, causal))
outputs["float"] = sm(x, mask=fm)
outputs["float_axis1"] = keras.layers.Softmax(axis=1)(x, mask=fm)
outputs["plain_axis2"] = tf.nn.softmax(x, axis=2)
`, map[string]*Tensor{"x": logits, "pad": padT, "fm": floatMask})
	for i, k := range []string{"plain", "pad", "causal", "both", "float", "float_axis1", "plain_axis2"} {
		compAssertClose(t, ref[k], got[i], 1e-6, "softmax "+k)
	}
	// Masked keys get exactly 0, and the fully masked row is all zeros.
	p, err := Float32s(got[4])
	require.NoError(t, err)
	m, err := Float32s(floatMask)
	require.NoError(t, err)
	for i := range p {
		if m[i] == 0 {
			require.Zero(t, p[i], "masked position %d", i)
		}
	}
	// Padded keys of batch 0 get 0 in the padding-masked softmax.
	pp, err := Float32s(got[1])
	require.NoError(t, err)
	for i := 0; i < H*T*T; i++ {
		if i%T >= T-2 {
			require.Zero(t, pp[i])
		}
	}
}

func boolBytes(bs []bool) []byte {
	out := make([]byte, len(bs))
	for i, b := range bs {
		if b {
			out[i] = 1
		}
	}
	return out
}

// CausalMask equals MultiHeadAttention._compute_causal_mask (without its
// leading 1) for several lengths fed at run time, exactly.
func TestCompositeCausalMaskMatchesKeras(t *testing.T) {
	s := NewScope()
	n := Placeholder(s, Int32)
	n64 := Placeholder(s, Int64)
	mask := CausalMask(s, n)
	mask64 := CausalMask(s, n64)
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	for _, length := range []int{1, 2, 5, 9} {
		out, err := sess.Run(map[Output]any{n: int32(length), n64: int64(length)}, []Output{mask, mask64})
		require.NoError(t, err)
		lt, err := NewTensor(int32(length))
		require.NoError(t, err)
		ref := python(t, `
import keras
T = int(inputs["T"])
mha = keras.layers.MultiHeadAttention(num_heads=1, key_dim=2)
outputs["mask"] = mha._compute_causal_mask(np.zeros((1, T, 2), np.float32))[0]
`, map[string]*Tensor{"T": lt})
		want, err := Value(ref["mask"])
		require.NoError(t, err)
		for i, o := range out {
			require.Equal(t, []int64{int64(length), int64(length)}, o.Shape())
			v, err := Value(o)
			require.NoError(t, err)
			assert.Equal(t, want, v, "length %d, input %d", length, i)
		}
	}
}

// ClipByGlobalNorm equals tf.clip_by_global_norm: clipping (norm above the
// limit), leaving alone (norm below), a zero Output skipped as TensorFlow
// skips None, and a non-finite norm turning everything into NaN. The norm
// of ~2000 N(0,4) values is ~90 and the clipped values are O(1): 1e-5 on
// the norm (float32 spacing 7.6e-6 at 90; the sum of squares may be
// accumulated in another order) and 1e-6 on the values.
func TestCompositeClipByGlobalNormMatchesTF(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	a := compRandTensor(t, r, 2, 32, 48)
	b := compRandTensor(t, r, 2, 48)
	c := compRandTensor(t, r, 2, 4, 5, 6)
	inf, err := NewTensor([]float32{1, float32(math.Inf(1))})
	require.NoError(t, err)

	s := NewScope()
	pa, pb, pc := Const(s, a), Const(s, b), Const(s, c)
	clipped, norm := ClipByGlobalNorm(s, []Output{pa, pb, {}, pc}, 1.5)
	kept, norm2 := ClipByGlobalNorm(s, []Output{pa, pb, pc}, 1000)
	nan, norm3 := ClipByGlobalNorm(s, []Output{pb, Const(s, inf)}, 1)
	require.NoError(t, s.Err())
	require.Len(t, clipped, 4)
	assert.Nil(t, clipped[2].Op, "a zero Output stays zero")
	got := compRun(t, s, nil, []Output{clipped[0], clipped[1], clipped[3], norm, kept[0], kept[1], kept[2], norm2, nan[0], nan[1], norm3})
	ref := python(t, `
a, b, c, inf = inputs["a"], inputs["b"], inputs["c"], inputs["inf"]
cl, n = tf.clip_by_global_norm([a, b, None, c], 1.5)
outputs["a"], outputs["b"], outputs["c"], outputs["norm"] = cl[0], cl[1], cl[3], n
kept, n2 = tf.clip_by_global_norm([a, b, c], 1000.0)
outputs["ka"], outputs["kb"], outputs["kc"], outputs["norm2"] = kept[0], kept[1], kept[2], n2
nan, n3 = tf.clip_by_global_norm([b, inf], 1.0)
outputs["nb"], outputs["ninf"], outputs["norm3"] = nan[0], nan[1], n3
`, map[string]*Tensor{"a": a, "b": b, "c": c, "inf": inf})
	for i, k := range []string{"a", "b", "c", "norm", "ka", "kb", "kc", "norm2", "nb", "ninf", "norm3"} {
		tol := 1e-6
		if k == "norm" || k == "norm2" {
			tol = 1e-5
		}
		compAssertClose(t, ref[k], got[i], tol, "clip "+k)
	}
	n, err := Float32s(got[3])
	require.NoError(t, err)
	assert.Greater(t, n[0], float32(1.5), "the first list is clipped")
	n3, err := Float32s(got[10])
	require.NoError(t, err)
	assert.True(t, math.IsInf(float64(n3[0]), 1))
	nv, err := Float32s(got[8])
	require.NoError(t, err)
	assert.True(t, math.IsNaN(float64(nv[0])), "a non-finite norm gives NaN")
}

// Bad inputs are errors naming the composite, never panics.
func TestCompositeErrors(t *testing.T) {
	cases := map[string]struct {
		build func(s *Scope)
		op    string
	}{
		"gelu of ints": {func(s *Scope) { Gelu(s.SubScope("block"), Const(s, []int32{1}), true) }, "block/Gelu"},
		"layer norm of a zero Output": {func(s *Scope) {
			LayerNormalize(s, Output{}, Output{}, Output{}, -1, 1e-3)
		}, "LayerNorm"},
		"layer norm axis out of range": {func(s *Scope) {
			LayerNormalize(s, Const(s, [][]float32{{1, 2}}), Output{}, Output{}, 3, 1e-3)
		}, "LayerNorm"},
		"softmax of strings": {func(s *Scope) { MaskedSoftmax(s, Const(s, []string{"a"}), Output{}, -1) }, "MaskedSoftmax"},
		"softmax mask not broadcastable": {func(s *Scope) {
			MaskedSoftmax(s, Const(s, [][]float32{{1, 2, 3}}), Const(s, []bool{true, false}), -1)
		}, "MaskedSoftmax/SelectV2"},
		"causal mask of a float": {func(s *Scope) { CausalMask(s, Const(s, float32(3))) }, "CausalMask"},
		"clip nothing":           {func(s *Scope) { ClipByGlobalNorm(s, []Output{{}}, 1) }, "clip_by_global_norm"},
		"clip mixed dtypes": {func(s *Scope) {
			ClipByGlobalNorm(s, []Output{Const(s, []float32{1}), Const(s, []float64{1})}, 1)
		}, "global_norm/Pack"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := NewScope()
			require.NotPanics(t, func() { c.build(s) })
			_, err := NewSession(s, SessionOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), `"`+c.op+`"`)
			t.Log(err)
		})
	}
}

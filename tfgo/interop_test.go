package tfgo

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"testing"

	"github.com/gotf/gotf/dtypes/half"
	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/pyref"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One Python TensorFlow worker serves every interop test of the package.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := pyref.CloseShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func python(t *testing.T, code string, inputs map[string]*Tensor) map[string]*Tensor {
	t.Helper()
	w, err := pyref.Shared()
	require.NoError(t, err)
	in := map[string]*pyref.Array{}
	for k, v := range inputs {
		a, err := interop.ToArray(v)
		require.NoError(t, err)
		in[k] = a
	}
	out, err := w.Run(code, in)
	require.NoError(t, err)
	res := map[string]*Tensor{}
	for k, a := range out {
		tn, err := interop.ToTensor(a)
		require.NoError(t, err)
		res[k] = tn
	}
	return res
}

func randomMatrix(r *rand.Rand, rows, cols int) [][]float64 {
	m := make([][]float64, rows)
	for i := range m {
		m[i] = make([]float64, cols)
		for j := range m[i] {
			m[i][j] = r.NormFloat64()
		}
	}
	return m
}

func toFloat32(m [][]float64) [][]float32 {
	out := make([][]float32, len(m))
	for i, row := range m {
		out[i] = make([]float32, len(row))
		for j, v := range row {
			out[i][j] = float32(v)
		}
	}
	return out
}

// softmax(x·W + b) built op by op in Go equals tf.nn.softmax(x @ w + b).
func TestDenseSoftmaxMatchesPython(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	xs, ws, bs := randomMatrix(r, 4, 5), randomMatrix(r, 5, 3), randomMatrix(r, 1, 3)[0]
	for _, dt := range []DataType{Float, Double} {
		t.Run(dt.String(), func(t *testing.T) {
			var x, w, b any = xs, ws, bs
			if dt == Float {
				x, w, b = toFloat32(xs), toFloat32(ws), toFloat32([][]float64{bs})[0]
			}
			s := NewScope()
			px := Placeholder(s, dt, -1, 5)
			pw := Placeholder(s, dt, 5, 3)
			pb := Placeholder(s, dt, 3)
			logits := BiasAdd(s, MatMul(s, px, pw), pb)
			y := Softmax(s, logits)
			sess, err := NewSession(s, SessionOptions{})
			require.NoError(t, err)
			defer sess.Close()
			out, err := sess.Run(map[Output]any{px: x, pw: w, pb: b}, []Output{y})
			require.NoError(t, err)

			in := map[string]*Tensor{}
			for k, v := range map[string]any{"x": x, "w": w, "b": b} {
				in[k], err = NewTensor(v)
				require.NoError(t, err)
			}
			ref := python(t, `outputs["y"] = tf.nn.softmax(inputs["x"] @ inputs["w"] + inputs["b"])`, in)["y"]
			allClose(t, "softmax", ref, out[0], ulps(dt, 16)) // a matmul, exp and sum: observed 4 ulps (float64)
		})
	}
}

// allClose compares two float32 or float64 tensors: the same dtype and
// shape, no NaN, and testutil.AllClose's rule at every element.
func allClose(t *testing.T, what string, want, got *Tensor, tol testutil.Tol) bool {
	t.Helper()
	if want.DataType() != got.DataType() {
		t.Errorf("%s: dtype %s, want %s", what, got.DataType(), want.DataType())
		return false
	}
	return testutil.AllCloseShapeTol(t, what, want.Shape(), asFloat64s(t, want), got.Shape(), asFloat64s(t, got), tol)
}

// ulps is a relative tolerance of n units in the last place of dt (float32
// or float64): for results of the same kernels that grappler or XLA may
// fuse or reorder differently, rounding a few times more or less.
func ulps(dt DataType, n float64) testutil.Tol {
	eps := 0x1p-23 // float32
	if dt == Double {
		eps = 0x1p-52
	}
	return testutil.Tol{Rtol: n * eps}
}

func asFloat64s(t *testing.T, tn *Tensor) []float64 {
	if tn.DataType() == Double {
		v, err := Float64s(tn)
		require.NoError(t, err)
		return v
	}
	v, err := Float32s(tn)
	require.NoError(t, err)
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}

// Values that exercise rounding and the special cases of 16-bit floats.
func halfTestValues() []float32 {
	vals := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.1, 1.0 / 3, 65504, 65520, 1e6, -1e-8,
		6.1e-5, 5.96e-8, 2.98e-8, 1 + 1.0/2048, 1 + 3.0/2048, 1 + 1.0/256, 3.14159,
		float32(math.Inf(1)), float32(math.Inf(-1)), 1e38, -3e38, 1e-40}
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 200; i++ {
		vals = append(vals, float32(r.NormFloat64()*math.Pow(10, float64(r.Intn(12)-6))))
	}
	return vals
}

// Go's float16/bfloat16 rounding equals numpy's and TensorFlow's, and the
// bit patterns cross between Go and Python (and through the runtime) unchanged.
func TestHalfPrecisionTensorsMatchPythonExactly(t *testing.T) {
	vals := halfTestValues()
	h := make([]half.Float16, len(vals))
	bf := make([]half.BFloat16, len(vals))
	for i, v := range vals {
		h[i], bf[i] = half.NewFloat16(v), half.NewBFloat16(v)
	}
	f, err := NewTensor(vals)
	require.NoError(t, err)
	ht, err := NewTensor(h)
	require.NoError(t, err)
	bt, err := NewTensor(bf)
	require.NoError(t, err)

	// The runtime's own Cast, run from Go.
	s := NewScope()
	pf := Placeholder(s, Float)
	toH := Cast(s, pf, Half)
	toB := Cast(s, pf, BFloat16)
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	casts, err := sess.Run(map[Output]any{pf: f}, []Output{toH, toB})
	require.NoError(t, err)

	ref := python(t, `
import ml_dtypes
f = inputs["f"]
with np.errstate(over="ignore"):  # 1e6 overflows to inf, as it should
    outputs["np_h"] = f.astype(np.float16)
outputs["np_b"] = f.astype(ml_dtypes.bfloat16)
outputs["tf_h"] = tf.cast(tf.constant(f), tf.float16)
outputs["tf_b"] = tf.cast(tf.constant(f), tf.bfloat16)
# Go's tensors come back through TensorFlow unchanged, and widen as Go widens them.
outputs["h"] = tf.identity(tf.constant(inputs["h"]))
outputs["b"] = tf.identity(tf.constant(inputs["b"]))
outputs["h32"] = inputs["h"].astype(np.float32)
outputs["b32"] = inputs["b"].astype(np.float32)
`, map[string]*Tensor{"f": f, "h": ht, "b": bt})

	assert.Equal(t, Half, ref["h"].DataType())
	assert.Equal(t, BFloat16, ref["b"].DataType())
	assert.Equal(t, ht.Data(), ref["h"].Data(), "float16 bits round trip")
	assert.Equal(t, bt.Data(), ref["b"].Data(), "bfloat16 bits round trip")
	assertSameHalf(t, ht.Data(), ref["np_h"].Data(), vals, "Go NewFloat16 vs numpy")
	assertSameHalf(t, ht.Data(), ref["tf_h"].Data(), vals, "Go NewFloat16 vs tf.cast")
	assertSameHalf(t, ht.Data(), casts[0].Data(), vals, "Go NewFloat16 vs Cast run from Go")
	assertSameHalf(t, bt.Data(), ref["np_b"].Data(), vals, "Go NewBFloat16 vs ml_dtypes")
	assertSameHalf(t, bt.Data(), ref["tf_b"].Data(), vals, "Go NewBFloat16 vs tf.cast")
	assertSameHalf(t, bt.Data(), casts[1].Data(), vals, "Go NewBFloat16 vs Cast run from Go")

	h32, err := Float32s(ref["h32"])
	require.NoError(t, err)
	b32, err := Float32s(ref["b32"])
	require.NoError(t, err)
	for i := range vals {
		assert.Equal(t, math.Float32bits(h32[i]), math.Float32bits(h[i].Float32()), "float16 %g widens", vals[i])
		assert.Equal(t, math.Float32bits(b32[i]), math.Float32bits(bf[i].Float32()), "bfloat16 %g widens", vals[i])
	}
}

func assertSameHalf(t *testing.T, got, want []byte, vals []float32, what string) {
	t.Helper()
	require.Equal(t, len(want), len(got), what)
	for i := 0; i < len(want); i += 2 {
		if got[i] != want[i] || got[i+1] != want[i+1] {
			t.Errorf("%s: %g -> %02x%02x, want %02x%02x", what, vals[i/2], got[i+1], got[i], want[i+1], want[i])
		}
	}
}

// String tensors, arbitrary bytes included, cross unchanged both ways.
func TestStringTensorsMatchPythonExactly(t *testing.T) {
	long := make([]byte, 300)
	for i := range long {
		long[i] = byte(i)
	}
	vals := [][]string{{"", "go", "nul\x00byte"}, {string(long), "\xff\xfe not utf-8", "héllo wörld"}}
	st, err := NewTensor(vals)
	require.NoError(t, err)

	s := NewScope()
	p := Placeholder(s, String, 2, 3)
	upper := StringUpper(s, p)
	length := StringLength(s, p)
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	goOut, err := sess.Run(map[Output]any{p: st}, []Output{upper, length})
	require.NoError(t, err)

	ref := python(t, `
s = tf.constant(inputs["s"])
outputs["same"] = tf.identity(s)
outputs["upper"] = tf.strings.upper(s)
outputs["length"] = tf.strings.length(s)
outputs["made_in_python"] = tf.constant([b"py\x00thon", bytes(range(256))])
`, map[string]*Tensor{"s": st})

	back, err := Value(ref["same"])
	require.NoError(t, err)
	assert.Equal(t, vals, back)
	for _, k := range []string{"upper", "length"} {
		want, err := Value(ref[k])
		require.NoError(t, err)
		i := map[string]int{"upper": 0, "length": 1}[k]
		got, err := Value(goOut[i])
		require.NoError(t, err)
		assert.Equal(t, want, got, k)
	}
	made, err := Value(ref["made_in_python"])
	require.NoError(t, err)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	assert.Equal(t, []string{"py\x00thon", string(all)}, made)
}

package pyref_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gotf/gotf/internal/pyref"
	"github.com/gotf/gotf/internal/testutil"
)

func TestMain(m *testing.M) {
	if _, err := pyref.Shared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := pyref.CloseShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// worker returns the shared worker.
func worker(t *testing.T) *pyref.Worker {
	t.Helper()
	w, err := pyref.Shared()
	require.NoError(t, err)
	return w
}

// u16s returns the little-endian bytes of v.
func u16s(v ...uint16) []byte {
	b := make([]byte, 0, 2*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint16(b, x)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	long := bytes.Repeat([]byte("0123456789abcdef"), 10) // 160 bytes
	nan32 := math.Float32frombits(0x7fc00123)            // NaN with a payload
	arrays := map[string]*pyref.Array{
		"f32": pyref.Float32s([]int64{2, 3},
			[]float32{1.5, float32(math.Copysign(0, -1)), float32(math.Inf(-1)), nan32, math.SmallestNonzeroFloat32, math.MaxFloat32}),
		"f64": pyref.Float64s([]int64{4},
			[]float64{math.Pi, math.NaN(), math.SmallestNonzeroFloat64, -math.MaxFloat64}),
		// 1, max finite, smallest subnormal, -inf, NaN with a payload, -0.
		"f16": pyref.NewArray("float16", []int64{3, 2},
			u16s(0x3c00, 0x7bff, 0x0001, 0xfc00, 0x7e01, 0x8000)),
		// 1, -2, inf, NaN with a payload, smallest subnormal.
		"bf16": pyref.NewArray("bfloat16", []int64{5},
			u16s(0x3f80, 0xc000, 0x7f80, 0x7fc1, 0x0001)),
		"i64": pyref.Int64s([]int64{3}, []int64{math.MinInt64, -1, math.MaxInt64}),
		"i32": pyref.Int32s([]int64{1, 2}, []int32{math.MinInt32, math.MaxInt32}),
		"u8":  pyref.NewArray("uint8", []int64{3}, []byte{0, 128, 255}),
		"c64": pyref.NewArray("complex64", []int64{1}, pyref.Float32s(nil, []float32{1, -2}).Data),
		"b":   pyref.NewArray("bool", []int64{2, 2}, []byte{1, 0, 0, 1}),
		"s": {DType: "string", Shape: []int64{2, 2},
			Strings: [][]byte{[]byte("a\x00b\x00"), long, {}, []byte("héllo")}},
		"empty":  pyref.Float32s([]int64{0, 3}, nil),
		"scalar": pyref.Int64s([]int64{}, []int64{42}),
	}
	out, err := worker(t).Run(`outputs = dict(inputs)`, arrays)
	require.NoError(t, err)
	require.Len(t, out, len(arrays))
	for name, in := range arrays {
		got := out[name]
		require.NotNil(t, got, name)
		require.Equal(t, in.DType, got.DType, name)
		require.Equal(t, in.Shape, got.Shape, name)
		require.True(t, bytes.Equal(in.Data, got.Data), "%s: data %x, want %x", name, got.Data, in.Data)
		require.Len(t, got.Strings, len(in.Strings), name)
		for i := range in.Strings {
			require.True(t, bytes.Equal(in.Strings[i], got.Strings[i]),
				"%s[%d]: %q, want %q", name, i, got.Strings[i], in.Strings[i])
		}
	}
}

func TestPythonSeesNumpyTypes(t *testing.T) {
	code := `
import ml_dtypes
x, h, s = inputs["x"], inputs["h"], inputs["s"]
assert x.dtype == np.float32 and x.shape == (2, 1), (x.dtype, x.shape)
assert h.dtype == ml_dtypes.bfloat16 == tf.bfloat16.as_numpy_dtype, h.dtype
assert h[0] == 1.0, h
assert s.dtype == object and s.shape == (2,), (s.dtype, s.shape)
assert s.tolist() == [b"x\x00y", b""], s
x[0, 0] = 5  # inputs are writable
outputs["ok"] = True
`
	out, err := worker(t).Run(code, map[string]*pyref.Array{
		"x": pyref.Float32s([]int64{2, 1}, []float32{1, 2}),
		"h": pyref.NewArray("bfloat16", []int64{1}, u16s(0x3f80)),
		"s": {DType: "string", Shape: []int64{2}, Strings: [][]byte{[]byte("x\x00y"), {}}},
	})
	require.NoError(t, err)
	require.Equal(t, &pyref.Array{DType: "bool", Shape: []int64{}, Data: []byte{1}}, out["ok"])
}

func TestSoftmax(t *testing.T) {
	x := []float32{1, 2, 3, -1, 0, 1000}
	out, err := worker(t).Run(`outputs["y"] = tf.nn.softmax(inputs["x"])`,
		map[string]*pyref.Array{"x": pyref.Float32s([]int64{2, 3}, x)})
	require.NoError(t, err)
	require.Equal(t, "float32", out["y"].DType)
	require.Equal(t, []int64{2, 3}, out["y"].Shape)
	got, err := out["y"].Float32s()
	require.NoError(t, err)

	for r := 0; r < 2; r++ {
		row := x[3*r : 3*r+3]
		m := max(row[0], row[1], row[2])
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v - m))
		}
		for c, v := range row {
			want := math.Exp(float64(v-m)) / sum
			require.InDelta(t, want, got[3*r+c], 1e-6, "y[%d,%d]", r, c)
		}
	}
}

func TestMatMul(t *testing.T) {
	a := []float64{1, 2, 3, 4, 5, 6}           // 2x3
	b := []float64{0.5, -1, 2, 0.25, -3, 1.75} // 3x2
	out, err := worker(t).Run(`outputs["c"] = inputs["a"] @ inputs["b"]`, map[string]*pyref.Array{
		"a": pyref.Float64s([]int64{2, 3}, a),
		"b": pyref.Float64s([]int64{3, 2}, b),
	})
	require.NoError(t, err)
	require.Equal(t, []int64{2, 2}, out["c"].Shape)
	got, err := out["c"].Float64s()
	require.NoError(t, err)
	for i := 0; i < 2; i++ {
		for j := 0; j < 2; j++ {
			var want float64
			for k := 0; k < 3; k++ {
				want += a[3*i+k] * b[2*k+j]
			}
			require.InDelta(t, want, got[2*i+j], 1e-12, "c[%d,%d]", i, j)
		}
	}
}

func TestPythonException(t *testing.T) {
	w := worker(t)
	for _, tc := range []struct{ code, want string }{
		{"def f():\n    raise ValueError('boom')\nf()", "ValueError: boom"},
		{"outputs['x'] = undefined_name", "NameError"},
		{"def (:", "SyntaxError"},
		{"import sys\nsys.exit(2)", "SystemExit: 2"},
		{"outputs['x'] = np.zeros(2, dtype='datetime64[s]')", "unsupported dtype"},
		{"outputs = [1]", "outputs is a list"},
		{"tf.constant([1.0]) + tf.constant(['a'])", "InvalidArgumentError"},
	} {
		_, err := w.Run(tc.code, nil)
		require.Error(t, err, tc.code)
		var perr *pyref.PythonError
		require.True(t, errors.As(err, &perr), "%q: %v is not a *PythonError", tc.code, err)
		require.Contains(t, err.Error(), tc.want)
	}

	// The traceback points into the user's code, with its source line.
	_, err := w.Run("x = 1\nraise KeyError('missing')", nil)
	require.ErrorContains(t, err, `File "<pyref>", line 2`)
	require.ErrorContains(t, err, "raise KeyError('missing')")
	require.NotContains(t, err.Error(), "worker.py")

	// The worker still serves requests.
	out, err := w.Run(`outputs["n"] = np.int32(7)`, nil)
	require.NoError(t, err)
	n, err := out["n"].Int32s()
	require.NoError(t, err)
	require.Equal(t, []int32{7}, n)
}

// TestPythonErrorCarriesTraceback: a snippet that fails makes Run return
// the Python exception, message and traceback (chained causes included),
// and no outputs, even when it had set some: the caller sees why, not a
// missing or misshapen output later.
func TestPythonErrorCarriesTraceback(t *testing.T) {
	w := worker(t)
	for _, tc := range []struct {
		code string
		want []string
	}{
		{"outputs['y'] = np.zeros(3)\n" +
			"def load(d):\n" +
			"    try:\n" +
			"        return d['kernel']\n" +
			"    except KeyError as e:\n" +
			"        raise RuntimeError('no kernel among %s' % sorted(d)) from e\n" +
			"load({'bias': 1})",
			[]string{"Traceback (most recent call last)", "KeyError: 'kernel'",
				"The above exception was the direct cause of the following exception",
				`File "<pyref>", line 7`, "raise RuntimeError", "RuntimeError: no kernel among ['bias']"}},
		{"outputs['y'] = tf.reshape(tf.zeros([3]), [2, 2])",
			[]string{"InvalidArgumentError", "Input to reshape is a tensor with 3 values", `File "<pyref>", line 1`}},
		{"x = 1\nassert x + 1 == 3, 'arithmetic is broken'",
			[]string{"AssertionError: arithmetic is broken", `File "<pyref>", line 2`}},
		{"outputs['bad'] = object()",
			[]string{"output 'bad'", "object"}},
	} {
		out, err := w.Run(tc.code, nil)
		var perr *pyref.PythonError
		require.True(t, errors.As(err, &perr), "%q: %v is not a *PythonError", tc.code, err)
		require.Nil(t, out, "%q: outputs returned with the error", tc.code)
		for _, s := range tc.want {
			require.Contains(t, perr.Traceback, s, "%q", tc.code)
			require.Contains(t, err.Error(), s, "%q", tc.code)
		}
	}
}

func TestPrintDoesNotBreakProtocol(t *testing.T) {
	w := worker(t)
	code := `
import os, sys
print("printed by user code")
print('{"outputs": {}}')
sys.stdout.write("no newline")
os.write(1, b"written to fd 1\n")
outputs["x"] = inputs["x"] * 2
`
	out, err := w.Run(code, map[string]*pyref.Array{"x": pyref.Int64s([]int64{2}, []int64{1, 2})})
	require.NoError(t, err)
	got, err := out["x"].Int64s()
	require.NoError(t, err)
	require.Equal(t, []int64{2, 4}, got)
	require.Contains(t, w.Stderr(), "printed by user code")
	require.Contains(t, w.Stderr(), "written to fd 1")

	// Reading stdin must not consume the protocol stream either.
	_, err = w.Run(`input()`, nil)
	require.ErrorContains(t, err, "EOFError")
	_, err = w.Run(`outputs["ok"] = 1`, nil)
	require.NoError(t, err)
}

func TestScalarOutputs(t *testing.T) {
	code := `
outputs["f"] = np.float32(2.5)
outputs["sum"] = tf.reduce_sum(inputs["x"])
outputs["i"] = 7
outputs["t"] = True
outputs["u"] = "héllo"
outputs["by"] = tf.constant(b"a\x00")
outputs["list"] = [b"x\x00", b"y"]
`
	out, err := worker(t).Run(code, map[string]*pyref.Array{
		"x": pyref.Float64s([]int64{3}, []float64{1, 2, 3.5}),
	})
	require.NoError(t, err)
	require.Equal(t, pyref.Float32s([]int64{}, []float32{2.5}), out["f"])
	require.Equal(t, pyref.Float64s([]int64{}, []float64{6.5}), out["sum"])
	require.Equal(t, pyref.Int64s([]int64{}, []int64{7}), out["i"])
	require.Equal(t, pyref.NewArray("bool", []int64{}, []byte{1}), out["t"])
	require.Equal(t, &pyref.Array{DType: "string", Shape: []int64{}, Strings: [][]byte{[]byte("héllo")}}, out["u"])
	require.Equal(t, &pyref.Array{DType: "string", Shape: []int64{}, Strings: [][]byte{[]byte("a\x00")}}, out["by"])
	require.Equal(t, &pyref.Array{DType: "string", Shape: []int64{2}, Strings: [][]byte{[]byte("x\x00"), []byte("y")}}, out["list"])
}

func TestConcurrentRuns(t *testing.T) {
	w := worker(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				out, err := w.Run(`outputs["y"] = inputs["x"] + 1`,
					map[string]*pyref.Array{"x": pyref.Int32s([]int64{1}, []int32{int32(100*g + i)})})
				if err != nil {
					errs <- err
					return
				}
				got, err := out["y"].Int32s()
				if err == nil && got[0] != int32(100*g+i+1) {
					err = fmt.Errorf("goroutine %d run %d: got %d", g, i, got[0])
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestInvalidArrays(t *testing.T) {
	w := worker(t)
	for name, a := range map[string]*pyref.Array{
		"short data":     pyref.NewArray("float32", []int64{2}, make([]byte, 7)),
		"unknown dtype":  pyref.NewArray("float8", []int64{1}, []byte{0}),
		"string count":   {DType: "string", Shape: []int64{2}, Strings: [][]byte{{}}},
		"negative shape": pyref.NewArray("uint8", []int64{-1}, nil),
		"nil":            nil,
	} {
		_, err := w.Run(`pass`, map[string]*pyref.Array{"x": a})
		require.Error(t, err, name)
		var perr *pyref.PythonError
		require.False(t, errors.As(err, &perr), name)
	}

	_, err := pyref.Int64s([]int64{1}, []int64{1}).Float32s()
	require.ErrorContains(t, err, "dtype int64, not float32")
}

func TestMissingPython(t *testing.T) {
	t.Setenv("GOTF_PYTHON", "/nonexistent/bin/python")
	_, err := pyref.Start()
	require.ErrorContains(t, err,
		"Python reference environment not found at /nonexistent/bin/python: "+
			"run 'make setup' (it installs tensorflow==2.21.0 into .venv)")
}

func TestWorkerDeath(t *testing.T) {
	if testing.Short() {
		testutil.Skip(t, "starts a second Python worker")
	}
	w, err := pyref.Start()
	require.NoError(t, err)
	_, err = w.Run(`
import os, sys
sys.stderr.write("about to die\n")
sys.stderr.flush()
os._exit(3)`, nil)
	require.Error(t, err)
	require.ErrorContains(t, err, "exit status 3")
	require.ErrorContains(t, err, "about to die")

	_, err2 := w.Run(`pass`, nil)
	require.Error(t, err2)
	require.True(t, strings.Contains(err2.Error(), "exit status 3"), err2)
	require.NoError(t, w.Close())
}

package tfgo

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/gotf/gotf/dtypes/half"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGoValuesRoundTripThroughTensors(t *testing.T) {
	cases := []struct {
		value any
		dtype DataType
		shape []int64
	}{
		{float32(1.5), Float, nil},
		{[]float64{1, 2}, Double, []int64{2}},
		{[][]int32{{1, 2, 3}, {4, 5, 6}}, Int32, []int64{2, 3}},
		{[][][]int64{{{1}, {2}}}, Int64, []int64{1, 2, 1}},
		{[]int8{-1, 2}, Int8, []int64{2}},
		{[]int16{-300}, Int16, []int64{1}},
		{[]uint8{255, 0}, Uint8, []int64{2}},
		{[]uint16{65535}, Uint16, []int64{1}},
		{[]uint32{1 << 31}, Uint32, []int64{1}},
		{[]uint64{1 << 63}, Uint64, []int64{1}},
		{[]bool{true, false, true}, Bool, []int64{3}},
		{[]complex64{1 + 2i}, Complex64, []int64{1}},
		{[][]complex128{{3 - 1i}}, Complex128, []int64{1, 1}},
		{[]half.Float16{half.NewFloat16(1.5), half.NewFloat16(-2)}, Half, []int64{2}},
		{[][]half.BFloat16{{half.NewBFloat16(3)}}, BFloat16, []int64{1, 1}},
		{[]string{"a\x00b", ""}, String, []int64{2}},
		{"scalar", String, nil},
		{[][]float32{}, Float, []int64{0, 0}},
		{[][]float32{{}, {}}, Float, []int64{2, 0}},
	}
	for _, c := range cases {
		tn, err := NewTensor(c.value)
		require.NoError(t, err, "%T", c.value)
		assert.Equal(t, c.dtype, tn.DataType(), "%T", c.value)
		assert.Equal(t, len(c.shape), len(tn.Shape()))
		for i := range c.shape {
			assert.Equal(t, c.shape[i], tn.Shape()[i])
		}
		back, err := Value(tn)
		require.NoError(t, err)
		if n := tn.NumElements(); n > 0 {
			assert.Equal(t, c.value, back, "%T", c.value)
		}
		tn.Close()
	}
	// Arrays come back as slices.
	tn, err := NewTensor([2][3]float32{{1, 2, 3}, {4, 5, 6}})
	require.NoError(t, err)
	f, err := Float32s(tn)
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 3, 4, 5, 6}, f)
	_, err = Int64s(tn)
	require.ErrorContains(t, err, "float32")
}

func TestHalfPrecisionConversions(t *testing.T) {
	exact := []float32{0, 1, -2, 0.5, 65504, 6.103515625e-05, 5.960464477539063e-08}
	for _, f := range exact {
		assert.Equal(t, f, half.NewFloat16(f).Float32(), "float16 %g", f)
	}
	assert.True(t, math.IsInf(float64(half.NewFloat16(1e6).Float32()), 1))
	assert.True(t, math.IsNaN(float64(half.NewFloat16(float32(math.NaN())).Float32())))
	assert.Equal(t, half.Float16(0x3c00), half.NewFloat16(1))
	// Ties go to even: 1 + 2^-11 is halfway between 1 and the next float16.
	assert.Equal(t, half.Float16(0x3c00), half.NewFloat16(1+1.0/2048))
	assert.Equal(t, half.Float16(0x3c02), half.NewFloat16(1+3.0/2048))

	for _, f := range []float32{0, 1, -2, 3.140625, float32(math.Ldexp(1, 100))} {
		assert.Equal(t, f, half.NewBFloat16(f).Float32(), "bfloat16 %g", f)
	}
	assert.Equal(t, half.BFloat16(0x3f80), half.NewBFloat16(1+1.0/256)) // tie to even
	assert.Equal(t, half.BFloat16(0x3f82), half.NewBFloat16(1+3.0/256))
	assert.True(t, math.IsNaN(float64(half.NewBFloat16(float32(math.NaN())).Float32())))
}

// within runs f and fails the test if it takes over 20 s: the old
// converters walked every row of a slice of empty arrays, 2^40 of them.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still running after 20 s", what)
	}
}

// Go values and tensors whose shapes say more than their memory holds
// convert quickly or fail with an error, never hang, crash or allocate
// what the shape says.
func TestTensorConversionsOfExtremeShapes(t *testing.T) {
	const huge = 1 << 40
	within(t, "NewTensor of 2^40 empty float rows", func() {
		tn, err := NewTensor(make([][0]float32, huge))
		require.NoError(t, err)
		assert.Equal(t, []int64{huge, 0}, []int64(tn.Shape()))
		// Value would need 2^40 slice headers to say "nothing".
		_, err = Value(tn)
		require.ErrorContains(t, err, "no elements but would need over")
		tn.Close()
	})
	within(t, "NewTensor of 2^40 empty string rows", func() {
		tn, err := NewTensor(make([][0]string, huge))
		require.NoError(t, err)
		assert.Equal(t, int64(0), tn.NumElements())
		tn.Close()
	})
	// Ragged rows are still found below arrays of slices.
	_, err := NewTensor([2][]float32{{1}, {1, 2}})
	require.ErrorContains(t, err, "ragged")

	// Empty tensors of any shape come back as empty nested slices.
	for _, shape := range [][]int64{{0, 5}, {2, 0, 3}, {3, 0}, {0}} {
		tn, err := AllocateTensor(Float, shape)
		require.NoError(t, err)
		v, err := Value(tn)
		require.NoError(t, err, "%v", shape)
		assert.Equal(t, int(shape[0]), reflect.ValueOf(v).Len(), "%v", shape)
		tn.Close()
	}

	// Rank 255, over TensorFlow's 254, from a nested array type.
	typ := reflect.TypeOf(float32(0))
	for range 255 {
		typ = reflect.ArrayOf(1, typ)
	}
	_, err = NewTensor(reflect.New(typ).Elem().Interface())
	require.ErrorContains(t, err, "rank 255")

	closed, err := NewTensor([]float32{1})
	require.NoError(t, err)
	closed.Close()
	_, err = Value(closed)
	require.ErrorContains(t, err, "closed")
}

// CloneTensor copies values (fixed-size and string tensors) into a tensor
// of their own, and refuses a resource handle, whose bytes are a C++ object.
func TestCloneTensor(t *testing.T) {
	for _, v := range []any{[][]float32{{1, -2.5}, {3, 4}}, []int64{}, []string{"a\x00b", ""}} {
		src, err := NewTensor(v)
		require.NoError(t, err)
		c, err := CloneTensor(src)
		require.NoError(t, err)
		require.Equal(t, src.DataType(), c.DataType())
		require.Equal(t, src.Shape(), c.Shape())
		want, err := Value(src)
		require.NoError(t, err)
		src.Close()
		got, err := Value(c)
		require.NoError(t, err)
		require.Equal(t, want, got, "the clone outlives the original")
		c.Close()
	}

	s := NewScope()
	h := VarHandleOp(s, Float, MakeShape(2))
	require.NoError(t, s.Err())
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	out, err := sess.Run(nil, []Output{h})
	require.NoError(t, err)
	defer out[0].Close()
	require.Equal(t, Resource, out[0].DataType())
	_, err = CloneTensor(out[0])
	require.ErrorContains(t, err, "resource tensor holds C++ objects")
	_, err = CloneTensor(nil)
	require.Error(t, err)
}

package cgo

import (
	"bytes"
	"testing"

	"github.com/gotf/gotf/dtypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTensorsOfEveryFixedSizeDtype(t *testing.T) {
	sizes := map[DataType]int{
		dtypes.Float: 4, dtypes.Double: 8, dtypes.Int32: 4, dtypes.Uint8: 1, dtypes.Int16: 2, dtypes.Int8: 1, dtypes.Complex64: 8, dtypes.Int64: 8,
		dtypes.Bool: 1, dtypes.BFloat16: 2, dtypes.Uint16: 2, dtypes.Complex128: 16, dtypes.Half: 2, dtypes.Uint32: 4, dtypes.Uint64: 8,
	}
	for dt, size := range sizes {
		assert.Equal(t, size, dt.Size(), dt.String())
		data := make([]byte, 2*3*size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		tn, err := NewTensor(dt, []int64{2, 3}, data)
		require.NoError(t, err, dt.String())
		assert.Equal(t, dt, tn.DataType())
		assert.Equal(t, []int64{2, 3}, tn.Shape())
		assert.Equal(t, int64(6), tn.NumElements())
		assert.Equal(t, data, tn.Data())
		parsed, err := dtypes.Parse(dt.String())
		require.NoError(t, err)
		assert.Equal(t, dt, parsed)
		require.NoError(t, tn.Close())
		require.NoError(t, tn.Close()) // idempotent
		assert.Nil(t, tn.Data())
	}
}

func TestStringTensors(t *testing.T) {
	long := bytes.Repeat([]byte("0123456789"), 30) // heap-allocated TF_TString
	vals := [][]byte{[]byte("short"), {}, []byte("nul\x00inside"), long, []byte("\xff\xfe binary")}
	tn, err := NewStringTensor([]int64{5}, vals)
	require.NoError(t, err)
	defer tn.Close()
	got, err := tn.Strings()
	require.NoError(t, err)
	assert.Equal(t, vals, got)

	scalar, err := NewStringTensor(nil, [][]byte{[]byte("x")})
	require.NoError(t, err)
	assert.Empty(t, scalar.Shape())
	scalar.Close()

	empty, err := NewStringTensor([]int64{0, 3}, nil)
	require.NoError(t, err)
	s, err := empty.Strings()
	require.NoError(t, err)
	assert.Empty(t, s)
	empty.Close()
}

func TestTensorBadInput(t *testing.T) {
	_, err := NewTensor(dtypes.Float, []int64{2, 2}, make([]byte, 12))
	require.ErrorContains(t, err, "needs 16 bytes, got 12")
	_, err = NewTensor(dtypes.Float, []int64{-1}, nil)
	require.ErrorContains(t, err, "negative dimension")
	_, err = AllocateTensor(dtypes.String, []int64{1})
	require.ErrorContains(t, err, "NewStringTensor")
	_, err = NewStringTensor([]int64{2}, [][]byte{[]byte("one")})
	require.ErrorContains(t, err, "holds 2 strings, got 1")
	f, err := NewTensor(dtypes.Float, nil, f32bytes(1))
	require.NoError(t, err)
	_, err = f.Strings()
	require.ErrorContains(t, err, "float32")
	_, err = dtypes.Parse("float8")
	require.ErrorContains(t, err, "float8")
}

func TestShapeString(t *testing.T) {
	assert.Equal(t, "(2, None)", MakeShape(2, -1).String())
	assert.Equal(t, "(3,)", MakeShape(3).String())
	assert.Equal(t, "()", MakeShape().String())
	assert.Equal(t, "<unknown>", UnknownShape().String())
	assert.Equal(t, int64(6), MakeShape(2, 3).NumElements())
	assert.Equal(t, int64(-1), MakeShape(2, -1).NumElements())
	assert.Equal(t, -1, UnknownShape().Rank())
}

// Shapes and buffers from outside are refused with an error before they
// reach TensorFlow, which aborts the process on a rank over 254 and hands
// back a tensor without data when its allocator cannot meet a request.
func TestTensorShapesFromOutside(t *testing.T) {
	deep := make([]int64, MaxDims+1)
	for i := range deep {
		deep[i] = 1
	}
	_, err := AllocateTensor(dtypes.Float, deep)
	require.ErrorContains(t, err, "rank 255")
	_, err = NewTensor(dtypes.Float, deep, f32bytes(1))
	require.ErrorContains(t, err, "rank 255")
	_, err = NewStringTensor(deep, [][]byte{[]byte("x")})
	require.ErrorContains(t, err, "rank 255")
	ok, err := AllocateTensor(dtypes.Float, deep[:MaxDims])
	require.NoError(t, err)
	assert.Len(t, ok.Shape(), MaxDims)
	ok.Close()

	for _, dims := range [][]int64{{1 << 62}, {1 << 31, 1 << 31}, {-1}, {1 << 62, 0, -1}, {1 << 40, 1 << 40, 0, 1 << 40}} {
		_, err = NewTensor(dtypes.Float, dims, nil)
		require.Error(t, err, "%v", dims)
		_, err = AllocateTensor(dtypes.Complex128, dims)
		require.Error(t, err, "%v", dims)
		_, err = NewStringTensor(dims, nil)
		require.Error(t, err, "%v", dims)
	}

	// 1 PiB: more than the machine has; the byte count itself is valid.
	const huge = 1 << 50
	_, err = AllocateTensor(dtypes.Uint8, []int64{huge})
	require.ErrorContains(t, err, "cannot allocate")
	// A short buffer is refused before anything is allocated.
	_, err = NewTensor(dtypes.Uint8, []int64{huge}, []byte{1, 2})
	require.ErrorContains(t, err, "needs 1125899906842624 bytes, got 2")
	_, err = NewTensor(dtypes.Float, []int64{2}, make([]byte, 12))
	require.ErrorContains(t, err, "needs 8 bytes, got 12")

	// Zero elements under huge dimensions: a valid, empty tensor.
	empty, err := NewTensor(dtypes.Float, []int64{1 << 62, 0}, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(0), empty.NumElements())
	assert.Empty(t, empty.Data())
	empty.Close()
	es, err := NewStringTensor([]int64{0, 1 << 62}, nil)
	require.NoError(t, err)
	strs, err := es.Strings()
	require.NoError(t, err)
	assert.Empty(t, strs)
	es.Close()
}

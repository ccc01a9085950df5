package cgo

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/gotf/gotf/dtypes"
	"github.com/stretchr/testify/require"
)

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func bytesf32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// constOp adds a float32 Const of the given dims and values.
func constOp(t *testing.T, g *Graph, name string, dims []int64, vals ...float32) *Operation {
	t.Helper()
	v, err := NewTensor(dtypes.Float, dims, f32bytes(vals...))
	require.NoError(t, err)
	defer v.Close()
	op, err := g.NewOperation("Const", name).SetAttr("dtype", dtypes.Float).SetAttr("value", v).Finish()
	require.NoError(t, err)
	return op
}

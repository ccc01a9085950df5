package tfgo

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScopeNamesDevicesAndControlDeps(t *testing.T) {
	s := NewScope()
	attn := s.SubScope("block_0").SubScope("attention")
	q := Const(attn.SubScope("query"), []float32{1})
	q2 := Const(attn.SubScope("query"), []float32{2})
	assert.Equal(t, "block_0/attention/query/Const", q.Op.Name())
	assert.Equal(t, "block_0/attention/query_1/Const", q2.Op.Name())
	c := Const(s, float32(3))
	c2 := Const(s, float32(4))
	assert.Equal(t, "Const", c.Op.Name())
	assert.Equal(t, "Const_1", c2.Op.Name())

	onCPU1 := s.WithDevice("/device:CPU:1")
	d := Const(onCPU1, int32(1))
	assert.Equal(t, "/device:CPU:1", d.Op.Device())

	after := s.WithControlDependencies(c.Op, c2.Op)
	id := Identity(after, q)
	deps := id.Op.ControlInputs()
	require.Len(t, deps, 2)
	assert.ElementsMatch(t, []string{"Const", "Const_1"}, []string{deps[0].Name(), deps[1].Name()})
	g, err := s.Finalize()
	require.NoError(t, err)
	assert.Equal(t, 6, g.NumOperations())
}

// The first error sticks to the scope; later ops are skipped, not crashed.
func TestScopeErrorSticksAndNamesTheOp(t *testing.T) {
	s := NewScope()
	a := Const(s, [][]float32{{1, 2, 3}})
	bad := MatMul(s.SubScope("layer"), a, a)
	assert.Nil(t, bad.Op)
	// Ops built on the failed one do not panic and do not replace the error.
	Softmax(s, bad)
	Op(s, "NoSuchOp", nil, nil)
	_, err := s.Finalize()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "layer/MatMul")
	assert.Contains(t, err.Error(), "Dimensions must be equal")
	_, err = NewSession(s, SessionOptions{})
	require.ErrorContains(t, err, "layer/MatMul")

	s2 := NewScope()
	Op(s2, "NoSuchOp", nil, nil)
	require.ErrorContains(t, s2.Err(), "NoSuchOp")

	s3 := NewScope()
	Const(s3, []struct{}{{}})
	require.ErrorContains(t, s3.Err(), "unsupported element type")

	s4 := NewScope()
	Op(s4, "Identity", []any{"not an output"}, nil)
	require.ErrorContains(t, s4.Err(), "want Output or []Output")
}

func TestRunGoFeedsAndFetches(t *testing.T) {
	s := NewScope()
	x := Placeholder(s, Float, -1, 2)
	y := Mul(s, x, Const(s, float32(2)))
	names := Placeholder(s, String)
	upper := StringUpper(s, names)
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	out, err := sess.Run(map[Output]any{x: [][]float32{{1, 2}, {3, 4}}, names: []string{"go", "tf"}}, []Output{y, upper})
	require.NoError(t, err)
	v, err := Value(out[0])
	require.NoError(t, err)
	assert.Equal(t, [][]float32{{2, 4}, {6, 8}}, v)
	v, err = Value(out[1])
	require.NoError(t, err)
	assert.Equal(t, []string{"GO", "TF"}, v)

	_, err = sess.Run(map[Output]any{x: [][]float32{{1, 2}, {3}}}, []Output{y})
	require.ErrorContains(t, err, "ragged")
}

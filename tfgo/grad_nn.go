package tfgo

// Gradients of activations, softmax and the fused cross-entropies, as
// TensorFlow's nn_grad.py computes them.

func init() {
	RegisterGradient("Relu", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{op1(s, "ReluGrad", nil, g[0], op.Output(0))}, nil
	})
	RegisterGradient("BiasAdd", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		format := "NHWC"
		if v, err := op.Attr("data_format"); err == nil {
			format = v.(string)
		}
		return []Output{g[0], op1(s, "BiasAddGrad", map[string]any{"data_format": format}, g[0])}, nil
	})
	// dx = (g - sum(g·y)) · y over the last axis.
	RegisterGradient("Softmax", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		y := op.Output(0)
		sum := op1(s, "Sum", map[string]any{"keep_dims": true}, op1(s, "Mul", nil, g[0], y), lastAxis(s))
		return []Output{op1(s, "Mul", nil, op1(s, "Sub", nil, g[0], sum), y)}, nil
	})
	// dx = g - sum(g) · softmax(x) over the last axis.
	RegisterGradient("LogSoftmax", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		sm := op1(s, "Exp", nil, op.Output(0))
		sum := op1(s, "Sum", map[string]any{"keep_dims": true}, g[0], lastAxis(s))
		return []Output{op1(s, "Sub", nil, g[0], op1(s, "Mul", nil, sum, sm))}, nil
	})
	// The fused kernels return the gradient of the loss w.r.t. the logits as
	// their second output: scale it by the incoming loss gradient.
	RegisterGradient("SparseSoftmaxCrossEntropyWithLogits", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		if g[1].Op != nil {
			return nil, errNoSecondOutputGrad(op, 1)
		}
		return []Output{op1(s, "Mul", nil, expandLast(s, g[0]), op.Output(1)), {}}, nil
	})
	RegisterGradient("SoftmaxCrossEntropyWithLogits", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		if g[1].Op != nil {
			return nil, errNoSecondOutputGrad(op, 1)
		}
		gl := expandLast(s, g[0])
		logSm := op1(s, "LogSoftmax", nil, op.Input(0))
		return []Output{
			unbroadcast(s, op1(s, "Mul", nil, gl, op.Output(1)), op.Input(0)),
			unbroadcast(s, op1(s, "Mul", nil, gl, op1(s, "Neg", nil, logSm)), op.Input(1)),
		}, nil
	})
}

func lastAxis(s *Scope) Output { return Const(s.SubScope("last_axis"), []int32{-1}) }

func expandLast(s *Scope, x Output) Output {
	return op1(s, "ExpandDims", nil, x, Const(s.SubScope("axis"), int32(-1)))
}

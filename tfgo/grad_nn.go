package tfgo

// Gradients of activations, softmax and the fused cross-entropies, as
// TensorFlow's nn_grad.py computes them.

func init() {
	RegisterGradient("Relu", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{ReluGrad(s, g[0], op.Output(0))}, nil
	})
	RegisterGradient("BiasAdd", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		format := "NHWC"
		if v, err := op.Attr("data_format"); err == nil {
			format = v.(string)
		}
		return []Output{g[0], BiasAddGrad(s, g[0], BiasAddGradDataFormat(format))}, nil
	})
	// The activations Keras offers besides relu, as nn_grad.py differentiates
	// them: from the output (Elu, Selu, Relu6) or the input.
	RegisterGradient("Elu", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{EluGrad(s, g[0], op.Output(0))}, nil
	})
	RegisterGradient("Selu", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{SeluGrad(s, g[0], op.Output(0))}, nil
	})
	RegisterGradient("Relu6", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{Relu6Grad(s, g[0], op.Output(0))}, nil
	})
	RegisterGradient("LeakyRelu", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		alpha, err := op.Attr("alpha")
		if err != nil {
			return nil, err
		}
		return []Output{LeakyReluGrad(s, g[0], op.Input(0), LeakyReluGradAlpha(alpha.(float32)))}, nil
	})
	RegisterGradient("Softplus", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{SoftplusGrad(s, g[0], op.Input(0))}, nil
	})
	RegisterGradient("Softsign", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{SoftsignGrad(s, g[0], op.Input(0))}, nil
	})
	// dx = (g - sum(g·y)) · y over the last axis.
	RegisterGradient("Softmax", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		y := op.Output(0)
		sum := Sum(s, Mul(s, g[0], y), lastAxis(s), SumKeepDims(true))
		return []Output{Mul(s, Sub(s, g[0], sum), y)}, nil
	})
	// dx = g - sum(g) · softmax(x) over the last axis.
	RegisterGradient("LogSoftmax", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		sm := Exp(s, op.Output(0))
		sum := Sum(s, g[0], lastAxis(s), SumKeepDims(true))
		return []Output{Sub(s, g[0], Mul(s, sum, sm))}, nil
	})
	// The fused kernels return the gradient of the loss w.r.t. the logits as
	// their second output: scale it by the incoming loss gradient.
	RegisterGradient("SparseSoftmaxCrossEntropyWithLogits", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		if g[1].Op != nil {
			return nil, errNoSecondOutputGrad(op, 1)
		}
		return []Output{Mul(s, expandLast(s, g[0]), op.Output(1)), {}}, nil
	})
	RegisterGradient("SoftmaxCrossEntropyWithLogits", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		if g[1].Op != nil {
			return nil, errNoSecondOutputGrad(op, 1)
		}
		gl := expandLast(s, g[0])
		logSm := LogSoftmax(s, op.Input(0))
		return []Output{
			unbroadcast(s, Mul(s, gl, op.Output(1)), op.Input(0)),
			unbroadcast(s, Mul(s, gl, Neg(s, logSm)), op.Input(1)),
		}, nil
	})
}

func lastAxis(s *Scope) Output { return Const(s.SubScope("last_axis"), []int32{-1}) }

func expandLast(s *Scope, x Output) Output {
	return ExpandDims(s, x, Const(s.SubScope("axis"), int32(-1)))
}

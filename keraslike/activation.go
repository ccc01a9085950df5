package keraslike

import (
	"fmt"

	"github.com/gotf/gotf/tfgo"
)

// Activations by their Keras names, as keras.activations computes them.
var activations = map[string]func(s *tfgo.Scope, x tfgo.Output) tfgo.Output{
	"linear":  func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return x },
	"relu":    func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Relu(s, x) },
	"tanh":    func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Tanh(s, x) },
	"sigmoid": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Sigmoid(s, x) },
	"softmax": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.MaskedSoftmax(s, x, tfgo.Output{}, -1) },
	// keras.activations.gelu defaults to the exact (erf) form.
	"gelu": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Gelu(s, x, false) },
}

// activation looks up a Keras activation name ("" is linear).
func activation(name string) (func(*tfgo.Scope, tfgo.Output) tfgo.Output, error) {
	if name == "" {
		name = "linear"
	}
	f, ok := activations[name]
	if !ok {
		return nil, fmt.Errorf("unknown activation %q (known: linear, relu, gelu, tanh, sigmoid, softmax)", name)
	}
	return f, nil
}

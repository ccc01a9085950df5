package keraslike

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gotf/gotf/tfgo"
)

type activationFunc = func(s *tfgo.Scope, x tfgo.Output) tfgo.Output

// Activations by their Keras names, each built from the ops Keras' TensorFlow
// backend uses (keras/src/backend/tensorflow/nn.py), with Keras' default
// arguments, so that results match Keras' to the kernels' rounding.
var activations = map[string]activationFunc{
	"linear":  func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return x },
	"relu":    func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Relu(s, x) },
	"tanh":    func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Tanh(s, x) },
	"sigmoid": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Sigmoid(s, x) },
	"softmax": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.MaskedSoftmax(s, x, tfgo.Output{}, -1) },
	// keras.activations.gelu defaults to the exact (erf) form.
	"gelu":        func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Gelu(s, x, false) },
	"elu":         func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Elu(s, x) },
	"selu":        func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Selu(s, x) },
	"relu6":       func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Relu6(s, x) },
	"leaky_relu":  leakyReLU(0.2),
	"softplus":    func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Softplus(s, x) },
	"softsign":    func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Softsign(s, x) },
	"exponential": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Exp(s, x) },
	"log_softmax": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.LogSoftmax(s, x) },
	"silu":        silu,
	"mish": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
		return tfgo.Mul(s, x, tfgo.Tanh(s, tfgo.Softplus(s, x)))
	},
	"hard_sigmoid": hardSigmoid,
	"hard_silu":    func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Mul(s, x, hardSigmoid(s, x)) },
	// tf.math.log_sigmoid is -softplus(-x).
	"log_sigmoid": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
		return tfgo.Neg(s, tfgo.Softplus(s, tfgo.Neg(s, x)))
	},
	"tanh_shrink": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Sub(s, x, tfgo.Tanh(s, x)) },
	// tf.clip_by_value: minimum, then maximum.
	"hard_tanh": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
		return tfgo.Maximum(s, tfgo.Minimum(s, x, actConst(s, x, 1)), actConst(s, x, -1))
	},
	// max(x, 0) + α·expm1(min(x, 0)/α), α = 1.
	"celu": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
		neg := tfgo.RealDiv(s, tfgo.Minimum(s, x, actConst(s, x, 0)), actConst(s, x, 1))
		return tfgo.AddV2(s, tfgo.Maximum(s, x, actConst(s, x, 0)), tfgo.Mul(s, actConst(s, x, 1), tfgo.Expm1(s, neg)))
	},
	// (x + sqrt(x² + b)) / 2, b = 4.
	"squareplus": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
		y := tfgo.AddV2(s, x, tfgo.Sqrt(s, tfgo.AddV2(s, tfgo.Square(s, x), actConst(s, x, 4))))
		return tfgo.RealDiv(s, y, actConst(s, x, 2))
	},
	// Threshold 0.5: x ∓ 0.5 beyond it, 0 within.
	"soft_shrink": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
		inner := tfgo.SelectV2(s, tfgo.Less(s, x, actConst(s, x, -0.5)), tfgo.AddV2(s, x, actConst(s, x, 0.5)), tfgo.ZerosLike(s, x))
		return tfgo.SelectV2(s, tfgo.Greater(s, x, actConst(s, x, 0.5)), tfgo.Sub(s, x, actConst(s, x, 0.5)), inner)
	},
	"hard_shrink": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
		return tfgo.SelectV2(s, tfgo.Greater(s, tfgo.Abs(s, x), actConst(s, x, 0.5)), x, tfgo.ZerosLike(s, x))
	},
	// 0 up to -1, (x + 1)²/4 up to 1, then x.
	"sparse_plus": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
		mid := tfgo.Mul(s, actConst(s, x, 0.25), tfgo.Pow(s, tfgo.AddV2(s, x, actConst(s, x, 1)), actConst(s, x, 2)))
		inner := tfgo.SelectV2(s, tfgo.Less(s, x, actConst(s, x, 1)), mid, x)
		return tfgo.SelectV2(s, tfgo.LessEqual(s, x, actConst(s, x, -1)), tfgo.ZerosLike(s, x), inner)
	},
	// 0 up to -1, (x + 1)/2 up to 1, then 1.
	"sparse_sigmoid": func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
		mid := tfgo.Mul(s, actConst(s, x, 0.5), tfgo.AddV2(s, x, actConst(s, x, 1)))
		inner := tfgo.SelectV2(s, tfgo.GreaterEqual(s, x, actConst(s, x, 1)), actConst(s, x, 1), mid)
		return tfgo.SelectV2(s, tfgo.LessEqual(s, x, actConst(s, x, -1)), actConst(s, x, 0), inner)
	},
}

// activationAliases are the other names Keras deserializes.
var activationAliases = map[string]string{"swish": "silu", "hard_swish": "hard_silu"}

// silu is tf.nn.silu: x·sigmoid(β·x) with β = 1, whose product is exact.
func silu(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Mul(s, x, tfgo.Sigmoid(s, x)) }

// hardSigmoid is relu6(x + 3) / 6.
func hardSigmoid(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
	return tfgo.RealDiv(s, tfgo.Relu6(s, tfgo.AddV2(s, x, actConst(s, x, 3))), actConst(s, x, 6))
}

// actConst is the constant v in x's dtype.
func actConst(s *tfgo.Scope, x tfgo.Output, v float64) tfgo.Output {
	return scalarAs(s, v, x.DataType())
}

// activation looks up a Keras activation name ("" is linear).
func activation(name string) (activationFunc, error) {
	if name == "" {
		name = "linear"
	}
	if a, ok := activationAliases[name]; ok {
		name = a
	}
	f, ok := activations[name]
	if !ok {
		known := make([]string, 0, len(activations))
		for k := range activations {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("unknown activation %q (known: %s)", name, strings.Join(known, ", "))
	}
	return f, nil
}

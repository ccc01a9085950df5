package keraslike

import (
	"maps"
	"math"

	"github.com/gotf/gotf/tfgo"
)

// activationClass is one of Keras' activation layers that take arguments
// (ReLU, LeakyReLU, ELU, Softmax), as read from a Keras file: the function
// its arguments select and those arguments, which its config writes back.
// Arguments that select a computation keraslike does not implement are
// refused when the config is read.
type activationClass struct {
	Base
	args map[string]any
	act  activationFunc
	// rank1 marks a function over an axis (softmax): a scalar is refused.
	rank1 bool
}

// Call applies the layer's function to x.
func (a *activationClass) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(a, inputs)
	if !ok {
		return tfgo.Output{}
	}
	return applyActivation(ctx, a, &a.Base, x, a.act, a.rank1)
}

// Config is the layer's get_config: Base's keys and its arguments.
func (a *activationClass) Config() map[string]any {
	c := a.BaseConfig()
	maps.Copy(c, a.args)
	return c
}

// applyActivation checks x and applies act under the layer's name.
func applyActivation(ctx *Context, l Layer, b *Base, x tfgo.Output, act activationFunc, rank1 bool) tfgo.Output {
	if !isFloat(x.DataType()) {
		ctx.Fail(l, "needs floating-point inputs, got %s", x.DataType())
		return tfgo.Output{}
	}
	if sh, err := x.Shape(); rank1 && err == nil && !sh.UnknownRank && sh.Rank() == 0 {
		ctx.Fail(l, "needs inputs of rank >= 1 (it works over an axis), got a scalar")
		return tfgo.Output{}
	}
	b.Build(ctx)
	return act(ctx.Scope.SubScope(b.name), x)
}

func init() {
	registerBuiltin("ReLU", reluFromConfig)
	registerBuiltin("LeakyReLU", leakyReLUFromConfig)
	registerBuiltin("ELU", eluFromConfig)
	registerBuiltin("Softmax", softmaxFromConfig)
}

// reluFromConfig is keras.layers.ReLU.from_config: keras.activations.relu
// with its arguments, of which keraslike implements the plain ReLU,
// max_value 6 (Keras' relu6) and a negative slope without the others
// (Keras' leaky_relu).
func reluFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	slope := r.float("negative_slope", 0, 0, math.MaxFloat32)
	threshold := r.float("threshold", 0, -math.MaxFloat32, math.MaxFloat32)
	var maxValue any
	if r.has("max_value") {
		maxValue = r.float("max_value", 0, 0, math.MaxFloat32)
	} else {
		r.mark("max_value")
	}
	a := &activationClass{Base: NewBase("ReLU", name),
		args: map[string]any{"max_value": maxValue, "negative_slope": slope, "threshold": threshold}}
	switch {
	case threshold != 0:
		r.fail("threshold=%g is not supported (only 0)", threshold)
	case slope == 0 && maxValue == nil:
		a.act = activations["relu"]
	case slope == 0 && maxValue == 6.0:
		a.act = activations["relu6"]
	case maxValue == nil:
		a.act = leakyReLU(slope)
	default:
		r.fail("max_value=%v is not supported (only none or 6 without a negative slope)", maxValue)
	}
	return r.done(a)
}

// leakyReLUFromConfig is keras.layers.LeakyReLU.from_config (negative_slope,
// default 0.3; alpha, as Keras 2 files have it, wins where present, as in
// Keras 3's constructor).
func leakyReLUFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	key := "negative_slope"
	if _, ok := c["alpha"]; ok {
		key = "alpha"
	}
	r.mark("alpha")
	r.mark("negative_slope")
	if v, ok := c[key]; ok && v == nil {
		r.fail("%s: null is not a slope", key) // Keras refuses None too
	}
	slope := r.float(key, 0.3, 0, math.MaxFloat32)
	return r.done(&activationClass{Base: NewBase("LeakyReLU", name), args: map[string]any{"negative_slope": slope}, act: leakyReLU(slope)})
}

// leakyReLU is tf.nn.leaky_relu(x, alpha=slope).
func leakyReLU(slope float64) activationFunc {
	return func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
		return tfgo.LeakyRelu(s, x, tfgo.LeakyReluAlpha(float32(slope)))
	}
}

// eluFromConfig is keras.layers.ELU.from_config: Keras' TensorFlow backend
// computes tf.nn.elu, and where(x > 0, elu, alpha·elu) for alpha other than 1.
func eluFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	alpha := r.float("alpha", 1, -math.MaxFloat32, math.MaxFloat32)
	act := activations["elu"]
	if alpha != 1 {
		act = func(s *tfgo.Scope, x tfgo.Output) tfgo.Output {
			res := tfgo.Elu(s, x)
			return tfgo.SelectV2(s, tfgo.Greater(s, x, actConst(s, x, 0)), res, tfgo.Mul(s, actConst(s, x, alpha), res))
		}
	}
	return r.done(&activationClass{Base: NewBase("ELU", name), args: map[string]any{"alpha": alpha}, act: act})
}

// softmaxFromConfig is keras.layers.Softmax.from_config: tf.nn.softmax
// over one axis (an int, or a list of one).
func softmaxFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	axis := r.axis("axis", -1, -32, 31)
	act := func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.MaskedSoftmax(s, x, tfgo.Output{}, axis) }
	return r.done(&activationClass{Base: NewBase("Softmax", name), args: map[string]any{"axis": axis}, act: act, rank1: true})
}

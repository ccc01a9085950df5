package keraslike

import (
	"github.com/gotf/gotf/tfgo"
)

// LayerNormalizationOptions are keras.layers.LayerNormalization's arguments.
type LayerNormalizationOptions struct {
	Name string
	// Axis is the normalized axis: negative counts from the end; 0 means
	// Keras' default, -1 (normalizing over the batch axis is not offered).
	Axis int
	// Epsilon is added to the variance; 0 means Keras' default, 1e-3.
	Epsilon float64
	// NoCenter drops beta (center=False); NoScale drops gamma (scale=False).
	NoCenter, NoScale bool
	GammaInitializer  tfgo.Initializer // default ones
	BetaInitializer   tfgo.Initializer // default zeros
}

// LayerNormalization is keras.layers.LayerNormalization (Ba et al., 2016,
// "Layer Normalization"): each slice of the input along Axis is normalized
// to mean 0 and variance 1, then scaled and shifted:
//
//	y = (x - mean) / sqrt(variance + epsilon) * gamma + beta
//
// computed as keras.ops.layer_normalization computes it on the TensorFlow
// backend (tfgo.LayerNormalize; float16/bfloat16 inputs in float32, the
// result cast back). Weights: gamma then beta, both [size of Axis] (paths
// "<name>/gamma", "<name>/beta"), float32. Defaults are Keras': axis -1,
// epsilon 1e-3, center and scale.
type LayerNormalization struct {
	Base
	opts LayerNormalizationOptions

	gamma, beta *Weight
	axis        int     // as given (-1 by default)
	epsilon     float64 // resolved
}

// NewLayerNormalization returns keras.layers.LayerNormalization(...).
func NewLayerNormalization(opts LayerNormalizationOptions) *LayerNormalization {
	l := &LayerNormalization{Base: NewBase("LayerNormalization", opts.Name), opts: opts, axis: opts.Axis, epsilon: opts.Epsilon}
	l.noAutocast = true // as Keras': its statistics need float32, whatever the policy
	if l.axis == 0 {
		l.axis = -1
	}
	if l.epsilon == 0 {
		l.epsilon = 1e-3
	}
	return l
}

// Call normalizes x.
func (l *LayerNormalization) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(l, inputs)
	if !ok {
		return tfgo.Output{}
	}
	if !isFloat(x.DataType()) {
		ctx.Fail(l, "needs floating-point inputs, got %s", x.DataType())
		return tfgo.Output{}
	}
	shape := staticShape(x)
	axis := l.axis
	if axis < 0 {
		axis += len(shape)
	}
	if shape == nil || axis < 0 || axis >= len(shape) || shape[axis] < 0 {
		ctx.Fail(l, "needs inputs with axis %d of known size, got shape %v", l.axis, tfgo.Shape{Dims: shape, UnknownRank: shape == nil})
		return tfgo.Output{}
	}
	if l.Build(ctx) {
		ginit, binit := l.opts.GammaInitializer, l.opts.BetaInitializer
		if ginit == nil {
			ginit = tfgo.Ones()
		}
		if binit == nil {
			binit = tfgo.Zeros()
		}
		if !l.opts.NoScale {
			l.gamma = l.AddWeight("gamma", tfgo.Float, []int64{shape[axis]}, ginit, true)
		}
		if !l.opts.NoCenter {
			l.beta = l.AddWeight("beta", tfgo.Float, []int64{shape[axis]}, binit, true)
		}
	}
	for _, w := range []*Weight{l.gamma, l.beta} {
		if w != nil && w.Shape()[0] != shape[axis] {
			ctx.Fail(l, "was built for inputs with axis %d of size %d, got %d", l.axis, w.Shape()[0], shape[axis])
			return tfgo.Output{}
		}
	}
	s := ctx.Scope.SubScope(l.name)
	if ctx.Training && isHalf(x.DataType()) {
		// The statistics are computed in float32 from a float32 copy of x:
		// kept for the backward pass, those copies would cost more than x
		// itself. Recomputing them from x (elementwise work) keeps a mixed
		// precision model's activations in the compute dtype.
		s = s.WithRecompute()
	}
	var gamma, beta tfgo.Output
	if l.gamma != nil {
		gamma = ctx.Read(s, l.gamma, l.gamma.DType())
	}
	if l.beta != nil {
		beta = ctx.Read(s, l.beta, l.beta.DType())
	}
	// tfgo.LayerNormalize takes -1 for the last axis and reshapes the
	// parameters for broadcasting otherwise.
	a := axis
	if a == len(shape)-1 {
		a = -1
	}
	// Keras casts the result (in x's dtype) to the compute dtype: a float32
	// input to a mixed_bfloat16 LayerNormalization comes out in bfloat16.
	return castTo(s, tfgo.LayerNormalize(s, x, gamma, beta, a, float32(l.epsilon)), l.ComputeDType())
}

// Config is LayerNormalization's get_config. Like Keras, axis is an int
// before the layer is built and a one-element list after.
func (l *LayerNormalization) Config() map[string]any {
	c := l.BaseConfig()
	if l.built {
		c["axis"] = []int{l.axis}
	} else {
		c["axis"] = l.axis
	}
	c["epsilon"] = l.epsilon
	c["center"] = !l.opts.NoCenter
	c["scale"] = !l.opts.NoScale
	c["rms_scaling"] = false
	return c
}

func init() { registerBuiltin("LayerNormalization", layerNormalizationFromConfig) }

// layerNormalizationFromConfig is LayerNormalization.from_config.
// Regularizers and constraints are not implemented: a non-null one is
// refused.
func layerNormalizationFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	axis := r.axis("axis", -1, -8, 8)
	if axis == 0 {
		r.fail("axis=0 (the batch axis) is not supported")
	}
	eps := r.float("epsilon", 1e-3, 0, 1)
	center, scale := r.bool("center", true), r.bool("scale", true)
	r.want("rms_scaling", false)
	r.initializers("beta_initializer", "gamma_initializer")
	if eps == 0 {
		r.fail("epsilon=0 is not supported")
	}
	return r.done(NewLayerNormalization(LayerNormalizationOptions{Name: name, Axis: axis, Epsilon: eps, NoCenter: !center, NoScale: !scale}))
}

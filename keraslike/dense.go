package keraslike

import (
	"github.com/gotf/gotf/tfgo"
)

// DenseOptions are keras.layers.Dense's arguments beyond units.
type DenseOptions struct {
	Name       string
	Activation string // Keras name: "relu", "gelu", "softmax", "tanh", "" (linear)
	// NoBias drops the bias (use_bias=False); Keras' default is a bias.
	NoBias            bool
	KernelInitializer tfgo.Initializer // default glorot_uniform
	BiasInitializer   tfgo.Initializer // default zeros
}

// Dense is keras.layers.Dense: activation(inputs · kernel + bias) over the
// last axis of inputs of any rank >= 2. Weights: kernel [in, units], bias
// [units] (paths "<name>/kernel", "<name>/bias").
type Dense struct {
	Base
	Units int
	opts  DenseOptions
	act   func(*tfgo.Scope, tfgo.Output) tfgo.Output
	err   error

	kernel, bias *Weight
}

// NewDense returns keras.layers.Dense(units, ...).
func NewDense(units int, opts DenseOptions) *Dense {
	d := &Dense{Base: NewBase("Dense", opts.Name), Units: units, opts: opts}
	d.act, d.err = activation(opts.Activation)
	return d
}

// Call computes the layer on x.
func (d *Dense) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(d, inputs)
	if !ok {
		return tfgo.Output{}
	}
	if d.err != nil {
		ctx.Fail(d, "%v", d.err)
		return tfgo.Output{}
	}
	shape := staticShape(x)
	if len(shape) < 2 || shape[len(shape)-1] < 0 {
		ctx.Fail(d, "needs inputs of rank >= 2 with a known last dimension, got shape %v", tfgo.Shape{Dims: shape, UnknownRank: shape == nil})
		return tfgo.Output{}
	}
	if !isFloat(x.DataType()) {
		ctx.Fail(d, "needs floating-point inputs, got %s", x.DataType())
		return tfgo.Output{}
	}
	if d.Build(ctx) {
		kinit, binit := d.opts.KernelInitializer, d.opts.BiasInitializer
		if kinit == nil {
			kinit = tfgo.GlorotUniform(seedFor(d.name))
		}
		if binit == nil {
			binit = tfgo.Zeros()
		}
		d.kernel = d.AddWeight("kernel", tfgo.Float, []int64{shape[len(shape)-1], int64(d.Units)}, kinit, true)
		if !d.opts.NoBias {
			d.bias = d.AddWeight("bias", tfgo.Float, []int64{int64(d.Units)}, binit, true)
		}
	}
	if in := d.kernel.Shape()[0]; in != shape[len(shape)-1] {
		ctx.Fail(d, "was built for inputs with last dimension %d, got %d", in, shape[len(shape)-1])
		return tfgo.Output{}
	}
	s := ctx.Scope.SubScope(d.name)
	kernel := ctx.Read(s, d.kernel, x.DataType())
	// Inputs of higher rank are flattened to a matrix: one MatMul (whose
	// gradient needs no broadcasting) instead of a broadcasting BatchMatMul.
	var y tfgo.Output
	if len(shape) == 2 {
		y = tfgo.MatMul(s, x, kernel)
	} else {
		in := shape[len(shape)-1]
		flat := tfgo.MatMul(s, tfgo.Reshape(s, x, tfgo.Const(s, []int32{-1, int32(in)})), kernel)
		y = tfgo.Reshape(s, flat, outputShape(s, x, shape, int64(d.Units)))
	}
	if d.bias != nil {
		y = tfgo.BiasAdd(s, y, ctx.Read(s, d.bias, x.DataType()))
	}
	return d.act(ctx.activationScope(d, s), y)
}

// Config is Dense's get_config.
func (d *Dense) Config() map[string]any {
	c := d.BaseConfig()
	act := d.opts.Activation
	if act == "" {
		act = "linear"
	}
	c["units"] = d.Units
	c["activation"] = act
	c["use_bias"] = !d.opts.NoBias
	return c
}

func init() { registerBuiltin("Dense", denseFromConfig) }

// denseFromConfig is Dense.from_config. Regularizers, constraints and a
// quantization_config are not implemented: a non-null one is refused.
func denseFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	units := r.required("units", 1, maxDim)
	act := r.activation("activation")
	useBias := r.bool("use_bias", true)
	r.initializers("kernel_initializer", "bias_initializer")
	r.want("lora_rank", 0)
	return r.done(NewDense(units, DenseOptions{Name: name, Activation: act, NoBias: !useBias}))
}

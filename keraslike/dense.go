package keraslike

import (
	"github.com/gotf/gotf/tfgo"
)

// DenseOptions are keras.layers.Dense's arguments beyond units.
type DenseOptions struct {
	Name       string
	Activation string // a keras.activations name ("relu", "gelu", "silu", ...; all but glu and sparsemax), "" (linear)
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
	// kernelScale is set when the layer is int8-quantized (its policy
	// says so): kernel is then int8; weightOnly skips the inputs' quantizer.
	kernelScale *Weight
	weightOnly  bool
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
		kshape := []int64{shape[len(shape)-1], int64(d.Units)}
		quantized := d.policy.QuantizationMode() == "int8"
		if quantized {
			d.kernel = d.buildInt8Kernel("kernel", kshape)
		} else {
			d.kernel = d.AddWeight("kernel", tfgo.Float, kshape, kinit, true)
		}
		if !d.opts.NoBias {
			d.bias = d.AddWeight("bias", tfgo.Float, []int64{int64(d.Units)}, binit, true)
		}
		if quantized {
			d.kernelScale = d.AddWeight("kernel_scale", tfgo.Float, []int64{int64(d.Units)}, tfgo.Ones(), false)
		}
	}
	if in := d.kernel.Shape()[0]; in != shape[len(shape)-1] {
		ctx.Fail(d, "was built for inputs with last dimension %d, got %d", in, shape[len(shape)-1])
		return tfgo.Output{}
	}
	s := ctx.Scope.SubScope(d.name)
	matmul := func(x2 tfgo.Output) tfgo.Output { return tfgo.MatMul(s, x2, ctx.Read(s, d.kernel, x.DataType())) }
	if d.kernelScale != nil {
		// Rows are quantized one by one, so flattening changes nothing.
		matmul = func(x2 tfgo.Output) tfgo.Output {
			return int8MatMul(ctx, s, x2, d.kernel, d.kernelScale, int64(d.Units), d.weightOnly)
		}
	}
	// Inputs of higher rank are flattened to a matrix: one MatMul (whose
	// gradient needs no broadcasting) instead of a broadcasting BatchMatMul.
	// The bias and the activation (element-wise, or softmax over the last
	// axis, which the reshape keeps) are applied to the matrix, so that
	// Grappler's remapper can fuse MatMul, BiasAdd and a relu, or in an
	// inference graph a gelu (tf.nn.gelu's erfc form too), into one
	// _FusedMatMul.
	x2 := x
	if len(shape) > 2 {
		x2 = tfgo.Reshape(s, x, tfgo.Const(s, []int32{-1, int32(shape[len(shape)-1])}))
	}
	y := matmul(x2)
	if d.bias != nil {
		y = tfgo.BiasAdd(s, y, ctx.Read(s, d.bias, x.DataType()))
	}
	y = d.act(ctx.activationScope(d, s), y)
	if len(shape) > 2 {
		y = reshapeFused(ctx, s, y, outputShape(s, x, shape, int64(d.Units)))
	}
	return y
}

// reshapeFused reshapes the output y of a MatMul + BiasAdd that Grappler's
// remapper should fuse. The gradient of a Reshape takes the shape of its
// input, and constant folding turns that Shape into a Const with a control
// dependency on the input: the remapper leaves a BiasAdd with a control
// edge unfused. In a training graph a Snapshot in between takes that edge
// instead: Grappler removes an Identity before the remapper runs, but not
// a Snapshot, whose kernel forwards its input's buffer (13 of them take
// microseconds in a small GPT's step).
func reshapeFused(ctx *Context, s *tfgo.Scope, y, shape tfgo.Output) tfgo.Output {
	if ctx.Training {
		y = tfgo.Snapshot(s, y)
	}
	return tfgo.Reshape(s, y, shape)
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
	if d.kernelScale != nil {
		c["quantization_config"] = int8QuantizationConfig(d.weightOnly)
	}
	return c
}

// Quantization is Keras' int8 contract (quantize.go): the float kernel,
// how it is quantized (one scale per unit), and the int8 weights.
func (d *Dense) floatKernel() *Weight {
	if d.kernelScale != nil {
		return nil
	}
	return d.kernel
}

func (d *Dense) int8Layout() int8Layout {
	in := 0
	if d.kernel != nil {
		in = int(d.kernel.Shape()[0])
	}
	return int8Layout{outer: 1, reduce: in, inner: d.Units, kernelName: "kernel", scaleName: "kernel_scale", scaleShape: []int64{int64(d.Units)}}
}

func (d *Dense) setInt8(kernel, scale *Weight, weightOnly bool) {
	d.kernel, d.kernelScale, d.weightOnly = kernel, scale, weightOnly
}

func init() { registerBuiltin("Dense", denseFromConfig) }

// denseFromConfig is Dense.from_config. Regularizers and constraints are
// not implemented: a non-null one is refused; so is a quantization_config
// other than the int8 one Keras writes.
func denseFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	units := r.required("units", 1, maxDim)
	act := r.activation("activation")
	useBias := r.bool("use_bias", true)
	r.initializers("kernel_initializer", "bias_initializer")
	r.want("lora_rank", 0)
	weightOnly := readQuantizationConfig(r)
	d := NewDense(units, DenseOptions{Name: name, Activation: act, NoBias: !useBias})
	d.weightOnly = weightOnly
	return r.done(d)
}

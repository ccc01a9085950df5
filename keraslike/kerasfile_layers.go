package keraslike

import (
	"github.com/gotf/gotf/tfgo"
)

// The weightless Keras layers that functional models read from Keras files
// use between the others: merges and poolings.

// listInput marks layers whose Keras call takes its inputs as one list
// (Add()([a, b])), so that functional configs say so.
type listInput interface{ takesList() }

// AddOptions are keras.layers.Add's arguments.
type AddOptions struct{ Name string }

// Add is keras.layers.Add: the sum of its inputs (two or more, of one
// dtype, broadcasting as keras.ops.add does), added left to right.
type Add struct{ Base }

// NewAdd returns keras.layers.Add(...).
func NewAdd(opts AddOptions) *Add { return &Add{Base: newBase("Add", opts.Name)} }

func (*Add) takesList() {}

// Call sums inputs.
func (a *Add) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	if len(inputs) < 2 {
		ctx.fail(a, "takes at least 2 inputs, got %d", len(inputs))
		return tfgo.Output{}
	}
	if ctx.Scope.Err() != nil {
		return tfgo.Output{}
	}
	for i, x := range inputs {
		if x.Op == nil {
			return tfgo.Output{}
		}
		if x.DataType() != inputs[0].DataType() {
			ctx.fail(a, "input %d is %s, input 0 is %s", i, x.DataType(), inputs[0].DataType())
			return tfgo.Output{}
		}
	}
	a.build(ctx)
	s := ctx.Scope.SubScope(a.name)
	y := inputs[0]
	for _, x := range inputs[1:] {
		y = tfgo.AddV2(s, y, x)
	}
	return y
}

// Config is Add's get_config.
func (a *Add) Config() map[string]any { return a.baseConfig() }

// GlobalPooling1DOptions are keras.layers.GlobalAveragePooling1D's and
// GlobalMaxPooling1D's arguments (data_format is channels_last).
type GlobalPooling1DOptions struct {
	Name     string
	KeepDims bool
}

// GlobalPooling1D is keras.layers.GlobalAveragePooling1D (the mean over the
// steps of [batch, steps, features]) or GlobalMaxPooling1D (the maximum),
// giving [batch, features] ([batch, 1, features] with KeepDims). Masks are
// not supported.
type GlobalPooling1D struct {
	Base
	max  bool
	opts GlobalPooling1DOptions
}

// NewGlobalAveragePooling1D returns keras.layers.GlobalAveragePooling1D(...).
func NewGlobalAveragePooling1D(opts GlobalPooling1DOptions) *GlobalPooling1D {
	return &GlobalPooling1D{Base: newBase("GlobalAveragePooling1D", opts.Name), opts: opts}
}

// NewGlobalMaxPooling1D returns keras.layers.GlobalMaxPooling1D(...).
func NewGlobalMaxPooling1D(opts GlobalPooling1DOptions) *GlobalPooling1D {
	return &GlobalPooling1D{Base: newBase("GlobalMaxPooling1D", opts.Name), max: true, opts: opts}
}

// Call pools x over its steps.
func (p *GlobalPooling1D) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	if len(inputs) != 1 {
		ctx.fail(p, "takes 1 input, got %d", len(inputs))
		return tfgo.Output{}
	}
	x := inputs[0]
	if ctx.Scope.Err() != nil || x.Op == nil {
		return tfgo.Output{}
	}
	if sh := staticShape(x); len(sh) != 3 {
		ctx.fail(p, "needs inputs of rank 3 [batch, steps, features], got shape %v", tfgo.Shape{Dims: sh, UnknownRank: sh == nil})
		return tfgo.Output{}
	}
	if !isFloat(x.DataType()) {
		ctx.fail(p, "needs floating-point inputs, got %s", x.DataType())
		return tfgo.Output{}
	}
	p.build(ctx)
	s := ctx.Scope.SubScope(p.name)
	if p.max {
		return tfgo.Max(s, x, tfgo.Const(s, []int32{1}), tfgo.MaxKeepDims(p.opts.KeepDims))
	}
	return tfgo.Mean(s, x, tfgo.Const(s, []int32{1}), tfgo.MeanKeepDims(p.opts.KeepDims))
}

// Config is the pooling's get_config.
func (p *GlobalPooling1D) Config() map[string]any {
	c := p.baseConfig()
	c["data_format"] = "channels_last"
	c["keepdims"] = p.opts.KeepDims
	return c
}

// FlattenOptions are keras.layers.Flatten's arguments.
type FlattenOptions struct{ Name string }

// Flatten is keras.layers.Flatten: [batch, d1, d2, ...] to [batch, d1·d2·...]
// (the dimensions after the batch must be known).
type Flatten struct{ Base }

// NewFlatten returns keras.layers.Flatten(...).
func NewFlatten(opts FlattenOptions) *Flatten { return &Flatten{Base: newBase("Flatten", opts.Name)} }

// Call flattens x.
func (f *Flatten) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	if len(inputs) != 1 {
		ctx.fail(f, "takes 1 input, got %d", len(inputs))
		return tfgo.Output{}
	}
	x := inputs[0]
	if ctx.Scope.Err() != nil || x.Op == nil {
		return tfgo.Output{}
	}
	sh := staticShape(x)
	if len(sh) < 1 {
		ctx.fail(f, "needs inputs of rank >= 1, got shape %v", tfgo.Shape{Dims: sh, UnknownRank: sh == nil})
		return tfgo.Output{}
	}
	n := int64(1)
	for _, d := range sh[1:] {
		if d < 0 {
			ctx.fail(f, "needs the dimensions after the batch known, got shape %v", tfgo.Shape{Dims: sh})
			return tfgo.Output{}
		}
		n *= d
	}
	f.build(ctx)
	s := ctx.Scope.SubScope(f.name)
	return tfgo.Reshape(s, x, tfgo.Const(s, []int64{-1, n}))
}

// Config is Flatten's get_config.
func (f *Flatten) Config() map[string]any {
	c := f.baseConfig()
	c["data_format"] = "channels_last"
	return c
}

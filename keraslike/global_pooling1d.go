package keraslike

import (
	"github.com/gotf/gotf/tfgo"
)

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
	return &GlobalPooling1D{Base: NewBase("GlobalAveragePooling1D", opts.Name), opts: opts}
}

// NewGlobalMaxPooling1D returns keras.layers.GlobalMaxPooling1D(...).
func NewGlobalMaxPooling1D(opts GlobalPooling1DOptions) *GlobalPooling1D {
	return &GlobalPooling1D{Base: NewBase("GlobalMaxPooling1D", opts.Name), max: true, opts: opts}
}

// Call pools x over its steps.
func (p *GlobalPooling1D) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(p, inputs)
	if !ok {
		return tfgo.Output{}
	}
	if sh := staticShape(x); len(sh) != 3 {
		ctx.Fail(p, "needs inputs of rank 3 [batch, steps, features], got shape %v", tfgo.Shape{Dims: sh, UnknownRank: sh == nil})
		return tfgo.Output{}
	}
	if !isFloat(x.DataType()) {
		ctx.Fail(p, "needs floating-point inputs, got %s", x.DataType())
		return tfgo.Output{}
	}
	p.Build(ctx)
	s := ctx.Scope.SubScope(p.name)
	if p.max {
		return tfgo.Max(s, x, tfgo.Const(s, []int32{1}), tfgo.MaxKeepDims(p.opts.KeepDims))
	}
	return tfgo.Mean(s, x, tfgo.Const(s, []int32{1}), tfgo.MeanKeepDims(p.opts.KeepDims))
}

// Config is the pooling's get_config.
func (p *GlobalPooling1D) Config() map[string]any {
	c := p.BaseConfig()
	c["data_format"] = "channels_last"
	c["keepdims"] = p.opts.KeepDims
	return c
}

func init() {
	registerBuiltin("GlobalAveragePooling1D", func(c map[string]any) (Layer, error) { return poolingFromConfig(c, false) })
	registerBuiltin("GlobalMaxPooling1D", func(c map[string]any) (Layer, error) { return poolingFromConfig(c, true) })
}

// poolingFromConfig is GlobalAveragePooling1D's (GlobalMaxPooling1D's with
// max) from_config.
func poolingFromConfig(c map[string]any, max bool) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	r.want("data_format", "channels_last")
	opts := GlobalPooling1DOptions{Name: name, KeepDims: r.bool("keepdims", false)}
	if max {
		return r.done(NewGlobalMaxPooling1D(opts))
	}
	return r.done(NewGlobalAveragePooling1D(opts))
}

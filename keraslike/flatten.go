package keraslike

import (
	"github.com/gotf/gotf/tfgo"
)

// FlattenOptions are keras.layers.Flatten's arguments.
type FlattenOptions struct{ Name string }

// Flatten is keras.layers.Flatten: [batch, d1, d2, ...] to [batch, d1·d2·...]
// (the dimensions after the batch must be known).
type Flatten struct{ Base }

// NewFlatten returns keras.layers.Flatten(...).
func NewFlatten(opts FlattenOptions) *Flatten { return &Flatten{Base: NewBase("Flatten", opts.Name)} }

// Call flattens x.
func (f *Flatten) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(f, inputs)
	if !ok {
		return tfgo.Output{}
	}
	sh := staticShape(x)
	if len(sh) < 1 {
		ctx.Fail(f, "needs inputs of rank >= 1, got shape %v", tfgo.Shape{Dims: sh, UnknownRank: sh == nil})
		return tfgo.Output{}
	}
	n := int64(1)
	for _, d := range sh[1:] {
		if d < 0 {
			ctx.Fail(f, "needs the dimensions after the batch known, got shape %v", tfgo.Shape{Dims: sh})
			return tfgo.Output{}
		}
		n *= d
	}
	f.Build(ctx)
	s := ctx.Scope.SubScope(f.name)
	return tfgo.Reshape(s, x, tfgo.Const(s, []int64{-1, n}))
}

// Config is Flatten's get_config.
func (f *Flatten) Config() map[string]any {
	c := f.BaseConfig()
	c["data_format"] = "channels_last"
	return c
}

func init() { registerBuiltin("Flatten", flattenFromConfig) }

// flattenFromConfig is Flatten.from_config.
func flattenFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	r.want("data_format", "channels_last")
	return r.done(NewFlatten(FlattenOptions{Name: name}))
}

package keraslike

import (
	"github.com/gotf/gotf/tfgo"
)

// AddOptions are keras.layers.Add's arguments.
type AddOptions struct{ Name string }

// Add is keras.layers.Add: the sum of its inputs (two or more, of one
// dtype, broadcasting as keras.ops.add does), added left to right.
type Add struct{ Base }

// NewAdd returns keras.layers.Add(...).
func NewAdd(opts AddOptions) *Add { return &Add{Base: NewBase("Add", opts.Name)} }

func (*Add) takesList() {}

// Call sums inputs.
func (a *Add) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	inputs, ok := mergeInputs(ctx, a, inputs)
	if !ok {
		return tfgo.Output{}
	}
	a.Build(ctx)
	return chain(tfgo.AddV2)(ctx.Scope.SubScope(a.name), inputs)
}

// Config is Add's get_config.
func (a *Add) Config() map[string]any { return a.BaseConfig() }

func init() {
	registerBuiltin("Add", func(c map[string]any) (Layer, error) {
		return weightless(c, func(n string) Layer { return NewAdd(AddOptions{Name: n}) })
	})
}

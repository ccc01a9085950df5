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
	if len(inputs) < 2 {
		ctx.Fail(a, "takes at least 2 inputs, got %d", len(inputs))
		return tfgo.Output{}
	}
	if !ctx.usable() {
		return tfgo.Output{}
	}
	inputs = append([]tfgo.Output(nil), inputs...)
	for i, x := range inputs {
		if x.Op == nil {
			return tfgo.Output{}
		}
		inputs[i] = ctx.autocast(a, x)
		x = inputs[i]
		if x.DataType() != inputs[0].DataType() {
			ctx.Fail(a, "input %d is %s, input 0 is %s", i, x.DataType(), inputs[0].DataType())
			return tfgo.Output{}
		}
	}
	a.Build(ctx)
	s := ctx.Scope.SubScope(a.name)
	y := inputs[0]
	for _, x := range inputs[1:] {
		y = tfgo.AddV2(s, y, x)
	}
	return y
}

// Config is Add's get_config.
func (a *Add) Config() map[string]any { return a.BaseConfig() }

func init() {
	registerBuiltin("Add", func(c map[string]any) (Layer, error) {
		return weightless(c, func(n string) Layer { return NewAdd(AddOptions{Name: n}) })
	})
}

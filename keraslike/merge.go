package keraslike

import (
	"maps"

	"github.com/gotf/gotf/tfgo"
)

// mergeLayer is one of Keras' merge layers besides Add (Subtract,
// Multiply, Average, Maximum, Minimum, Concatenate), as read from a Keras
// file: inputs of one dtype and one rank, combined left to right as the
// layer's _merge_function does. Inputs of different ranks, which Keras
// first expands at axis 1, are refused.
type mergeLayer struct {
	Base
	args  map[string]any
	exact int // the number of inputs it takes, or 0 for two or more
	merge func(s *tfgo.Scope, xs []tfgo.Output) tfgo.Output
}

func (*mergeLayer) takesList() {}

// Call merges inputs.
func (m *mergeLayer) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	if m.exact > 0 && len(inputs) != m.exact {
		ctx.Fail(m, "takes exactly %d inputs, got %d", m.exact, len(inputs))
		return tfgo.Output{}
	}
	xs, ok := mergeInputs(ctx, m, inputs)
	if !ok {
		return tfgo.Output{}
	}
	rank0 := len(staticShape(xs[0]))
	for i, x := range xs {
		sh := staticShape(x)
		if sh == nil {
			ctx.Fail(m, "needs inputs of known rank")
			return tfgo.Output{}
		}
		if len(sh) != rank0 {
			ctx.Fail(m, "input %d has rank %d, input 0 rank %d: inputs of different ranks (which Keras expands at axis 1) are not supported", i, len(sh), rank0)
			return tfgo.Output{}
		}
	}
	m.Build(ctx)
	return m.merge(ctx.Scope.SubScope(m.name), xs)
}

// mergeInputs checks a merge layer's inputs (two or more, of one dtype
// after Keras' autocast) and returns them autocast.
func mergeInputs(ctx *Context, l Layer, inputs []tfgo.Output) ([]tfgo.Output, bool) {
	if len(inputs) < 2 {
		ctx.Fail(l, "takes at least 2 inputs, got %d", len(inputs))
		return nil, false
	}
	if !ctx.usable() {
		return nil, false
	}
	xs := make([]tfgo.Output, len(inputs))
	for i, x := range inputs {
		if x.Op == nil {
			return nil, false
		}
		xs[i] = ctx.autocast(l, x)
		if xs[i].DataType() != xs[0].DataType() {
			ctx.Fail(l, "input %d is %s, input 0 is %s", i, xs[i].DataType(), xs[0].DataType())
			return nil, false
		}
	}
	return xs, true
}

// Config is the layer's get_config.
func (m *mergeLayer) Config() map[string]any {
	c := m.BaseConfig()
	maps.Copy(c, m.args)
	return c
}

// chain folds xs left to right with op.
func chain(op func(*tfgo.Scope, tfgo.Output, tfgo.Output) tfgo.Output) func(*tfgo.Scope, []tfgo.Output) tfgo.Output {
	return func(s *tfgo.Scope, xs []tfgo.Output) tfgo.Output {
		y := xs[0]
		for _, x := range xs[1:] {
			y = op(s, y, x)
		}
		return y
	}
}

func init() {
	merges := map[string]struct {
		exact int
		merge func(*tfgo.Scope, []tfgo.Output) tfgo.Output
	}{
		"Subtract": {2, chain(tfgo.Sub)},
		"Multiply": {0, chain(tfgo.Mul)},
		"Maximum":  {0, chain(tfgo.Maximum)},
		"Minimum":  {0, chain(tfgo.Minimum)},
		// The sum divided by the count, as keras.layers.Average computes it.
		"Average": {0, func(s *tfgo.Scope, xs []tfgo.Output) tfgo.Output {
			return tfgo.RealDiv(s, chain(tfgo.AddV2)(s, xs), actConst(s, xs[0], float64(len(xs))))
		}},
	}
	for class, m := range merges {
		registerBuiltin(class, func(c map[string]any) (Layer, error) {
			return weightless(c, func(n string) Layer {
				return &mergeLayer{Base: NewBase(class, n), exact: m.exact, merge: m.merge}
			})
		})
	}
	registerBuiltin("Concatenate", concatenateFromConfig)
}

// concatenateFromConfig is keras.layers.Concatenate.from_config: tf.concat
// of the inputs along axis (default -1).
func concatenateFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	axis := r.int("axis", -1, -32, 31)
	return r.done(&mergeLayer{Base: NewBase("Concatenate", name), args: map[string]any{"axis": axis},
		merge: func(s *tfgo.Scope, xs []tfgo.Output) tfgo.Output {
			return tfgo.ConcatV2(s, xs, tfgo.Const(s, int32(axis)))
		}})
}

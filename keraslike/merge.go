package keraslike

import (
	"math"
	"slices"

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
	if len(inputs) < 2 {
		ctx.Fail(m, "takes at least 2 inputs, got %d", len(inputs))
		return tfgo.Output{}
	}
	if !ctx.usable() {
		return tfgo.Output{}
	}
	xs := make([]tfgo.Output, len(inputs))
	rank0 := -1
	for i, x := range inputs {
		if x.Op == nil {
			return tfgo.Output{}
		}
		xs[i] = ctx.autocast(m, x)
		if xs[i].DataType() != xs[0].DataType() {
			ctx.Fail(m, "input %d is %s, input 0 is %s", i, xs[i].DataType(), xs[0].DataType())
			return tfgo.Output{}
		}
		sh := staticShape(xs[i])
		if sh == nil {
			ctx.Fail(m, "needs inputs of known rank")
			return tfgo.Output{}
		}
		if i == 0 {
			rank0 = len(sh)
		} else if len(sh) != rank0 {
			ctx.Fail(m, "input %d has rank %d, input 0 rank %d: inputs of different ranks (which Keras expands at axis 1) are not supported", i, len(sh), rank0)
			return tfgo.Output{}
		}
	}
	m.Build(ctx)
	return m.merge(ctx.Scope.SubScope(m.name), xs)
}

// Config is the layer's get_config.
func (m *mergeLayer) Config() map[string]any {
	c := m.BaseConfig()
	for k, v := range m.args {
		c[k] = v
	}
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
	registerBuiltin("Reshape", reshapeFromConfig)
	registerBuiltin("Permute", permuteFromConfig)
	registerBuiltin("Identity", func(c map[string]any) (Layer, error) {
		return weightless(c, func(n string) Layer {
			return &activationClass{Base: NewBase("Identity", n), act: func(s *tfgo.Scope, x tfgo.Output) tfgo.Output { return tfgo.Identity(s, x) }}
		})
	})
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

// reshapeLayer is keras.layers.Reshape (target_shape: the shape after the
// batch, one dimension may be -1) or keras.layers.Permute (dims: a
// permutation of the axes after the batch, numbered from 1).
type reshapeLayer struct {
	Base
	args map[string]any
	dims []int64
	// permute: transpose by [0, dims...] rather than reshape to [batch, dims...].
	permute bool
}

// Call reshapes or transposes x.
func (l *reshapeLayer) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(l, inputs)
	if !ok {
		return tfgo.Output{}
	}
	sh := staticShape(x)
	if sh == nil || len(sh) == 0 {
		ctx.Fail(l, "needs an input of known rank with a batch axis")
		return tfgo.Output{}
	}
	l.Build(ctx)
	s := ctx.Scope.SubScope(l.name)
	if l.permute {
		if len(l.dims) != len(sh)-1 {
			ctx.Fail(l, "dims %v do not permute the %d axes after the batch", l.dims, len(sh)-1)
			return tfgo.Output{}
		}
		return tfgo.Transpose(s, x, tfgo.Const(s, append([]int64{0}, l.dims...)))
	}
	// Keras resolves a -1 from the input's known dimensions, so that the
	// output's shape is known; the batch is then the one unknown.
	dims := resolveReshape(sh[1:], l.dims)
	if dims == nil {
		ctx.Fail(l, "cannot reshape %v to %v", tfgo.Shape{Dims: sh}, l.dims)
		return tfgo.Output{}
	}
	if !slices.Contains(dims, -1) {
		return tfgo.Reshape(s, x, tfgo.Const(s, append([]int64{-1}, dims...)))
	}
	batch := tfgo.StridedSlice(s, tfgo.ShapeOf(s, x, tfgo.ShapeOutType(tfgo.Int64)), tfgo.Const(s, []int32{0}), tfgo.Const(s, []int32{1}), tfgo.Const(s, []int32{1}))
	return tfgo.Reshape(s, x, tfgo.ConcatV2(s, []tfgo.Output{batch, tfgo.Const(s, dims)}, tfgo.Const(s, int32(0))))
}

// resolveReshape is target with its -1 worked out from the input's
// dimensions after the batch when they are all known (target unchanged
// otherwise), or nil when the sizes cannot match.
func resolveReshape(in, target []int64) []int64 {
	n := int64(1)
	for _, d := range in {
		if d < 0 {
			return target
		}
		n *= d
	}
	known, at := int64(1), -1
	for i, d := range target {
		if d == -1 {
			at = i
		} else {
			known *= d
		}
	}
	if at < 0 {
		if known != n {
			return nil
		}
		return target
	}
	if known == 0 || n%known != 0 {
		return nil
	}
	out := slices.Clone(target)
	out[at] = n / known
	return out
}

// Config is the layer's get_config.
func (l *reshapeLayer) Config() map[string]any {
	c := l.BaseConfig()
	for k, v := range l.args {
		c[k] = v
	}
	return c
}

// dimsList reads a list of integers in [lo, hi] (at most 32).
func dimsList(r *cfg, key string, lo, hi int) []int64 {
	v, ok := r.raw(key).([]any)
	if !ok || len(v) == 0 || len(v) > 32 {
		r.fail("%s: want a list of 1 to 32 integers, got %s", key, excerpt(r.c[key]))
		return nil
	}
	out := make([]int64, len(v))
	for i, d := range v {
		out[i] = int64(r.intValue(key, d, lo, hi))
	}
	return out
}

func reshapeFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	dims := dimsList(r, "target_shape", -1, math.MaxInt32)
	unknown := 0
	for _, d := range dims {
		if d == -1 {
			unknown++
		} else if d == 0 {
			r.fail("target_shape: %v has a zero dimension", dims)
		}
	}
	if unknown > 1 {
		r.fail("target_shape: %v has more than one unknown (-1) dimension", dims)
	}
	return r.done(&reshapeLayer{Base: NewBase("Reshape", name), args: map[string]any{"target_shape": dims}, dims: dims})
}

func permuteFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	dims := dimsList(r, "dims", 1, 32)
	seen := map[int64]bool{}
	for _, d := range dims {
		if seen[d] || d > int64(len(dims)) {
			r.fail("dims: %v is not a permutation of 1..%d", dims, len(dims))
			break
		}
		seen[d] = true
	}
	return r.done(&reshapeLayer{Base: NewBase("Permute", name), args: map[string]any{"dims": dims}, dims: dims, permute: true})
}

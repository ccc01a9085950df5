package keraslike

import (
	"maps"
	"math"
	"slices"

	"github.com/gotf/gotf/tfgo"
)

func init() {
	registerBuiltin("Reshape", reshapeFromConfig)
	registerBuiltin("Permute", permuteFromConfig)
	registerBuiltin("Identity", func(c map[string]any) (Layer, error) {
		return weightless(c, func(n string) Layer { return &identityLayer{Base: NewBase("Identity", n)} })
	})
}

// identityLayer is keras.layers.Identity: its input, of any dtype.
type identityLayer struct{ Base }

// Call returns x.
func (l *identityLayer) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(l, inputs)
	if !ok {
		return tfgo.Output{}
	}
	l.Build(ctx)
	return tfgo.Identity(ctx.Scope.SubScope(l.name), x)
}

// Config is Identity's get_config.
func (l *identityLayer) Config() map[string]any { return l.BaseConfig() }

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
	maps.Copy(c, l.args)
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

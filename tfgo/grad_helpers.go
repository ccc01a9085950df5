package tfgo

import (
	"fmt"
	"slices"

	"github.com/gotf/gotf/dtypes/half"
)

// zeroOf is a Go zero of a numeric dtype, for Const.
func zeroOf(dt DataType) any { return scalarOf(dt, 0) }

// scalarOf is v as a Go scalar of a floating or integer dtype.
func scalarOf(dt DataType, v float64) any {
	switch dt {
	case Float:
		return float32(v)
	case Double:
		return v
	case Half:
		return half.NewFloat16(float32(v))
	case BFloat16:
		return half.NewBFloat16(float32(v))
	case Int32:
		return int32(v)
	case Int64:
		return int64(v)
	case Complex64:
		return complex64(complex(v, 0))
	case Complex128:
		return complex(v, 0)
	}
	return float32(v)
}

// scalar adds a constant scalar of x's dtype.
func scalar(s *Scope, like Output, v float64) Output {
	return Const(s.SubScope("const"), scalarOf(like.DataType(), v))
}

func shapeOfOutput(s *Scope, x Output) Output {
	return ShapeOf(s, x, ShapeOutType(Int32))
}

// staticDims returns x's shape when it is fully known at graph-build time.
func staticDims(x Output) ([]int64, bool) {
	sh, err := x.Shape()
	if err != nil || !sh.IsFullyDefined() {
		return nil, false
	}
	return sh.Dims, true
}

func int32s(v []int64) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// unbroadcast sums grad (shaped like the broadcast result) down to the
// shape of x, as the gradients of broadcasting ops need.
func unbroadcast(s *Scope, grad, x Output) Output {
	xd, okx := staticDims(x)
	gd, okg := staticDims(grad)
	if okx && okg {
		if equalDims(xd, gd) {
			return grad
		}
		// Axes where x was broadcast: leading extra axes, and 1-sized ones.
		var axes []int32
		lead := len(gd) - len(xd)
		for i := range gd {
			if i < lead || (xd[i-lead] == 1 && gd[i] != 1) {
				axes = append(axes, int32(i))
			}
		}
		sum := grad
		if len(axes) > 0 {
			sum = Sum(s, grad, Const(s.SubScope("axes"), axes), SumKeepDims(false))
		}
		return Reshape(s, sum, Const(s.SubScope("shape"), int32s(xd)))
	}
	sx, sg := shapeOfOutput(s, x), shapeOfOutput(s, grad)
	r0, _ := BroadcastGradientArgs(s, sx, sg)
	sum := Sum(s, grad, r0, SumKeepDims(false))
	return Reshape(s, sum, sx)
}

func equalDims(a, b []int64) bool { return slices.Equal(a, b) }

// attrBool reads a bool attr (false when absent).
func attrBool(op *Operation, name string) bool {
	v, err := op.Attr(name)
	if err != nil {
		return false
	}
	b, _ := v.(bool)
	return b
}

func attrInt(op *Operation, name string) (int64, error) {
	v, err := op.Attr(name)
	if err != nil {
		return 0, err
	}
	i, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("attr %s is %T, not int", name, v)
	}
	return i, nil
}

// constInt32s reads a small int32/int64 Const input (an axis, a permutation).
func constInt64s(o Output) ([]int64, bool) {
	if o.Op.Type() != "Const" {
		return nil, false
	}
	v, err := o.Op.Attr("value")
	if err != nil {
		return nil, false
	}
	t := v.(*Tensor)
	defer t.Close()
	switch t.DataType() {
	case Int32:
		i, _ := Int32s(t)
		out := make([]int64, len(i))
		for k, x := range i {
			out[k] = int64(x)
		}
		return out, true
	case Int64:
		i, _ := Int64s(t)
		return i, true
	}
	return nil, false
}

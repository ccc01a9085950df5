package keraslike

import (
	"math"

	"github.com/gotf/gotf/tfgo"
)

// Keras operations that move elements: reshape, transpose, expand_dims,
// squeeze, concatenate, stack, and indexing (GetItem: x[:, 0], x[..., 1:3]).

// isShape is a reshape's newshape: ints (-1 for the inferred one) or
// nulls, which Keras takes as -1.
func isShape(v any) bool {
	l, ok := v.([]any)
	if !ok || len(l) > 16 {
		return isInt(v)
	}
	for _, e := range l {
		if !isIntOrNull(e) {
			return false
		}
	}
	return true
}

func registerShapeOps() {
	opTable["Reshape"] = onX(numpyOps, map[string]opParam{"newshape": {nil, isShape}}, func(c *opCall, x tfgo.Output) tfgo.Output {
		var shape []int64
		switch v := c.param("newshape").(type) {
		case float64:
			shape = []int64{int64(v)}
		case []any:
			for _, e := range v {
				d := int64(-1)
				if e != nil {
					d = int64(toFloat(e))
				}
				shape = append(shape, d)
			}
		default:
			return c.fail("no newshape")
		}
		return tfgo.Reshape(c.s, x, tfgo.Const(c.s, append([]int64{}, shape...)))
	})
	opTable["Transpose"] = onX(numpyOps, map[string]opParam{"axes": {nil, func(v any) bool { return v == nil || isIntList(v) }}}, func(c *opCall, x tfgo.Output) tfgo.Output {
		perm, all := c.axes("axes")
		if all {
			n, ok := c.rank(x)
			if !ok {
				return tfgo.Output{}
			}
			for i := n - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		return tfgo.Transpose(c.s, x, tfgo.Const(c.s, append([]int64{}, perm...)))
	})
	opTable["ExpandDims"] = onX(numpyOps, map[string]opParam{"axis": {nil, func(v any) bool { return isInt(v) || isIntList(v) }}}, func(c *opCall, x tfgo.Output) tfgo.Output {
		axes, _ := c.axes("axis")
		n, ok := c.rank(x)
		if !ok {
			return tfgo.Output{}
		}
		// numpy places each axis in the result's dimensions.
		out := n + len(axes)
		norm := make([]int64, len(axes))
		for i, a := range axes {
			if a < 0 {
				a += int64(out)
			}
			if a < 0 || a >= int64(out) {
				return c.fail("axis %d is out of range for rank %d", axes[i], out)
			}
			norm[i] = a
		}
		sortInt64(norm)
		for _, a := range norm {
			x = tfgo.ExpandDims(c.s, x, tfgo.Const(c.s, a))
		}
		return x
	})
	opTable["Squeeze"] = onX(numpyOps, map[string]opParam{"axis": {nil, isAxis}}, func(c *opCall, x tfgo.Output) tfgo.Output {
		axes, all := c.axes("axis")
		if all {
			return tfgo.Squeeze(c.s, x)
		}
		return tfgo.Squeeze(c.s, x, tfgo.SqueezeSqueezeDims(axes))
	})
	opTable["Concatenate"] = &opDef{module: numpyOps, args: []string{"xs"}, params: map[string]opParam{"axis": {0.0, isInt}},
		call: func(c *opCall) tfgo.Output {
			xs, ok := c.list("xs")
			if !ok {
				return tfgo.Output{}
			}
			if len(xs) == 1 { // ConcatV2 takes two or more
				return tfgo.Identity(c.s, xs[0])
			}
			return tfgo.ConcatV2(c.s, xs, tfgo.Const(c.s, int32(c.intParam("axis"))))
		}}
	opTable["Stack"] = &opDef{module: numpyOps, args: []string{"x"}, params: map[string]opParam{"axis": {0.0, isInt}},
		call: func(c *opCall) tfgo.Output {
			xs, ok := c.list("x")
			if !ok {
				return tfgo.Output{}
			}
			return tfgo.Pack(c.s, xs, tfgo.PackAxis(int64(c.intParam("axis"))))
		}}
	opTable["GetItem"] = &opDef{module: numpyOps, args: []string{"x", "key"}, call: getItem}
}

func sortInt64(v []int64) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// list is a list argument (concatenate's xs) as tensors of one dtype.
func (c *opCall) list(name string) ([]tfgo.Output, bool) {
	var vals []any
	switch l := c.args[name].(type) {
	case []any:
		vals = l
	case []tfgo.Output:
		for _, x := range l {
			vals = append(vals, x)
		}
	default:
		c.fail("%s: want a list of tensors, got %s", name, excerpt(c.args[name]))
		return nil, false
	}
	if len(vals) == 0 {
		c.fail("%s: an empty list", name)
		return nil, false
	}
	return c.operands(vals...)
}

// getItem is x[key] as TensorFlow's __getitem__ builds it: one
// StridedSlice whose masks say which dimensions an int takes away (shrink),
// a slice leaves open (begin, end), None adds (new axis) and ... skips
// (ellipsis).
func getItem(c *opCall) tfgo.Output {
	x, ok := c.tensor("x")
	if !ok {
		return tfgo.Output{}
	}
	key, isList := c.args["key"].([]any)
	if !isList {
		key = []any{c.args["key"]}
	}
	if len(key) > 16 {
		return c.fail("an index of %d elements", len(key))
	}
	var begin, end, strides []int64
	var beginMask, endMask, ellipsisMask, newAxisMask, shrinkMask int64
	for i, k := range key {
		bit := int64(1) << i
		b, e, st := int64(0), int64(0), int64(1)
		switch v := k.(type) {
		case float64, int:
			f := toFloat(v)
			if f != math.Trunc(f) {
				return c.fail("index element %d: %s is not an integer", i, excerpt(k))
			}
			b, e = int64(f), int64(f)+1
			shrinkMask |= bit
		case Slice:
			if v.Start == nil {
				beginMask |= bit
			} else {
				b = int64(*v.Start)
			}
			if v.Stop == nil {
				endMask |= bit
			} else {
				e = int64(*v.Stop)
			}
			if v.Step != nil {
				if *v.Step == 0 {
					return c.fail("index element %d: a slice step of 0", i)
				}
				st = int64(*v.Step)
			}
		case ellipsis:
			if ellipsisMask != 0 {
				return c.fail("an index with two ellipses")
			}
			ellipsisMask |= bit
		case newAxis, nil:
			newAxisMask |= bit
		default:
			return c.fail("index element %d (%s) is not an int, slice, None or ... (tensor indices are not supported)", i, excerpt(k))
		}
		begin, end, strides = append(begin, b), append(end, e), append(strides, st)
	}
	if len(key) == 0 {
		return x
	}
	return tfgo.StridedSlice(c.s, x, tfgo.Const(c.s, begin), tfgo.Const(c.s, end), tfgo.Const(c.s, strides),
		tfgo.StridedSliceBeginMask(beginMask), tfgo.StridedSliceEndMask(endMask),
		tfgo.StridedSliceEllipsisMask(ellipsisMask), tfgo.StridedSliceNewAxisMask(newAxisMask),
		tfgo.StridedSliceShrinkAxisMask(shrinkMask))
}

package tfgo

import (
	"fmt"
)

// Gradients of shape manipulation, slicing and gathering, as TensorFlow's
// array_grad.py computes them (gathers give dense gradients).

func init() {
	reshapeBack := func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{Reshape(s, g[0], shapeOfOutput(s, op.Input(0)))}, nil
	}
	RegisterGradient("Reshape", reshapeBack)
	RegisterGradient("ExpandDims", reshapeBack)
	RegisterGradient("Squeeze", reshapeBack)
	RegisterGradient("Transpose", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{Transpose(s, g[0], InvertPermutation(s, op.Input(1)))}, nil
	})
	RegisterGradient("ConcatV2", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		n := op.NumInputs() - 1
		axis := op.Input(n)
		shapes := make([]Output, n)
		for i := range shapes {
			shapes[i] = shapeOfOutput(s, op.Input(i))
		}
		axis32 := Cast(s, axis, Int32)
		rank := Rank(s, op.Input(0))
		axis32 = FloorMod(s, axis32, rank)
		offsets := ConcatOffset(s, axis32, shapes)
		out := make([]Output, n+1)
		if len(offsets) != n { // nil: the scope has the error
			return out, nil
		}
		for i := 0; i < n; i++ {
			out[i] = Slice(s, g[0], offsets[i], shapes[i])
		}
		return out, nil
	})
	RegisterGradient("Split", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{{}, concatGrads(s, op, g, op.Input(0))}, nil
	})
	RegisterGradient("SplitV", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{concatGrads(s, op, g, op.Input(2)), {}, {}}, nil
	})
	RegisterGradient("Pack", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		axis, err := attrInt(op, "axis")
		if err != nil {
			return nil, err
		}
		out := Unpack(s, g[0], int64(op.NumInputs()), UnpackAxis(axis))
		if len(out) != op.NumInputs() { // nil: the scope has the error
			out = make([]Output, op.NumInputs())
		}
		return out, nil
	})
	RegisterGradient("Unpack", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		axis, err := attrInt(op, "axis")
		if err != nil {
			return nil, err
		}
		return []Output{Pack(s, fillZeros(s, op, g), PackAxis(axis))}, nil
	})
	RegisterGradient("Slice", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x, begin := op.Input(0), op.Input(1)
		begin32 := Cast(s, begin, Int32)
		after := Sub(s, Sub(s, shapeOfOutput(s, x), shapeOfOutput(s, op.Output(0))), begin32)
		paddings := Pack(s, []Output{begin32, after}, PackAxis(1))
		return []Output{Pad(s, g[0], paddings), {}, {}}, nil
	})
	RegisterGradient("StridedSlice", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		var masks []StridedSliceGradAttr
		for _, m := range []struct {
			name string
			set  func(int64) StridedSliceGradAttr
		}{
			{"begin_mask", StridedSliceGradBeginMask},
			{"end_mask", StridedSliceGradEndMask},
			{"ellipsis_mask", StridedSliceGradEllipsisMask},
			{"new_axis_mask", StridedSliceGradNewAxisMask},
			{"shrink_axis_mask", StridedSliceGradShrinkAxisMask},
		} {
			v, err := attrInt(op, m.name)
			if err != nil {
				return nil, err
			}
			masks = append(masks, m.set(v))
		}
		shape := ShapeOf(s, op.Input(0), ShapeOutType(op.Input(1).DataType()))
		dx := StridedSliceGrad(s, shape, op.Input(1), op.Input(2), op.Input(3), g[0], masks...)
		return []Output{dx, {}, {}, {}}, nil
	})
	RegisterGradient("Pad", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x, pads := op.Input(0), op.Input(1)
		before := Slice(s, pads, Const(s.SubScope("zeros"), []int32{0, 0}),
			Pack(s, []Output{Rank(s, x), Const(s.SubScope("one"), int32(1))}))
		begin := Reshape(s, before, Const(s.SubScope("flat"), []int32{-1}))
		dx := Slice(s, g[0], Cast(s, begin, Int32), shapeOfOutput(s, x))
		return []Output{dx, {}}, nil
	})
	RegisterGradient("Tile", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x := op.Input(0)
		mult := Cast(s, op.Input(1), Int32)
		// Reshape g to [m0, d0, m1, d1, ...] and sum over the multiples.
		split := Reshape(s, Transpose(s,
			Pack(s, []Output{mult, shapeOfOutput(s, x)}), Const(s.SubScope("perm"), []int32{1, 0})),
			Const(s.SubScope("flat"), []int32{-1}))
		axes := Range(s, Const(s.SubScope("zero"), int32(0)), Size(s, split), Const(s.SubScope("two"), int32(2)))
		dx := Sum(s, Reshape(s, g[0], split), axes)
		return []Output{Reshape(s, dx, shapeOfOutput(s, x)), {}}, nil
	})
	RegisterGradient("BroadcastTo", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{unbroadcast(s, g[0], op.Input(0)), {}}, nil
	})
	RegisterGradient("GatherV2", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		if axis, ok := constInt64s(op.Input(2)); !ok || len(axis) != 1 || axis[0] != 0 {
			return nil, fmt.Errorf("only gathers along a constant axis 0 are differentiable")
		}
		if b, _ := attrInt(op, "batch_dims"); b != 0 {
			return nil, fmt.Errorf("gathers with batch_dims are not differentiable")
		}
		params := op.Input(0)
		rows := StridedSlice(s, shapeOfOutput(s, params),
			Const(s.SubScope("b"), []int32{0}), Const(s.SubScope("e"), []int32{1}), Const(s.SubScope("st"), []int32{1}),
			StridedSliceShrinkAxisMask(1))
		return []Output{segmentSumRows(s, g[0], op.Input(1), shapeOfOutput(s, params), rows), {}, {}}, nil
	})
	// The gradient of a gathered variable: dense, shaped like the variable,
	// flowing to its handle (an embedding table's gradient).
	RegisterGradient("ResourceGather", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		if b, _ := attrInt(op, "batch_dims"); b != 0 {
			return nil, fmt.Errorf("gathers with batch_dims are not differentiable")
		}
		shape := VariableShape(s, op.Input(0), VariableShapeOutType(Int32))
		rows := StridedSlice(s, shape,
			Const(s.SubScope("b"), []int32{0}), Const(s.SubScope("e"), []int32{1}), Const(s.SubScope("st"), []int32{1}),
			StridedSliceShrinkAxisMask(1))
		return []Output{segmentSumRows(s, g[0], op.Input(1), shape, rows), {}}, nil
	})
}

// segmentSumRows scatters-adds the gathered rows' gradients g back into a
// dense [rows, params_shape[1:]...] tensor.
func segmentSumRows(s *Scope, g, indices, paramsShape, rows Output) Output {
	inner := StridedSlice(s, paramsShape,
		Const(s.SubScope("b1"), []int32{1}), Const(s.SubScope("e1"), []int32{0}), Const(s.SubScope("s1"), []int32{1}),
		StridedSliceEndMask(1))
	flatShape := ConcatV2(s, []Output{Const(s.SubScope("minus_one"), []int32{-1}), inner}, Const(s.SubScope("axis0"), int32(0)))
	values := Reshape(s, g, flatShape)
	idx := Reshape(s, indices, Const(s.SubScope("flat"), []int32{-1}))
	return UnsortedSegmentSum(s, values, idx, rows)
}

// concatGrads joins the gradients of a split's outputs (zeros for the
// outputs nothing depended on) along its axis.
func concatGrads(s *Scope, op *Operation, g []Output, axis Output) Output {
	return ConcatV2(s, fillZeros(s, op, g), axis)
}

func fillZeros(s *Scope, op *Operation, g []Output) []Output {
	out := make([]Output, len(g))
	for i, gi := range g {
		if gi.Op == nil {
			gi = ZerosLike(s, op.Output(i))
		}
		out[i] = gi
	}
	return out
}

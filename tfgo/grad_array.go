package tfgo

import (
	"fmt"
)

// Gradients of shape manipulation, slicing and gathering, as TensorFlow's
// array_grad.py computes them (gathers give dense gradients).

func init() {
	reshapeBack := func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{op1(s, "Reshape", nil, g[0], shapeOfOutput(s, op.Input(0)))}, nil
	}
	RegisterGradient("Reshape", reshapeBack)
	RegisterGradient("ExpandDims", reshapeBack)
	RegisterGradient("Squeeze", reshapeBack)
	RegisterGradient("Transpose", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		return []Output{op1(s, "Transpose", nil, g[0], op1(s, "InvertPermutation", nil, op.Input(1)))}, nil
	})
	RegisterGradient("ConcatV2", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		n := op.NumInputs() - 1
		axis := op.Input(n)
		shapes := make([]Output, n)
		for i := range shapes {
			shapes[i] = shapeOfOutput(s, op.Input(i))
		}
		axis32 := op1(s, "Cast", map[string]any{"DstT": Int32}, axis)
		rank := op1(s, "Rank", nil, op.Input(0))
		axis32 = op1(s, "FloorMod", nil, axis32, rank)
		offsets := s.AddOperation(OpSpec{Type: "ConcatOffset", Input: []any{axis32, shapes}})
		out := make([]Output, n+1)
		for i := 0; i < n; i++ {
			out[i] = op1(s, "Slice", nil, g[0], Out(offsets, i), shapes[i])
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
		un := s.AddOperation(OpSpec{Type: "Unpack", Input: []any{g[0]}, Attrs: map[string]any{"num": int64(op.NumInputs()), "axis": axis}})
		out := make([]Output, op.NumInputs())
		for i := range out {
			out[i] = Out(un, i)
		}
		return out, nil
	})
	RegisterGradient("Unpack", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		axis, err := attrInt(op, "axis")
		if err != nil {
			return nil, err
		}
		return []Output{op1(s, "Pack", map[string]any{"axis": axis}, fillZeros(s, op, g))}, nil
	})
	RegisterGradient("Slice", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x, begin := op.Input(0), op.Input(1)
		begin32 := op1(s, "Cast", map[string]any{"DstT": Int32}, begin)
		after := op1(s, "Sub", nil, op1(s, "Sub", nil, shapeOfOutput(s, x), shapeOfOutput(s, op.Output(0))), begin32)
		paddings := op1(s, "Pack", map[string]any{"axis": int64(1)}, []Output{begin32, after})
		return []Output{op1(s, "Pad", nil, g[0], paddings), {}, {}}, nil
	})
	RegisterGradient("StridedSlice", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		attrs := map[string]any{}
		for _, m := range []string{"begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask"} {
			v, err := attrInt(op, m)
			if err != nil {
				return nil, err
			}
			attrs[m] = v
		}
		shape := op1(s, "Shape", map[string]any{"out_type": op.Input(1).DataType()}, op.Input(0))
		dx := op1(s, "StridedSliceGrad", attrs, shape, op.Input(1), op.Input(2), op.Input(3), g[0])
		return []Output{dx, {}, {}, {}}, nil
	})
	RegisterGradient("Pad", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x, pads := op.Input(0), op.Input(1)
		before := op1(s, "Slice", nil, pads, Const(s.SubScope("zeros"), []int32{0, 0}),
			op1(s, "Pack", nil, []Output{op1(s, "Rank", nil, x), Const(s.SubScope("one"), int32(1))}))
		begin := op1(s, "Reshape", nil, before, Const(s.SubScope("flat"), []int32{-1}))
		dx := op1(s, "Slice", nil, g[0], op1(s, "Cast", map[string]any{"DstT": Int32}, begin), shapeOfOutput(s, x))
		return []Output{dx, {}}, nil
	})
	RegisterGradient("Tile", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		x := op.Input(0)
		mult := op1(s, "Cast", map[string]any{"DstT": Int32}, op.Input(1))
		// Reshape g to [m0, d0, m1, d1, ...] and sum over the multiples.
		split := op1(s, "Reshape", nil, op1(s, "Transpose", nil,
			op1(s, "Pack", nil, []Output{mult, shapeOfOutput(s, x)}), Const(s.SubScope("perm"), []int32{1, 0})),
			Const(s.SubScope("flat"), []int32{-1}))
		axes := op1(s, "Range", nil, Const(s.SubScope("zero"), int32(0)), op1(s, "Size", nil, split), Const(s.SubScope("two"), int32(2)))
		dx := op1(s, "Sum", nil, op1(s, "Reshape", nil, g[0], split), axes)
		return []Output{op1(s, "Reshape", nil, dx, shapeOfOutput(s, x)), {}}, nil
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
		rows := op1(s, "StridedSlice", map[string]any{"shrink_axis_mask": int64(1)}, shapeOfOutput(s, params),
			Const(s.SubScope("b"), []int32{0}), Const(s.SubScope("e"), []int32{1}), Const(s.SubScope("st"), []int32{1}))
		return []Output{segmentSumRows(s, g[0], op.Input(1), shapeOfOutput(s, params), rows), {}, {}}, nil
	})
	// The gradient of a gathered variable: dense, shaped like the variable,
	// flowing to its handle (an embedding table's gradient).
	RegisterGradient("ResourceGather", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		if b, _ := attrInt(op, "batch_dims"); b != 0 {
			return nil, fmt.Errorf("gathers with batch_dims are not differentiable")
		}
		shape := op1(s, "VariableShape", map[string]any{"out_type": Int32}, op.Input(0))
		rows := op1(s, "StridedSlice", map[string]any{"shrink_axis_mask": int64(1)}, shape,
			Const(s.SubScope("b"), []int32{0}), Const(s.SubScope("e"), []int32{1}), Const(s.SubScope("st"), []int32{1}))
		return []Output{segmentSumRows(s, g[0], op.Input(1), shape, rows), {}}, nil
	})
}

// segmentSumRows scatters-adds the gathered rows' gradients g back into a
// dense [rows, params_shape[1:]...] tensor.
func segmentSumRows(s *Scope, g, indices, paramsShape, rows Output) Output {
	inner := op1(s, "StridedSlice", map[string]any{"end_mask": int64(1)}, paramsShape,
		Const(s.SubScope("b1"), []int32{1}), Const(s.SubScope("e1"), []int32{0}), Const(s.SubScope("s1"), []int32{1}))
	flatShape := op1(s, "ConcatV2", nil, []Output{Const(s.SubScope("minus_one"), []int32{-1}), inner}, Const(s.SubScope("axis0"), int32(0)))
	values := op1(s, "Reshape", nil, g, flatShape)
	idx := op1(s, "Reshape", nil, indices, Const(s.SubScope("flat"), []int32{-1}))
	return op1(s, "UnsortedSegmentSum", nil, values, idx, rows)
}

// concatGrads joins the gradients of a split's outputs (zeros for the
// outputs nothing depended on) along its axis.
func concatGrads(s *Scope, op *Operation, g []Output, axis Output) Output {
	return op1(s, "ConcatV2", nil, fillZeros(s, op, g), axis)
}

func fillZeros(s *Scope, op *Operation, g []Output) []Output {
	out := make([]Output, len(g))
	for i, gi := range g {
		if gi.Op == nil {
			gi = op1(s, "ZerosLike", nil, op.Output(i))
		}
		out[i] = gi
	}
	return out
}

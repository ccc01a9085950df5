package tfgo

// Gradients of DynamicPartition and (Parallel)DynamicStitch, as
// TensorFlow's data_flow_grad.py computes them: the ops a sharded
// embedding lookup routes ids and rows through.

func init() {
	// Each partition's gradient goes back to the positions its elements
	// came from: partition the positions the same way and stitch.
	RegisterGradient("DynamicPartition", func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		data, parts := op.Input(0), op.Input(1)
		n, err := attrInt(op, "num_partitions")
		if err != nil {
			return nil, err
		}
		prefix := ShapeOf(s, parts)
		positions := Reshape(s, Range(s, Const(s.SubScope("zero"), int32(0)),
			Prod(s, prefix, Const(s.SubScope("axis"), int32(0))), Const(s.SubScope("one"), int32(1))), prefix)
		partitioned := DynamicPartition(s, positions, parts, n)
		if len(partitioned) != int(n) { // nil: the scope has the error
			return make([]Output, 2), nil
		}
		stitched := ParallelDynamicStitch(s, partitioned, fillZeros(s, op, g))
		return []Output{Reshape(s, stitched, ShapeOf(s, data)), {}}, nil
	})
	// Python ignores indices stitched more than once (the last write wins
	// in the forward pass, yet every copy gets the gradient); so do we.
	stitch := func(s *Scope, op *Operation, g []Output) ([]Output, error) {
		n := op.NumInputs() / 2
		out := make([]Output, 2*n)
		for i := 0; i < n; i++ {
			idx := op.Input(i)
			if idx.DataType() != Int32 {
				idx = Cast(s, idx, Int32)
			}
			out[n+i] = GatherV2(s, g[0], idx, Const(s.SubScope("axis"), int32(0)))
		}
		return out, nil
	}
	RegisterGradient("DynamicStitch", stitch)
	RegisterGradient("ParallelDynamicStitch", stitch)
}

// Package tfgo is the Go-facing core on top of the cgo binding: scopes that
// name and place operations, typed wrappers for every op of the runtime
// (generated, ops_gen.go) and a generic op builder, variables with Keras
// initializers, reverse-mode autodiff, functions and v2 control flow, the
// composites transformers need, Go values <-> tensors (float16 and bfloat16
// included), and sessions that take Go values as feeds.
//
// Model code stays terse: operations are added through a *Scope, and the
// first error (an unknown op, a bad attr, a shape mismatch, an op without a
// gradient) sticks to the scope and comes back from Finalize or NewSession,
// naming the op:
//
//	s := tfgo.NewScope()
//	x := tfgo.Placeholder(s, Float, -1, 2)
//	dense := s.SubScope("dense")
//	w := tfgo.NewVariable(dense, "kernel", Float, []int64{2, 1}, tfgo.GlorotUniform(1))
//	y := tfgo.Out(tfgo.Op(dense, "MatMul", []any{x, w.Value()}, nil), 0)
//	grads := tfgo.Gradients(s, []tfgo.Output{y}, []tfgo.Output{x, w.Handle()}, nil)
//	sess, err := tfgo.NewSession(s, nil) // the first build error, if any
//	out, err := sess.Run(map[tfgo.Output]any{x: [][]float32{{1, 2}}}, append([]tfgo.Output{y}, grads...))
//
// The package Example runs this. Tensors hold C memory: Close them when
// done (a finalizer is the safety net).
package tfgo

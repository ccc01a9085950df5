// Package tfgo is the Go-facing core on top of the runtime binding: scopes that
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
//	x := tfgo.Placeholder(s, tfgo.Float, -1, 2)
//	dense := s.SubScope("dense")
//	w := tfgo.NewVariable(dense, "kernel", tfgo.Float, []int64{2, 1}, tfgo.GlorotUniform(1))
//	y := tfgo.MatMul(dense, x, w.Value())
//	grads := tfgo.Gradients(s, []tfgo.Output{y}, []tfgo.Output{x, w.Handle()}, nil)
//	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{}) // the first build error, if any
//	out, err := sess.Run(map[tfgo.Output]any{x: [][]float32{{1, 2}}}, append([]tfgo.Output{y}, grads...))
//
// The package Example runs this. tfgo is the one import a graph program
// needs: Tensor, DataType (Float, Int32, BFloat16, ...), Shape, Operation
// and Graph are here (the runtime binding, package cgo, is an
// implementation detail), with NewTensor and Value between Go values and
// tensors (half.Float16 and half.BFloat16 are the Go elements of half
// tensors). Every op has a typed wrapper named as the op (MatMul, Softmax;
// the Shape op is ShapeOf, as Shape is the type); Op builds any op by type
// name, for custom ops the wrappers do not know. Tensors hold C memory:
// Close them when done (a finalizer is the safety net).
//
// Conventions shared by the module: an options struct is passed by value
// as the last argument and its zero value means the defaults; where most
// callers need no options, a short form exists beside <Name>WithOptions
// (savedmodel.OpenBundle / OpenBundleWithOptions, runner.Load /
// LoadWithOptions). Errors are returned, never panicked, and name the op,
// layer, file or tensor they concern.
package tfgo

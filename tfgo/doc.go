// Package tfgo is the Go-facing core on top of the cgo binding: scopes that
// name and place operations, a generic op builder, constants and
// placeholders, Go values <-> tensors (float16 and bfloat16 included), and
// sessions that take Go values as feeds.
//
// Model code stays terse: operations are added through a *Scope, and the
// first error (an unknown op, a bad attr, a shape mismatch) sticks to the
// scope and comes back from Finalize or NewSession, naming the op:
//
//	s := tfgo.NewScope()
//	x := tfgo.Placeholder(s, cgo.Float, -1, 3)
//	w := tfgo.Const(s, [][]float32{{1}, {2}, {3}})
//	y := tfgo.Out(tfgo.Op(s.SubScope("dense"), "MatMul", []any{x, w}, nil), 0)
//	sess, err := tfgo.NewSession(s, nil) // the first build error, if any
//	out, err := sess.Run(map[tfgo.Output]any{x: [][]float32{{1, 1, 1}}}, []tfgo.Output{y})
//
// Tensors hold C memory: Close them when done (a finalizer is the safety net).
package tfgo

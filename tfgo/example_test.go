package tfgo_test

import (
	"fmt"

	"github.com/gotf/gotf/tfgo"
)

// Build a small graph op by op, differentiate it, run it with a Go feed and
// read the results.
func Example() {
	s := tfgo.NewScope()
	x := tfgo.Placeholder(s, tfgo.Float, -1, 2)
	dense := s.SubScope("dense")
	w := tfgo.NewVariable(dense, "kernel", tfgo.Float, []int64{2, 1}, tfgo.InitialValue([][]float32{{3}, {4}}))
	y := tfgo.MatMul(dense, x, w.Value())
	loss := tfgo.Sum(s, tfgo.Square(s, y), tfgo.Const(s, []int32{0, 1}))
	// d loss / d x and d loss / d kernel (through the variable's handle).
	grads := tfgo.Gradients(s, []tfgo.Output{loss}, []tfgo.Output{x, w.Handle()}, nil)
	init := tfgo.GlobalVariablesInitializer(s)

	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sess.Close()
	if _, err := sess.Run(nil, nil, init); err != nil {
		fmt.Println(err)
		return
	}
	out, err := sess.Run(map[tfgo.Output]any{x: [][]float32{{1, 2}}}, []tfgo.Output{y, loss, grads[0], grads[1]})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, name := range []string{y.Op.Name(), "loss", "dloss/dx", "dloss/dkernel"} {
		v, _ := tfgo.Value(out[i])
		fmt.Println(name, v)
		out[i].Close()
	}
	// Output:
	// dense/MatMul [[11]]
	// loss 121
	// dloss/dx [[66 88]]
	// dloss/dkernel [[22] [44]]
}

// Op is the escape hatch for ops without a typed wrapper (custom ops
// registered in the runtime): inputs and attrs by name.
func ExampleOp() {
	s := tfgo.NewScope()
	x := tfgo.Const(s, []float32{-1, 2})
	y := tfgo.Out(tfgo.Op(s, "Relu", []any{x}, nil), 0)
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sess.Close()
	out, err := sess.Run(nil, []tfgo.Output{y})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer out[0].Close()
	v, _ := tfgo.Value(out[0])
	fmt.Println(v)
	// Output: [0 2]
}

// The first error sticks to the scope and names the op.
func ExampleScope_Finalize() {
	s := tfgo.NewScope()
	a := tfgo.Const(s, [][]float32{{1, 2, 3}})
	tfgo.MatMul(s.SubScope("layer"), a, a) // [1,3]·[1,3]: incompatible
	_, err := s.Finalize()
	fmt.Println(err.(*tfgo.Error).Op)
	// Output: layer/MatMul
}

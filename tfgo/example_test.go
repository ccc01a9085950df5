package tfgo_test

import (
	"fmt"

	"github.com/gotf/gotf/cgo"
	"github.com/gotf/gotf/tfgo"
)

// Build a small graph op by op, run it with a Go feed and read the result.
func Example() {
	s := tfgo.NewScope()
	x := tfgo.Placeholder(s, cgo.Float, -1, 2)
	dense := s.SubScope("dense")
	w := tfgo.Const(dense, [][]float32{{1, 2}, {3, 4}})
	y := tfgo.Out(tfgo.Op(dense, "MatMul", []any{x, w}, nil), 0)

	sess, err := tfgo.NewSession(s, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sess.Close()
	out, err := sess.Run(map[tfgo.Output]any{x: [][]float32{{1, 1}}}, []tfgo.Output{y})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer out[0].Close()
	v, _ := tfgo.Value(out[0])
	fmt.Println(y.Op.Name(), v)
	// Output: dense/MatMul [[4 6]]
}

// The first error sticks to the scope and names the op.
func ExampleScope_Finalize() {
	s := tfgo.NewScope()
	a := tfgo.Const(s, [][]float32{{1, 2, 3}})
	tfgo.Op(s.SubScope("layer"), "MatMul", []any{a, a}, nil) // [1,3]·[1,3]: incompatible
	_, err := s.Finalize()
	fmt.Println(err.(*cgo.Error).Op)
	// Output: layer/MatMul
}

// Command hello builds softmax(x·W + b) op by op, runs it on TensorFlow's C
// runtime and prints the TensorFlow version, the devices and the result:
// the smallest program on the graph API (`make run` trains the transformer
// language model of examples/transformer instead).
package main

import (
	"fmt"
	"io"
	"log"
	"os"

	"github.com/gotf/gotf/tfgo"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(w io.Writer) error {
	fmt.Fprintln(w, "TensorFlow", tfgo.Version())

	s := tfgo.NewScope()
	x := tfgo.Placeholder(s, tfgo.Float, -1, 3)
	dense := s.SubScope("dense")
	kernel := tfgo.Const(dense.SubScope("kernel"), [][]float32{{0.5, -1, 2}, {1, 0, -0.5}, {-1, 1, 0.25}})
	b := tfgo.Const(dense.SubScope("bias"), []float32{0.1, 0.2, 0.3})
	logits := tfgo.BiasAdd(dense, tfgo.MatMul(dense, x, kernel), b)
	probs := tfgo.Softmax(s, logits)

	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	if err != nil {
		return err
	}
	defer sess.Close()
	devs, err := sess.ListDevices()
	if err != nil {
		return err
	}
	for _, d := range devs {
		fmt.Fprintln(w, "device", d.Name)
	}

	batch := [][]float32{{1, 2, 3}, {-1, 0, 1}}
	out, err := sess.Run(map[tfgo.Output]any{x: batch}, []tfgo.Output{probs})
	if err != nil {
		return err
	}
	defer out[0].Close()
	v, err := tfgo.Value(out[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "softmax(x·W + b) of %v:\n", batch)
	for _, row := range v.([][]float32) {
		fmt.Fprintf(w, "  %.6f\n", row)
	}
	return nil
}

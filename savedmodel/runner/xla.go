package runner

import (
	"fmt"
	"sync"

	"github.com/gotf/gotf/tfgo"
)

// xlaInEffect reports whether a session asking for XLA (SessionOptions.XLA)
// gets its ops clustered in this process. On the CPU, TensorFlow decides
// that once, from its auto-jit flag as the process's first sessions find it
// (TF_XLA_FLAGS=--tf_xla_cpu_global_jit at start, or the first session made
// with XLA on): a later XLA session after plain ones runs unclustered
// without a word. A two-op graph run once tells, and the answer holds for
// the process.
var xlaInEffect = sync.OnceValues(func() (bool, error) {
	s := tfgo.NewScope()
	x := tfgo.Placeholder(s, tfgo.Float, 2)
	y := tfgo.AddV2(s, tfgo.Mul(s, x, x), x)
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{XLA: true})
	if err != nil {
		return false, err
	}
	defer sess.Close()
	outs, tr, err := sess.RunTraced(map[tfgo.Output]any{x: []float32{1, 2}}, []tfgo.Output{y})
	if err != nil {
		return false, err
	}
	for _, o := range outs {
		o.Close()
	}
	return tr.ExecutedOpTypes()["_XlaRun"] > 0, nil
})

// checkXLA refuses SessionOptions.XLA where it would be ignored.
func checkXLA(o tfgo.SessionOptions) error {
	if !o.XLA {
		return nil
	}
	ok, err := xlaInEffect()
	if err != nil {
		return fmt.Errorf("checking XLA: %w", err)
	}
	if !ok {
		return fmt.Errorf("Session.XLA: %w: XLA auto-clustering is off for this process's CPU sessions "+
			"(TensorFlow fixes it when the first sessions are made): start the process with "+
			"TF_XLA_FLAGS=--tf_xla_cpu_global_jit, or load the XLA model before any other session", ErrUnsupported)
	}
	return nil
}

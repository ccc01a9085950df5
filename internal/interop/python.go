package interop

import (
	"fmt"
	"os"
	"testing"

	"github.com/gotf/gotf/cgo"
	"github.com/gotf/gotf/internal/pyref"
)

// Python runs code in the test binary's shared Python TensorFlow worker with
// inputs as numpy arrays and returns its outputs as tensors; any failure
// fails the test. Test packages using it call CloseShared from TestMain
// (see Main).
func Python(t testing.TB, code string, inputs map[string]*cgo.Tensor) map[string]*cgo.Tensor {
	t.Helper()
	w, err := pyref.Shared()
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]*pyref.Array{}
	for k, v := range inputs {
		a, err := ToArray(v)
		if err != nil {
			t.Fatalf("input %s: %v", k, err)
		}
		in[k] = a
	}
	out, err := w.Run(code, in)
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]*cgo.Tensor{}
	for k, a := range out {
		tn, err := ToTensor(a)
		if err != nil {
			t.Fatalf("output %s: %v", k, err)
		}
		res[k] = tn
	}
	return res
}

// Main is a TestMain for packages that use Python: it runs the tests and
// stops the shared worker.
func Main(m *testing.M) {
	code := m.Run()
	if err := pyref.CloseShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

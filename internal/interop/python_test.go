package interop_test

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/gotf/gotf/cgo"
	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
)

func TestMain(m *testing.M) { interop.Main(m) }

// TestPythonFailureFailsWithTraceback: a snippet that raises fails the
// test at once through Python, with the exception and its traceback in
// the message, instead of returning (no outputs, and a shape mismatch or
// a missing key later).
func TestPythonFailureFailsWithTraceback(t *testing.T) {
	r := testutil.NewRecorder(t)
	returned := false
	r.Run(func(tb testing.TB) {
		interop.Python(tb, "x = inputs['x']\ny = np.reshape(x, (4, 4))\noutputs['y'] = y", map[string]*cgo.Tensor{"x": f32(t, 2, 3)})
		returned = true
	})
	if !r.Failed() || returned {
		t.Fatalf("a raising snippet: failed %v, Python returned %v", r.Failed(), returned)
	}
	for _, s := range []string{"Traceback (most recent call last)", `File "<pyref>", line 2`, "np.reshape(x, (4, 4))", "ValueError", "cannot reshape array of size 6 into shape (4,4)"} {
		if !strings.Contains(r.Messages(), s) {
			t.Errorf("the failure lacks %q:\n%s", s, r.Messages())
		}
	}

	// And a snippet that works returns its outputs without failing.
	r = testutil.NewRecorder(t)
	var out map[string]*cgo.Tensor
	r.Run(func(tb testing.TB) {
		out = interop.Python(tb, "outputs['y'] = inputs['x'] * 2", map[string]*cgo.Tensor{"x": f32(t, 2, 3)})
	})
	if r.Failed() || out["y"] == nil {
		t.Fatalf("a working snippet failed: %s", r.Messages())
	}
	if got := out["y"].Shape(); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Errorf("shape %v, want [2 3]", got)
	}
}

// f32 is a float32 tensor of the given shape holding 0, 1, 2, ...
func f32(t *testing.T, shape ...int64) *cgo.Tensor {
	t.Helper()
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	data := make([]byte, 0, 4*n)
	for i := range n {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(i)))
	}
	tn, err := cgo.NewTensor(dtypes.Float, shape, data)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

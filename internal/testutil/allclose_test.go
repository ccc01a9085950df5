package testutil

import (
	"math"
	"strings"
	"testing"
)

var (
	nan = math.NaN()
	inf = math.Inf(1)
)

// check runs AllCloseTol through a Recorder and reports whether it
// failed and what it said, checking that the result and the failure agree.
func check(t *testing.T, want, got []float64, tol Tol) (failed bool, msg string) {
	t.Helper()
	r := NewRecorder(t)
	ok := AllCloseTol(r, "x", want, got, tol)
	if ok == r.Failed() {
		t.Fatalf("AllCloseTol returned %v but recorded failed=%v", ok, r.Failed())
	}
	return r.Failed(), r.Messages()
}

func TestAllClosePasses(t *testing.T) {
	for name, c := range map[string]struct {
		want, got []float64
		tol       Tol
	}{
		"equal":           {[]float64{1, -2, 3.5}, []float64{1, -2, 3.5}, Tol{}},
		"both empty":      {nil, []float64{}, Tol{}},
		"within atol":     {[]float64{0, 1}, []float64{1e-7, 1 - 1e-7}, Tol{Atol: 1e-6}},
		"within rtol":     {[]float64{1e6, -1e6}, []float64{1e6 + 0.5, -1e6 - 0.5}, Tol{Rtol: 1e-6}},
		"atol plus rtol":  {[]float64{10}, []float64{10 + 1e-5 + 1e-4}, Tol{Atol: 1e-5, Rtol: 1.01e-5}},
		"same infinities": {[]float64{inf, -inf}, []float64{inf, -inf}, Tol{}},
		"NaN opted in":    {[]float64{nan, 1}, []float64{nan, 1}, Tol{NaNEqual: true}},
		"signed zeros":    {[]float64{0}, []float64{math.Copysign(0, -1)}, Tol{}},
		"within scaled":   {[]float64{100, 1e-3}, []float64{100, 1e-3 + 9e-5}, Tol{Scaled: 1e-6}},
	} {
		if failed, msg := check(t, c.want, c.got, c.tol); failed {
			t.Errorf("%s: failed: %s", name, msg)
		}
	}
}

// TestAllCloseFails: the inputs testify's InDeltaSlice lets through (a
// short, empty or NaN result; it loops over the result only and treats
// NaN as equal to NaN) fail here, as do permuted values and errors just
// beyond the tolerance.
func TestAllCloseFails(t *testing.T) {
	for name, c := range map[string]struct {
		want, got []float64
		tol       Tol
		text      []string
	}{
		"beyond scaled":    {[]float64{100, 1e-3}, []float64{100, 1e-3 + 2e-4}, Tol{Scaled: 1e-6}, []string{"1 of 2", "scaled 1e-06", "max|want| 2e-06"}},
		"short":            {[]float64{1, 2, 3}, []float64{1, 2}, Tol{Atol: 1}, []string{"got 2 elements, want 3"}},
		"empty got":        {[]float64{1, 2, 3}, nil, Tol{Atol: 1}, []string{"got 0 elements, want 3", "got is empty"}},
		"empty want":       {nil, []float64{1}, Tol{Atol: 1}, []string{"got 1 elements, want 0", "want is empty"}},
		"longer":           {[]float64{1}, []float64{1, 2}, Tol{Atol: 1}, []string{"got 2 elements, want 1"}},
		"NaN got":          {[]float64{1, 2}, []float64{1, nan}, Tol{Atol: 1}, []string{"1 of 2", "[1] want 2 got NaN (NaN)"}},
		"NaN want":         {[]float64{nan, 2}, []float64{1, 2}, Tol{Atol: 1}, []string{"[0] want NaN got 1"}},
		"NaN both":         {[]float64{nan}, []float64{nan}, Tol{Atol: 1}, []string{"[0] want NaN got NaN"}},
		"NaN not opted":    {[]float64{1}, []float64{nan}, Tol{Atol: 1, NaNEqual: true}, []string{"[0] want 1 got NaN"}},
		"all NaN":          {[]float64{1, 2}, []float64{nan, nan}, Tol{Atol: 1e9}, []string{"2 of 2"}},
		"permuted":         {[]float64{1, 2, 3, 4}, []float64{2, 1, 3, 4}, Tol{Atol: 1e-6, Rtol: 1e-6}, []string{"2 of 4", "[0] want 1 got 2", "[1] want 2 got 1"}},
		"beyond atol":      {[]float64{0, 0}, []float64{0, 2e-6}, Tol{Atol: 1e-6}, []string{"[1] want 0 got 2e-06", "max abs err 2e-06 at [1]"}},
		"beyond rtol":      {[]float64{1e6}, []float64{1e6 + 2}, Tol{Rtol: 1e-6}, []string{"rel err 2e-06"}},
		"exact":            {[]float64{1}, []float64{math.Nextafter(1, 2)}, Tol{}, []string{"[0] want 1 got 1.0000000000000002"}},
		"opposite inf":     {[]float64{inf}, []float64{-inf}, Tol{Atol: inf}, []string{"infinity mismatch"}},
		"inf for finite":   {[]float64{1}, []float64{inf}, Tol{Atol: 1e300}, []string{"infinity mismatch"}},
		"finite for inf":   {[]float64{-inf}, []float64{-1e308}, Tol{Rtol: 1}, []string{"infinity mismatch"}},
		"negative atol":    {[]float64{1}, []float64{1}, Tol{Atol: -1}, []string{"invalid tolerance"}},
		"NaN tolerance":    {[]float64{1}, []float64{1}, Tol{Rtol: nan}, []string{"invalid tolerance"}},
		"many":             {make([]float64, 9), []float64{1, 1, 1, 1, 1, 1, 1, 1, 1}, Tol{}, []string{"9 of 9", "[4] want 0 got 1", "... and 4 more"}},
		"relative to want": {[]float64{1}, []float64{1e-9}, Tol{Rtol: 0.5}, []string{"abs err 1, rel err 1"}},
	} {
		failed, msg := check(t, c.want, c.got, c.tol)
		if !failed {
			t.Errorf("%s: passed", name)
			continue
		}
		if !strings.HasPrefix(msg, "x: ") {
			t.Errorf("%s: message %q does not start with what was compared", name, msg)
		}
		for _, s := range c.text {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: message %q lacks %q", name, msg, s)
			}
		}
	}
}

// The tolerance is relative to want, not to got: numpy.allclose's rule.
func TestAllCloseAsymmetric(t *testing.T) {
	if failed, msg := check(t, []float64{100}, []float64{150}, Tol{Rtol: 0.5}); failed {
		t.Errorf("|150-100| <= 0.5*100 failed: %s", msg)
	}
	if failed, _ := check(t, []float64{150}, []float64{100}, Tol{Rtol: 0.3}); !failed {
		t.Errorf("|100-150| > 0.3*150 passed")
	}
}

func TestAllCloseFloat32(t *testing.T) {
	r := NewRecorder(t)
	if !AllClose(r, "f32", []float32{1, 2}, []float32{1, 2}, 0, 0) || r.Failed() {
		t.Errorf("equal float32 slices failed: %s", r.Messages())
	}
	// One float32 ulp at 1 is 1.19e-7.
	next := math.Nextafter32(1, 2)
	if AllClose(r, "f32", []float32{1}, []float32{next}, 0, 1e-7) || !r.Failed() {
		t.Error("one ulp beyond rtol 1e-7 passed")
	}
	if r2 := NewRecorder(t); !AllClose(r2, "f32", []float32{1}, []float32{next}, 0, 2e-7) {
		t.Errorf("one ulp within rtol 2e-7 failed: %s", r2.Messages())
	}
	type myFloat float32
	if r3 := NewRecorder(t); AllClose(r3, "named", []myFloat{1, 2}, []myFloat{1}, 1, 1) {
		t.Error("a short slice of a named float type passed")
	}
}

func TestAllCloseShape(t *testing.T) {
	six := []float64{1, 2, 3, 4, 5, 6}
	for name, c := range map[string]struct {
		wantShape, gotShape []int64
		want, got           []float64
		text                string // "" if it passes
	}{
		"equal":            {[]int64{2, 3}, []int64{2, 3}, six, six, ""},
		"scalar nil vs []": {nil, []int64{}, []float64{7}, []float64{7}, ""},
		"empty tensors":    {[]int64{0, 3}, []int64{0, 3}, nil, []float64{}, ""},
		"transposed":       {[]int64{2, 3}, []int64{3, 2}, six, six, "shape [3 2], want [2 3]"},
		"rank":             {[]int64{6}, []int64{1, 6}, six, six, "shape [1 6], want [6]"},
		"scalar vs [1]":    {[]int64{}, []int64{1}, []float64{7}, []float64{7}, "shape [1], want []"},
		"got data short":   {[]int64{2, 3}, []int64{2, 3}, six, six[:5], "got has shape [2 3] but 5 elements"},
		"want data long":   {[]int64{2}, []int64{2}, six, six[:2], "want has shape [2] but 6 elements"},
		"negative dim":     {[]int64{-1}, []int64{-1}, nil, nil, "want has shape [-1]"},
		"values":           {[]int64{2}, []int64{2}, []float64{1, 2}, []float64{1, 3}, "[1] want 2 got 3"},
	} {
		r := NewRecorder(t)
		ok := AllCloseShape(r, "t", c.wantShape, c.want, c.gotShape, c.got, 0, 0)
		switch {
		case ok != !r.Failed():
			t.Errorf("%s: returned %v, recorded failed=%v", name, ok, r.Failed())
		case c.text == "" && !ok:
			t.Errorf("%s: failed: %s", name, r.Messages())
		case c.text != "" && ok:
			t.Errorf("%s: passed", name)
		case c.text != "" && !strings.Contains(r.Messages(), c.text):
			t.Errorf("%s: message %q lacks %q", name, r.Messages(), c.text)
		}
	}
}

func TestRecorder(t *testing.T) {
	r := NewRecorder(t)
	reached := false
	if !r.Run(func(tb testing.TB) {
		tb.Fatalf("stop %d", 1)
		reached = true
	}) {
		t.Error("Fatalf was not recorded as a failure")
	}
	if reached {
		t.Error("Fatalf did not end the goroutine")
	}
	if r.Messages() != "stop 1" {
		t.Errorf("messages %q", r.Messages())
	}
	r = NewRecorder(t)
	if r.Run(func(tb testing.TB) { tb.Skip("later") }) || !r.Skipped() {
		t.Error("Skip: recorded as failed, or not as skipped")
	}
	r = NewRecorder(t)
	r.Run(func(tb testing.TB) { tb.Error("a", 1); tb.Log("only logged") })
	if !r.Failed() || r.Messages() != "a 1" {
		t.Errorf("Error: failed=%v messages %q", r.Failed(), r.Messages())
	}
}

// Package testutil holds the helpers the module's tests share: one way to
// compare floating-point results (AllClose and its variants) and a
// recorder of test failures (Recorder) for tests that prove a check fails
// when it should.
//
// The comparison is strict where testify's InDeltaSlice is not: the
// lengths (and, with AllCloseShape, the shapes) must be equal, so a short
// or empty result fails; NaN fails unless the caller asks for NaN to
// match NaN; an infinity must be matched by the same infinity; and every
// element must satisfy |got-want| <= atol + rtol*|want| (numpy.allclose's
// rule, with want as the reference).
package testutil

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gotf/gotf/dtypes"
)

// Float is the element type of the compared slices.
type Float interface{ ~float32 | ~float64 }

// Tol is a tolerance: element i passes when |got[i]-want[i]| <= Atol +
// Rtol*|want[i]|. Zero Atol and Rtol ask for exact equality.
type Tol struct {
	Atol, Rtol float64
	// Scaled adds Scaled·max|want| to Atol: for results whose rounding
	// follows the magnitude of the whole tensor rather than each element's
	// (a gradient element near zero is a sum of large terms of mixed signs
	// and carries their rounding).
	Scaled float64
	// NaNEqual accepts a NaN in got where want has a NaN at the same
	// index. By default any NaN, in either slice, is a failure.
	NaNEqual bool
}

// maxReported bounds the offending elements listed in a failure message.
const maxReported = 5

// AllClose reports whether got equals want within atol + rtol*|want| at
// every index, with equal lengths and no NaN anywhere; if not, it calls
// t.Errorf with what, the first offending indices and the largest absolute
// and relative errors, and returns false.
func AllClose[T Float](t testing.TB, what string, want, got []T, atol, rtol float64) bool {
	t.Helper()
	return AllCloseTol(t, what, want, got, Tol{Atol: atol, Rtol: rtol})
}

// AllCloseTol is AllClose with a Tol, for NaNEqual.
func AllCloseTol[T Float](t testing.TB, what string, want, got []T, tol Tol) bool {
	t.Helper()
	if msg := compare(want, got, tol); msg != "" {
		t.Errorf("%s: %s", what, msg)
		return false
	}
	return true
}

// AllCloseShape is AllClose for tensors: the shapes must be equal (nil and
// [] both mean a scalar) and each must hold as many elements as its data,
// before the elements are compared.
func AllCloseShape[T Float](t testing.TB, what string, wantShape []int64, want []T, gotShape []int64, got []T, atol, rtol float64) bool {
	t.Helper()
	return AllCloseShapeTol(t, what, wantShape, want, gotShape, got, Tol{Atol: atol, Rtol: rtol})
}

// AllCloseShapeTol is AllCloseShape with a Tol.
func AllCloseShapeTol[T Float](t testing.TB, what string, wantShape []int64, want []T, gotShape []int64, got []T, tol Tol) bool {
	t.Helper()
	if !slices.Equal(wantShape, gotShape) { // nil and [] are equal
		t.Errorf("%s: shape %v, want %v", what, fmtShape(gotShape), fmtShape(wantShape))
		return false
	}
	for _, s := range []struct {
		name  string
		shape []int64
		n     int
	}{{"want", wantShape, len(want)}, {"got", gotShape, len(got)}} {
		if n, ok := numElements(s.shape); !ok || n != int64(s.n) {
			t.Errorf("%s: %s has shape %v but %d elements", what, s.name, fmtShape(s.shape), s.n)
			return false
		}
	}
	return AllCloseTol(t, what, want, got, tol)
}

func numElements(shape []int64) (int64, bool) {
	n, err := dtypes.NumElements(shape)
	return n, err == nil
}

func fmtShape(s []int64) string {
	if s == nil {
		s = []int64{}
	}
	return fmt.Sprint(s)
}

// compare returns "" if got matches want within tol, else a description
// of how it does not.
func compare[T Float](want, got []T, tol Tol) string {
	if tol.Atol < 0 || tol.Rtol < 0 || tol.Scaled < 0 || math.IsNaN(tol.Atol) || math.IsNaN(tol.Rtol) || math.IsNaN(tol.Scaled) {
		return fmt.Sprintf("invalid tolerance atol=%g rtol=%g scaled=%g", tol.Atol, tol.Rtol, tol.Scaled)
	}
	scale := 0.0 // max |want| over the finite elements
	for _, w := range want {
		if a := math.Abs(float64(w)); a > scale && !math.IsInf(a, 0) {
			scale = a
		}
	}
	atol := tol.Atol + tol.Scaled*scale
	if len(want) != len(got) {
		return fmt.Sprintf("got %d elements, want %d%s", len(got), len(want), emptyNote(len(want), len(got)))
	}
	var (
		bad            []string
		nBad           int
		maxAbs, maxRel float64
		maxAbsAt       = -1
		maxRelAt       = -1
	)
	for i := range want {
		w, g := float64(want[i]), float64(got[i])
		var why string
		switch {
		case math.IsNaN(w) || math.IsNaN(g):
			if !(tol.NaNEqual && math.IsNaN(w) && math.IsNaN(g)) {
				why = "NaN"
			}
		case math.IsInf(w, 0) || math.IsInf(g, 0):
			if w != g {
				why = "infinity mismatch"
			}
		default:
			abs := math.Abs(g - w)
			rel := math.Inf(1)
			if w != 0 {
				rel = abs / math.Abs(w)
			} else if abs == 0 {
				rel = 0
			}
			if abs > maxAbs || maxAbsAt < 0 {
				maxAbs, maxAbsAt = abs, i
			}
			if rel > maxRel || maxRelAt < 0 {
				maxRel, maxRelAt = rel, i
			}
			if abs > atol+tol.Rtol*math.Abs(w) {
				why = fmt.Sprintf("abs err %.3g, rel err %.3g", abs, rel)
			}
		}
		if why == "" {
			continue
		}
		nBad++
		if len(bad) < maxReported {
			bad = append(bad, fmt.Sprintf("[%d] want %v got %v (%s)", i, want[i], got[i], why))
		}
	}
	if nBad == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d elements differ (atol %g, rtol %g", nBad, len(want), tol.Atol, tol.Rtol)
	if tol.Scaled > 0 {
		fmt.Fprintf(&b, ", scaled %g", tol.Scaled)
	}
	b.WriteString(")")
	if maxAbsAt >= 0 {
		fmt.Fprintf(&b, "; max abs err %.3g at [%d], max rel err %.3g at [%d]", maxAbs, maxAbsAt, maxRel, maxRelAt)
		if scale > 0 {
			fmt.Fprintf(&b, ", max abs err / max|want| %.3g", maxAbs/scale)
		}
	}
	b.WriteString(":")
	for _, s := range bad {
		b.WriteString("\n\t")
		b.WriteString(s)
	}
	if nBad > len(bad) {
		fmt.Fprintf(&b, "\n\t... and %d more", nBad-len(bad))
	}
	return b.String()
}

func emptyNote(want, got int) string {
	switch {
	case got == 0:
		return " (got is empty)"
	case want == 0:
		return " (want is empty)"
	}
	return ""
}

package testutil

import "testing"

func TestGrowthWithin(t *testing.T) {
	for _, c := range []struct {
		windows []float64
		bound   float64
		want    float64
	}{
		// CI's case: memory handed back in the first window of a 2 KiB leak.
		{[]float64{-1308, 2308, 2345}, 256, 2308},
		// Noise around zero counts, falls included.
		{[]float64{-20, 30, 10}, 256, -20},
		// A fall within a larger bound counts.
		{[]float64{-1884, 116080, 41370}, 8192, -1884},
		// RSS fell in every window: the smallest.
		{[]float64{-1000, -2000, -3000}, 256, -3000},
	} {
		g := Growth{Windows: c.windows, PerIteration: min(c.windows[0], c.windows[1], c.windows[2])}
		if got := g.Within(c.bound); got != c.want {
			t.Errorf("windows %v, bound %g: Within %g, want %g", c.windows, c.bound, got, c.want)
		}
	}
}

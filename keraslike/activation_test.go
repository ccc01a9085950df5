package keraslike

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// Every activation trains in Go: its gradient builds and runs, finite, and
// agrees with central differences on points away from each one's kinks.
// (Their forward values are TestExternalKerasModels' act_ok_* models.)
func TestActivationsHaveGradients(t *testing.T) {
	xs := []float64{-2.7, -1.3, -0.2, 0.3, 1.6, 2.4, 7.1}
	for name, f := range activations {
		t.Run(name, func(t *testing.T) {
			s := tfgo.NewScope()
			x := tfgo.Placeholder(s, tfgo.Double, 1, int64(len(xs)))
			y := tfgo.Identity(s, f(s, x)) // linear returns x itself
			g := tfgo.Gradients(s, []tfgo.Output{tfgo.Sum(s, y, tfgo.Const(s, []int32{0, 1}))}, []tfgo.Output{x}, nil)
			require.NoError(t, s.Err())
			sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
			require.NoError(t, err)
			defer sess.Close()
			run := func(v []float64) (ys, gs []float64) {
				in, err := tfgo.NewTensor([][]float64{v})
				require.NoError(t, err)
				out, err := sess.Run(map[tfgo.Output]any{x: in}, []tfgo.Output{y, g[0]})
				require.NoError(t, err)
				ys, err = tfgo.Float64s(out[0])
				require.NoError(t, err)
				gs, err = tfgo.Float64s(out[1])
				require.NoError(t, err)
				return ys, gs
			}
			ys, gs := run(xs)
			for i := range xs {
				require.False(t, math.IsNaN(gs[i]) || math.IsInf(gs[i], 0), "gradient at %g: %g", xs[i], gs[i])
				if name == "softmax" || name == "log_softmax" {
					continue // not elementwise: the sum's gradient is another check
				}
				const h = 1e-6
				up, down := append([]float64{}, xs...), append([]float64{}, xs...)
				up[i] += h
				down[i] -= h
				yu, _ := run(up)
				yd, _ := run(down)
				fd := (yu[i] - yd[i]) / (2 * h)
				require.InDelta(t, fd, gs[i], 1e-5*(1+math.Abs(fd)), "d %s at %g (value %g)", name, xs[i], ys[i])
			}
		})
	}
}

// LeakyReLU configs as Keras 2 (alpha) and Keras 3 (negative_slope) write
// them, and both at once: the slope is the one Keras' constructor takes.
func TestLeakyReLUConfigSlopeAsKeras(t *testing.T) {
	configs := []string{`{"name": "l"}`, `{"name": "l", "alpha": 0.1}`, `{"name": "l", "negative_slope": 0.5}`,
		`{"name": "l", "alpha": 0.1, "negative_slope": 0.5}`}
	configsTensor, err := tfgo.NewTensor(configs)
	require.NoError(t, err)
	ref := interop.Python(t, `
import json, warnings, keras
warnings.simplefilter("ignore")
for i, c in enumerate(inputs["configs"]):
    outputs["slope%d" % i] = np.float64(keras.layers.LeakyReLU.from_config(json.loads(c.decode())).negative_slope)
`, map[string]*tfgo.Tensor{"configs": configsTensor})
	for i, c := range configs {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(c), &m))
		l, err := leakyReLUFromConfig(m)
		require.NoError(t, err, c)
		want, err := tfgo.Float64s(ref[fmt.Sprintf("slope%d", i)])
		require.NoError(t, err)
		require.Equal(t, want[0], l.Config()["negative_slope"], c)
	}
	_, err = leakyReLUFromConfig(map[string]any{"name": "l", "negative_slope": nil})
	require.ErrorContains(t, err, "null is not a slope")
}

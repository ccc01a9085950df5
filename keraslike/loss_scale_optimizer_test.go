package keraslike

import (
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// lossScaleMults multiply the loss of each step: 1e38 (times the scale, an
// infinite scaled loss and gradients) and +Inf (NaN gradients as well)
// make steps 1 and 5 overflow. With growth steps 3 and initial scale 8 the
// scale goes 8, 4 (skip), 4, 4, 8 (doubled), 4 (skip), 4, 4, 8 (doubled).
var lossScaleMults = []float32{1, 1e38, 1, 1, 1, float32(math.Inf(1)), 1, 1, 1}

const lossScaleInitial, lossScaleGrowth = 8, 3

// lossScaleStep is a training step of a compiled model m with a loss-scaled
// optimizer, built as Compile is to build it: the loss times a fed
// multiplier, scaled, differentiated, applied; with xla, the forward and
// backward passes and the update are in an XLA-marked scope.
type lossScaleStep struct {
	mult tfgo.Output
	step *tfgo.Operation
}

func newLossScaleStep(t *testing.T, m *Model, lso *LossScaleOptimizer, xla bool) lossScaleStep {
	t.Helper()
	s := m.Scope()
	ts := s.SubScope("loss_scale_step")
	if xla {
		ts = ts.WithXLA()
	}
	mult := tfgo.Placeholder(ts.SubScope("mult"), tfgo.Float, []int64{}...)
	loss := tfgo.Mul(ts, m.train.loss, mult)
	scaled := lso.ScaleLoss(s, loss)
	ws := m.TrainableWeights()
	handles := make([]tfgo.Output, len(ws))
	for i, w := range ws {
		handles[i] = w.Handle()
	}
	grads := tfgo.Gradients(ts, []tfgo.Output{scaled}, handles, nil)
	as := s
	if xla {
		// An XLA-marked scope, though Compile passes the model's root
		// scope: XLA's clustering leaves Switch and Merge out.
		as = ts
	}
	step := lso.Apply(as.WithControlDependencies(scaled.Op), ws, grads)
	require.NoError(t, s.Err())
	return lossScaleStep{mult: mult, step: step}
}

// run runs step i (batch i of x, y in batches of 8) and returns the
// optimizer's variables and the weights after it.
func (st lossScaleStep) run(t *testing.T, m *Model, lso *LossScaleOptimizer, x [][]float32, y []int32, i int) (vars, weights []*tfgo.Tensor) {
	t.Helper()
	sess, err := m.Session()
	require.NoError(t, err)
	_, err = sess.Run(map[tfgo.Output]any{m.train.x: x[8*i : 8*i+8], m.train.yTrue: y[8*i : 8*i+8], st.mult: lossScaleMults[i]}, nil, st.step)
	require.NoError(t, err)
	return lossScaleState(t, m, lso)
}

func lossScaleState(t *testing.T, m *Model, lso *LossScaleOptimizer) (vars, weights []*tfgo.Tensor) {
	t.Helper()
	sess, err := m.Session()
	require.NoError(t, err)
	var outs []tfgo.Output
	for _, v := range lso.Variables() {
		outs = append(outs, v.Value())
	}
	vars, err = sess.Run(nil, outs)
	require.NoError(t, err)
	weights, err = m.GetWeights()
	require.NoError(t, err)
	return vars, weights
}

// pyLossScaleSteps trains the Keras twin of mlp with
// LossScaleOptimizer(%s, initial_scale, dynamic_growth_steps) as
// newLossScaleStep does, with a GradientTape and opt.apply, and outputs the
// optimizer's variables (but learning_rate) after every step ("v<step>_<j>")
// with their paths ("names"), and the weights ("w<step>_<j>").
const pyLossScaleSteps = `
import keras, numpy as np, tensorflow as tf
keras.backend.clear_session()
m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4)], name="mlp")
m.set_weights([inputs["w0"], inputs["w1"], inputs["w2"], inputs["w3"]])
opt = keras.optimizers.LossScaleOptimizer(%s, initial_scale=%d, dynamic_growth_steps=%d)
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
opt.build(m.trainable_variables)
own = lambda: [v for v in opt.variables if "learning_rate" not in v.path]
outputs["names"] = np.array([v.path.encode() for v in own()], dtype=object)
x, y, mult = inputs["x"], inputs["y"], inputs["mult"]
for i in range(len(mult)):
    with tf.GradientTape() as tape:
        loss = loss_fn(y[8*i:8*i+8], m(x[8*i:8*i+8], training=True)) * mult[i]
        scaled = opt.scale_loss(loss)
    grads = tape.gradient(scaled, m.trainable_variables)
    opt.apply(grads, m.trainable_variables)
    for j, v in enumerate(own()):
        outputs["v%%d_%%02d" %% (i, j)] = np.asarray(v.numpy())
    for j, w in enumerate(m.get_weights()):
        outputs["w%%d_%%02d" %% (i, j)] = w
`

// Nine steps of LossScaleOptimizer around each optimizer of
// optimizerCases (Adam, AdamW, SGD with and without momentum, Adam with
// global clipping and a schedule) equal Keras': after every step the scale,
// step counter, both iteration counters, every slot and every weight.
// Steps 1 and 5 overflow: Keras skips the inner update (iterations, slots
// and weights unchanged) and halves the scale; steps 4 and 8 double it.
//
// Tolerance: as TestOptimizerStepsMatchKeras (rtol 1e-6, atol 1e-8 for
// values near zero), over nine steps instead of two, plus 1e-6 of a
// tensor's largest element with XLA; the counters and the scale (powers of
// two) must be equal.
func TestLossScaleOptimizerStepsMatchKeras(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	w := []*tfgo.Tensor{randTensor(t, r, 8, 16), randTensor(t, r, 16), randTensor(t, r, 16, 4), randTensor(t, r, 4)}
	x, y := mlpData(r, 8*len(lossScaleMults))
	xt, err := tfgo.NewTensor(x)
	require.NoError(t, err)
	yt, err := tfgo.NewTensor(y)
	require.NoError(t, err)
	mt, err := tfgo.NewTensor(lossScaleMults)
	require.NoError(t, err)
	cases := optimizerCases()
	cases = append(cases, optimizerCase{"adam_xla", cases[0].opt, cases[0].py})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			xla := c.name == "adam_xla"
			m := mlp(t, w)
			defer m.Close()
			m.SetXLA(xla)
			lso, err := NewLossScaleOptimizer(c.opt(), LossScaleOptions{InitialScale: lossScaleInitial, DynamicGrowthSteps: lossScaleGrowth})
			require.NoError(t, err)
			require.NoError(t, m.Compile(CompileOptions{Optimizer: lso, Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
			st := newLossScaleStep(t, m, lso, xla)
			tol := testutil.Tol{Atol: 1e-8, Rtol: 1e-6}
			if xla {
				// XLA fuses the forward and backward passes and rounds their
				// sums differently: a few ulps of a tensor's largest element
				// in Adam's momenta.
				tol.Scaled = 1e-6
			}

			ref := interop.Python(t, fmt.Sprintf(pyLossScaleSteps, c.py, lossScaleInitial, lossScaleGrowth),
				map[string]*tfgo.Tensor{"w0": w[0], "w1": w[1], "w2": w[2], "w3": w[3], "x": xt, "y": yt, "mult": mt})
			names, err := ref["names"].Strings()
			require.NoError(t, err)
			var goNames []string
			for _, v := range lso.Variables() {
				goNames = append(goNames, v.Name())
			}
			var pyNames []string
			for _, n := range names {
				pyNames = append(pyNames, string(n))
			}
			require.Equal(t, pyNames, goNames, "optimizer variables (Keras' but learning_rate)")

			for i := range lossScaleMults {
				vars, weights := st.run(t, m, lso, x, y, i)
				for j, v := range vars {
					what := fmt.Sprintf("step %d: %s", i, goNames[j])
					want := ref[fmt.Sprintf("v%d_%02d", i, j)]
					if len(v.Shape()) == 0 {
						sameBits(t, what, want, v)
						continue
					}
					allCloseTol(t, what, want, v, tol)
				}
				for j, wt := range weights {
					allCloseTol(t, fmt.Sprintf("step %d: weight %d", i, j), ref[fmt.Sprintf("w%d_%02d", i, j)], wt, tol)
				}
			}
			// The sequence did what it is meant to exercise.
			vars, _ := lossScaleState(t, m, lso)
			require.Equal(t, float32(8), scalarF(t, vars[2]), "final scale")
			require.Equal(t, int64(len(lossScaleMults)-2), lso.innerIters(t, m), "inner iterations: two steps skipped")
		})
	}
}

func (o *LossScaleOptimizer) innerIters(t *testing.T, m *Model) int64 {
	t.Helper()
	sess, err := m.Session()
	require.NoError(t, err)
	out, err := sess.Run(nil, []tfgo.Output{o.Iterations().Value()})
	require.NoError(t, err)
	return scalarI(t, out[0])
}

// The compiled step (Compile's Apply on unscaled gradients, before Compile
// calls ScaleLoss itself) runs through Fit, with XLA on and off: the
// optimizer's Switch and Merge are outside the XLA-marked forward and
// backward passes.
func TestLossScaleOptimizerFitsWithAndWithoutXLA(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	w := []*tfgo.Tensor{randTensor(t, r, 8, 16), randTensor(t, r, 16), randTensor(t, r, 16, 4), randTensor(t, r, 4)}
	x, y := mlpData(r, 32)
	for _, xla := range []bool{false, true} {
		t.Run(fmt.Sprintf("xla=%v", xla), func(t *testing.T) {
			m := mlp(t, w)
			defer m.Close()
			m.SetXLA(xla)
			lso, err := NewLossScaleOptimizer(NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{GlobalClipNorm: 1}}), LossScaleOptions{DynamicGrowthSteps: 2})
			require.NoError(t, err)
			require.NoError(t, m.Compile(CompileOptions{Optimizer: lso, Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
			_, err = m.Fit(t.Context(), &ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: 8}, FitOptions{Epochs: 1})
			require.NoError(t, err)
			vars, _ := lossScaleState(t, m, lso)
			require.Equal(t, float32(1<<17), scalarF(t, vars[2]), "scale doubled twice in four finite steps")
			require.Equal(t, int64(0), scalarI(t, vars[1]), "step counter")
			require.Equal(t, int64(4), lso.innerIters(t, m))
		})
	}
}

// SaveCheckpoint writes the scale and the step counter under Keras' paths
// with the rest of the optimizer, and LoadCheckpoint restores them into a
// fresh model and optimizer.
func TestLossScaleOptimizerCheckpoint(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	w := []*tfgo.Tensor{randTensor(t, r, 8, 16), randTensor(t, r, 16), randTensor(t, r, 16, 4), randTensor(t, r, 4)}
	x, y := mlpData(r, 8*len(lossScaleMults))
	build := func() (*Model, *LossScaleOptimizer, lossScaleStep) {
		m := mlp(t, w)
		lso, err := NewLossScaleOptimizer(NewAdam(AdamOptions{}), LossScaleOptions{InitialScale: lossScaleInitial, DynamicGrowthSteps: lossScaleGrowth})
		require.NoError(t, err)
		require.NoError(t, m.Compile(CompileOptions{Optimizer: lso, Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
		return m, lso, newLossScaleStep(t, m, lso, false)
	}
	m, lso, st := build()
	defer m.Close()
	for i := 0; i < 3; i++ { // finite, overflow, finite: scale 4, counter 1
		st.run(t, m, lso, x, y, i)
	}
	saved, savedW := lossScaleState(t, m, lso)
	require.Equal(t, float32(4), scalarF(t, saved[2]))
	require.Equal(t, int64(1), scalarI(t, saved[1]))
	prefix := filepath.Join(t.TempDir(), "ckpt")
	require.NoError(t, m.SaveCheckpoint(prefix, CheckpointOptions{}))
	br, err := savedmodel.OpenBundle(prefix)
	require.NoError(t, err)
	for _, key := range []string{"loss_scale_optimizer/iteration", "loss_scale_optimizer/step_counter", "loss_scale_optimizer/dynamic_scale", "adam/iteration"} {
		require.True(t, br.Has(key), key)
	}
	br.Close()

	// The saved model moves on (the scale changes), then comes back.
	st.run(t, m, lso, x, y, 5)
	require.NoError(t, m.LoadCheckpoint(prefix))
	back, _ := lossScaleState(t, m, lso)
	for i := range saved {
		sameBits(t, lso.Variables()[i].Name(), saved[i], back[i])
	}

	m2, lso2, _ := build()
	defer m2.Close()
	require.NoError(t, m2.LoadCheckpoint(prefix))
	got, gotW := lossScaleState(t, m2, lso2)
	require.Len(t, got, len(saved))
	for i := range saved {
		require.Equal(t, lso.Variables()[i].Name(), lso2.Variables()[i].Name())
		sameBits(t, lso2.Variables()[i].Name(), saved[i], got[i])
	}
	for i := range savedW {
		sameBits(t, fmt.Sprintf("weight %d", i), savedW[i], gotW[i])
	}
}

// What Keras refuses, and what Keras accepts but cannot train with (a
// scale that is not a positive finite float32, fewer than one growth
// step), are errors before any graph is built.
func TestLossScaleOptimizerRefusals(t *testing.T) {
	adam := func() Optimizer { return NewAdam(AdamOptions{}) }
	lso, err := NewLossScaleOptimizer(adam(), LossScaleOptions{})
	require.NoError(t, err)
	require.Equal(t, float64(1<<15), lso.InitialScale())
	require.Equal(t, 2000, lso.DynamicGrowthSteps())
	for name, c := range map[string]struct {
		inner Optimizer
		opts  LossScaleOptions
		msg   string
	}{
		"nil inner":         {nil, LossScaleOptions{}, "nil inner optimizer"},
		"typed nil inner":   {(*Adam)(nil), LossScaleOptions{}, "nil inner optimizer"},
		"zero inner":        {&Adam{}, LossScaleOptions{}, "zero inner optimizer"},
		"nested":            {lso, LossScaleOptions{}, "is a LossScaleOptimizer already"},
		"negative scale":    {adam(), LossScaleOptions{InitialScale: -1}, "initial scale -1"},
		"NaN scale":         {adam(), LossScaleOptions{InitialScale: math.NaN()}, "initial scale NaN"},
		"infinite scale":    {adam(), LossScaleOptions{InitialScale: math.Inf(1)}, "initial scale +Inf"},
		"float32 overflow":  {adam(), LossScaleOptions{InitialScale: 1e39}, "initial scale 1e+39"},
		"float32 underflow": {adam(), LossScaleOptions{InitialScale: 1e-50}, "initial scale 1e-50"},
		"negative growth":   {adam(), LossScaleOptions{DynamicGrowthSteps: -1}, "dynamic growth steps -1"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := NewLossScaleOptimizer(c.inner, c.opts)
			require.ErrorContains(t, err, c.msg)
			require.Nil(t, got)
		})
	}

	// A zero optimizer, and weights that do not pair with the gradients,
	// are errors on the scope.
	s := tfgo.NewScope()
	require.Nil(t, (&LossScaleOptimizer{}).Apply(s, nil, nil))
	require.ErrorContains(t, s.Err(), "zero LossScaleOptimizer")
	s = tfgo.NewScope()
	require.Nil(t, lso.Apply(s, nil, []tfgo.Output{tfgo.Const(s, float32(1))}))
	require.ErrorContains(t, s.Err(), "0 weights and 1 gradients")
	var nilLSO *LossScaleOptimizer
	require.Nil(t, nilLSO.Variables())
	require.Nil(t, nilLSO.Iterations())
	require.Equal(t, tfgo.Output{}, nilLSO.ScaleLoss(nil, tfgo.Output{}))
}

// sameBits requires equal dtypes, shapes and bytes.
func sameBits(t *testing.T, what string, want, got *tfgo.Tensor) {
	t.Helper()
	require.Equal(t, want.DataType(), got.DataType(), what)
	require.Equal(t, want.Shape(), got.Shape(), what)
	require.Equal(t, want.Data(), got.Data(), "%s: want %v, got %v", what, want, got)
}

func scalarF(t *testing.T, tn *tfgo.Tensor) float32 {
	t.Helper()
	v := floats(t, tn)
	require.Len(t, v, 1)
	return v[0]
}

func scalarI(t *testing.T, tn *tfgo.Tensor) int64 {
	t.Helper()
	v, err := tfgo.Int64s(tn)
	require.NoError(t, err)
	require.Len(t, v, 1)
	return v[0]
}

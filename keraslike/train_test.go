package keraslike

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mlp is Sequential([Input(8), Dense(16, relu), Dense(4)]) with given weights.
func mlp(t *testing.T, w []*tfgo.Tensor) *Model {
	ResetNames()
	return NewSequential("mlp", InputSpec{Shape: []int64{8}},
		NewDense(16, DenseOptions{Activation: "relu", KernelInitializer: tfgo.InitialValue(w[0]), BiasInitializer: tfgo.InitialValue(w[1])}),
		NewDense(4, DenseOptions{KernelInitializer: tfgo.InitialValue(w[2]), BiasInitializer: tfgo.InitialValue(w[3])}),
	)
}

func mlpData(r *rand.Rand, n int) ([][]float32, []int32) {
	x := make([][]float32, n)
	y := make([]int32, n)
	for i := range x {
		x[i] = make([]float32, 8)
		for j := range x[i] {
			x[i][j] = float32(r.NormFloat64())
		}
		y[i] = int32(r.Intn(4))
	}
	return x, y
}

// Learning-rate schedules give Keras' values step by step.
func TestSchedulesMatchKeras(t *testing.T) {
	s := tfgo.NewScope()
	step := tfgo.Placeholder(s, tfgo.Float)
	wc := WarmupCosine{Peak: 1e-3, WarmupSteps: 10, DecaySteps: 90, Alpha: 0.1}.Rate(s, step)
	ed := ExponentialDecay{Initial: 0.1, DecaySteps: 7, DecayRate: 0.5, Staircase: true}.Rate(s, step)
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	var got [2][]float32
	for i := 0; i < 120; i += 3 {
		out, err := sess.Run(map[tfgo.Output]any{step: float32(i)}, []tfgo.Output{wc, ed})
		require.NoError(t, err)
		got[0] = append(got[0], floats(t, out[0])[0])
		got[1] = append(got[1], floats(t, out[1])[0])
	}
	ref := interop.Python(t, `
import keras
wc = keras.optimizers.schedules.CosineDecay(0.0, 90, alpha=0.1, warmup_target=1e-3, warmup_steps=10)
ed = keras.optimizers.schedules.ExponentialDecay(0.1, 7, 0.5, staircase=True)
outputs["wc"] = np.array([float(wc(i)) for i in range(0, 120, 3)], np.float32)
outputs["ed"] = np.array([float(ed(i)) for i in range(0, 120, 3)], np.float32)
`, nil)
	// The same float32 formula as Keras'; the cosine rounds differently in
	// a graph and in Keras' eager call by up to 4e-7 relative (3 ulps).
	testutil.AllClose(t, "warm-up cosine", floats(t, ref["wc"]), got[0], 0, 1e-6)
	testutil.AllClose(t, "exponential decay", floats(t, ref["ed"]), got[1], 0, 0) // the same ops: exact
}

func TestFitLearnsAndReportsMetrics(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	x, y := mlpData(r, 256)
	for i := range y { // a learnable rule: the class is the sign pattern of two features
		y[i] = int32(0)
		if x[i][0] > 0 {
			y[i] += 1
		}
		if x[i][1] > 0 {
			y[i] += 2
		}
	}
	ResetNames()
	m := NewSequential("clf", InputSpec{Shape: []int64{8}}, NewDense(32, DenseOptions{Activation: "relu"}), NewDense(4, DenseOptions{}))
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}}),
		Loss: SparseCategoricalCrossentropy{FromLogits: true}, Metrics: []string{"accuracy"}}))
	var bar strings.Builder
	csvPath := t.TempDir() + "/log.csv"
	data := &ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: 32, Shuffle: true, Seed: 1}
	hist, err := m.Fit(context.Background(), data, FitOptions{Epochs: 8, Validation: data,
		Callbacks: []Callback{&ProgressBar{W: &bar}, &CSVLogger{Path: csvPath}}})
	require.NoError(t, err)
	require.Len(t, hist.Epochs, 8)
	first, last := hist.Epochs[0], hist.Epochs[7]
	assert.Less(t, last["loss"], first["loss"])
	assert.Greater(t, last["val_accuracy"], 0.9)
	assert.Contains(t, bar.String(), "Epoch 8/8")
	assert.Contains(t, bar.String(), "8/8 ━━━━━━━━━━━━━━━━━━━━")
	summary := m.Summary()
	assert.Contains(t, summary, "dense (Dense)")
	assert.Contains(t, summary, "(None, 32)")
	assert.Contains(t, summary, fmt.Sprintf("Total params: %d", 8*32+32+32*4+4))
}

// Bad input is reported before any graph run, naming what is wrong.
func TestBadTrainingInput(t *testing.T) {
	_, err := OptimizerByName("adagrad2")
	require.ErrorContains(t, err, `unknown optimizer "adagrad2"`)
	_, err = LossByName("hinge_loss")
	require.ErrorContains(t, err, `unknown loss "hinge_loss"`)

	ResetNames()
	m := NewSequential("clf", InputSpec{Shape: []int64{8}}, NewDense(4, DenseOptions{}))
	defer m.Close()
	require.ErrorContains(t, m.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{}), Loss: MeanSquaredError{}, Metrics: []string{"f1"}}), `unknown metric "f1"`)
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
	bad := &ArrayDataset[[]float32, int32]{X: [][]float32{{1, 2, 3}}, Y: []int32{1}, BatchSize: 1}
	_, err = m.Fit(context.Background(), bad, FitOptions{})
	require.ErrorContains(t, err, "has shape [1 3], the input wants (None, 8)")
	_, err = m.Predict([][]int32{{1, 2, 3, 4, 5, 6, 7, 8}})
	require.ErrorContains(t, err, "is int32, the input wants float32")
}

// Accumulating the gradients of two micro-batches of 8 gives the update of
// one batch of 16 (the loss being a mean over the batch).
func TestGradientAccumulationEqualsTheFullBatch(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	w := []*tfgo.Tensor{randTensor(t, r, 8, 16), randTensor(t, r, 16), randTensor(t, r, 16, 4), randTensor(t, r, 4)}
	x, y := mlpData(r, 16)
	train := func(batch, accumulate int) []*tfgo.Tensor {
		m := mlp(t, w)
		defer m.Close()
		require.NoError(t, m.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.5}}),
			Loss: SparseCategoricalCrossentropy{FromLogits: true}, AccumulationSteps: accumulate}))
		_, err := m.Fit(context.Background(), &ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: batch}, FitOptions{})
		require.NoError(t, err)
		got, err := m.GetWeights()
		require.NoError(t, err)
		return got
	}
	full, accumulated := train(16, 0), train(8, 2)
	for i := range full {
		// (g1+g2)/2 and the gradient of the batch's mean sum the same
		// products in another order: rounding that follows the weight's
		// magnitude, observed 5e-8 of max|w|.
		allCloseTol(t, fmt.Sprintf("weight %d", i), full[i], accumulated[i], testutil.Tol{Scaled: 5e-7})
		assert.NotEqual(t, floats(t, w[i]), floats(t, accumulated[i]), "weights moved")
	}
}

package keraslike

import (
	"context"
	"math/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fitWithMonitor fits Dense(hidden, relu) → Dense(4) on 64 features for
// epochs of 4 batches of 32 under the given callbacks.
func fitWithMonitor(t *testing.T, hidden, epochs int, cbs ...Callback) {
	t.Helper()
	r := rand.New(rand.NewSource(3))
	x := make([][]float32, 128)
	y := make([]int32, len(x))
	for i := range x {
		x[i] = make([]float32, 64)
		for j := range x[i] {
			x[i][j] = float32(r.NormFloat64())
		}
		y[i] = int32(r.Intn(4))
	}
	ResetNames()
	m := NewSequential("mem", InputSpec{Shape: []int64{64}}, NewDense(hidden, DenseOptions{Activation: "relu"}), NewDense(4, DenseOptions{}))
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
	data := &ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: 32}
	_, err := m.Fit(context.Background(), data, FitOptions{Epochs: epochs, Callbacks: cbs})
	require.NoError(t, err)
}

// stepRecorder notes which batches Fit traced.
type stepRecorder struct {
	NopCallback
	every   int
	batches []int
	ended   []int
}

func (s *stepRecorder) MemoryEvery() int { return s.every }
func (s *stepRecorder) OnStepMemory(_ *Model, _, batch int, _ MemoryStats) {
	s.batches = append(s.batches, batch)
}
func (s *stepRecorder) OnBatchEnd(_ *Model, batch int, _ Logs) { s.ended = append(s.ended, batch) }

// A 4x wider hidden layer makes larger activations and gradients: a
// larger step peak. RSS is the whole process', at least the step's.
func TestMemoryMonitorStepPeakAndRSS(t *testing.T) {
	var out strings.Builder
	narrow := &MemoryMonitor{W: &out}
	fitWithMonitor(t, 64, 2, narrow)
	wide := &MemoryMonitor{}
	fitWithMonitor(t, 256, 1, wide)
	t.Logf("hidden 64: %s", out.String())
	t.Logf("hidden 64: step peak %d bytes, RSS %d, peak RSS %d", narrow.Max.StepPeakBytes, narrow.Max.RSSBytes, narrow.Max.PeakRSSBytes)
	t.Logf("hidden 256: step peak %d bytes, RSS %d", wide.Max.StepPeakBytes, wide.Max.RSSBytes)

	require.Len(t, narrow.Epochs, 2)
	for _, e := range narrow.Epochs {
		assert.Positive(t, e.StepPeakBytes)
		assert.Positive(t, e.RSSBytes)
		assert.GreaterOrEqual(t, e.PeakRSSBytes, e.RSSBytes)
		assert.Greater(t, e.RSSBytes, e.StepPeakBytes)
		assert.Equal(t, e.StepPeakBytes, e.Step.PeakBytes)
	}
	// The hidden activations alone: 32 rows of 64 float32.
	assert.GreaterOrEqual(t, narrow.Max.StepPeakBytes, int64(32*64*4))
	assert.Greater(t, wide.Max.StepPeakBytes, narrow.Max.StepPeakBytes)
	assert.Greater(t, float64(wide.Max.StepPeakBytes)/float64(narrow.Max.StepPeakBytes), 2.0,
		"the hidden layer's activations, gradients and Adam updates dominate the step")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2)
	assert.Regexp(t, `^epoch 1: step peak \d+\.\d MiB \(TensorFlow allocator\), RSS \d+\.\d MiB, peak RSS \d+\.\d MiB$`, lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "epoch 2: "))
}

// Only the batches a MemoryCallback asks for are traced, and their
// memory arrives before their OnBatchEnd.
func TestMemoryCallbackEvery(t *testing.T) {
	every2 := &stepRecorder{every: 2}
	never := &stepRecorder{}
	fitWithMonitor(t, 16, 2, every2, never)
	assert.Equal(t, []int{0, 2, 0, 2}, every2.batches)
	assert.Equal(t, []int{0, 1, 2, 3, 0, 1, 2, 3}, every2.ended)
	assert.Empty(t, never.batches)
}

func TestMemoryMonitorNil(t *testing.T) {
	var mm *MemoryMonitor
	assert.Zero(t, mm.MemoryEvery())
	mm.OnTrainBegin(nil, FitInfo{})
	mm.OnEpochBegin(nil, 0)
	mm.OnStepMemory(nil, 0, 0, MemoryStats{})
	assert.Error(t, mm.OnEpochEnd(nil, 0, nil))
	assert.Equal(t, 1, (&MemoryMonitor{}).MemoryEvery())
	var empty MemoryMonitor
	require.NoError(t, empty.OnEpochEnd(nil, 0, nil))
	assert.Len(t, empty.Epochs, 1)
	var out strings.Builder
	w := &MemoryMonitor{W: &out}
	require.NoError(t, w.OnEpochEnd(nil, 0, nil))
	assert.Equal(t, "epoch 1: no step traced\n", out.String())
}

package keraslike

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func trainedClassifier(t *testing.T, epochs int, cbs ...Callback) (*Model, *ArrayDataset[[]float32, int32]) {
	r := rand.New(rand.NewSource(4))
	x, y := mlpData(r, 64)
	ResetNames()
	m := NewSequential("clf", InputSpec{Shape: []int64{8}}, NewDense(8, DenseOptions{Activation: "relu"}), NewDense(4, DenseOptions{}))
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
	data := &ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: 16}
	_, err := m.Fit(context.Background(), data, FitOptions{Epochs: epochs, Validation: data, Callbacks: cbs})
	require.NoError(t, err)
	return m, data
}

// Per-epoch checkpoints are genuine TensorFlow checkpoints: Python reads
// them with the Keras paths as keys and equal values, latest_checkpoint
// finds the newest, and a fresh Go model restored from one predicts the same.
func TestModelCheckpointWritesTensorFlowCheckpoints(t *testing.T) {
	dir := t.TempDir()
	ck := &ModelCheckpoint{Path: filepath.Join(dir, "model_shard_{epoch}"), MaxToKeep: 2}
	m, data := trainedClassifier(t, 3, ck)
	defer m.Close()
	require.Equal(t, []string{filepath.Join(dir, "model_shard_1"), filepath.Join(dir, "model_shard_2"), filepath.Join(dir, "model_shard_3")}, ck.Saved)
	_, err := os.Stat(filepath.Join(dir, "model_shard_1.index"))
	assert.True(t, os.IsNotExist(err), "MaxToKeep 2 removed the first checkpoint")

	weights, err := m.GetWeights()
	require.NoError(t, err)
	dirT, err := tfgo.NewStringTensor(nil, [][]byte{[]byte(dir)})
	require.NoError(t, err)
	ref := interop.Python(t, `
d = inputs["dir"].item().decode()
latest = tf.train.latest_checkpoint(d)
r = tf.train.load_checkpoint(latest)
names = sorted(n for n, _ in tf.train.list_variables(latest))
outputs["latest"] = latest.encode()
outputs["names"] = np.array([n.encode() for n in names], dtype=object)
for i, n in enumerate(["clf/dense/kernel", "clf/dense/bias", "clf/dense_1/kernel", "clf/dense_1/bias"]):
    outputs["w%d" % i] = r.get_tensor(n)
outputs["iteration"] = r.get_tensor([n for n in names if n.endswith("iteration")][0])
`, map[string]*tfgo.Tensor{"dir": dirT})
	latest, _ := ref["latest"].Strings()
	assert.Equal(t, filepath.Join(dir, "model_shard_3"), string(latest[0]))
	for i := range weights {
		assert.Equal(t, floats(t, weights[i]), floats(t, ref[[]string{"w0", "w1", "w2", "w3"}[i]]))
	}
	it, _ := tfgo.Int64s(ref["iteration"])
	assert.Equal(t, int64(12), it[0], "3 epochs of 4 batches")
	names, _ := ref["names"].Strings()
	assert.Contains(t, stringsOf(names), "adam/clf_dense_kernel_momentum")

	// A fresh model restored from the latest checkpoint predicts the same.
	ResetNames()
	fresh := NewSequential("clf", InputSpec{Shape: []int64{8}}, NewDense(8, DenseOptions{Activation: "relu"}), NewDense(4, DenseOptions{}))
	defer fresh.Close()
	require.NoError(t, fresh.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
	require.NoError(t, fresh.LoadCheckpoint(string(latest[0])))
	a, err := m.Predict(data.X[:4])
	require.NoError(t, err)
	b, err := fresh.Predict(data.X[:4])
	require.NoError(t, err)
	assert.Equal(t, floats(t, a), floats(t, b))

	// A checkpoint of another model is refused, naming the weight.
	ResetNames()
	other := NewSequential("clf", InputSpec{Shape: []int64{8}}, NewDense(5, DenseOptions{Activation: "relu"}), NewDense(4, DenseOptions{}))
	defer other.Close()
	require.NoError(t, other.Build())
	err = other.LoadCheckpoint(string(latest[0]))
	require.ErrorContains(t, err, "clf/dense/kernel")
	require.ErrorContains(t, other.LoadCheckpoint(filepath.Join(dir, "missing")), "missing")
}

// alternating is a validation set that is the training data on odd
// evaluations and the same inputs with shifted labels on even ones, so
// val_loss falls and rises from epoch to epoch.
type alternating struct {
	good, bad *ArrayDataset[[]float32, int32]
	calls     int
}

func (a *alternating) Batches(epoch int, fn func(Batch) bool) error {
	a.calls++
	if a.calls%2 == 0 {
		return a.bad.Batches(epoch, fn)
	}
	return a.good.Batches(epoch, fn)
}

func (a *alternating) Len() int { return a.good.Len() }

// SaveBestOnly saves exactly the epochs whose val_loss beats every earlier
// one, under the path its template names for that epoch.
func TestModelCheckpointBestOnlyAndTemplates(t *testing.T) {
	dir := t.TempDir()
	ck := &ModelCheckpoint{Path: filepath.Join(dir, "best-{epoch:02d}-{val_loss:.3f}"), SaveBestOnly: true, WeightsOnly: true}
	r := rand.New(rand.NewSource(4))
	x, y := mlpData(r, 64)
	shifted := make([]int32, len(y))
	for i := range y {
		shifted[i] = (y[i] + 1) % 4
	}
	ResetNames()
	m := NewSequential("clf", InputSpec{Shape: []int64{8}}, NewDense(8, DenseOptions{Activation: "relu"}), NewDense(4, DenseOptions{}))
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}}),
		Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
	data := &ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: 16}
	val := &alternating{good: data, bad: &ArrayDataset[[]float32, int32]{X: x, Y: shifted, BatchSize: 16}}
	hist, err := m.Fit(context.Background(), data, FitOptions{Epochs: 6, Validation: val, Callbacks: []Callback{ck}})
	require.NoError(t, err)
	var want []string
	best := math.Inf(1)
	for e, logs := range hist.Epochs {
		if v := logs["val_loss"]; v < best {
			best = v
			want = append(want, filepath.Join(dir, fmt.Sprintf("best-%02d-%.3f", e+1, v)))
		}
	}
	require.Less(t, len(want), len(hist.Epochs), "some epoch must not improve, or the check sees nothing: %v", hist.Epochs)
	require.Greater(t, len(want), 1, "more than the first epoch must improve: %v", hist.Epochs)
	assert.Equal(t, want, ck.Saved)
	for _, p := range want {
		_, err := os.Stat(p + ".index")
		assert.NoError(t, err, "checkpoint %s", p)
	}
	_, err = formatPath("x-{nope}", 1, 0, Logs{})
	require.ErrorContains(t, err, `no metric "nope"`)
	p, err := formatPath("ckpt/model_shard_{epoch}", 7, 0, Logs{})
	require.NoError(t, err)
	assert.Equal(t, "ckpt/model_shard_7", p)
}

func TestEarlyStoppingStops(t *testing.T) {
	es := &EarlyStopping{Monitor: "loss", Patience: 0, MinDelta: 1e9} // nothing counts as improving
	r := rand.New(rand.NewSource(4))
	x, y := mlpData(r, 32)
	ResetNames()
	m := NewSequential("es", InputSpec{Shape: []int64{8}}, NewDense(4, DenseOptions{}))
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
	hist, err := m.Fit(context.Background(), &ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: 8}, FitOptions{Epochs: 10, Callbacks: []Callback{es}})
	require.NoError(t, err)
	assert.Len(t, hist.Epochs, 2, "the first epoch sets the baseline, the second does not improve by 1e9")
	es2 := &EarlyStopping{Monitor: "val_accuracy"}
	_, err = m.Fit(context.Background(), &ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: 8}, FitOptions{Epochs: 1, Callbacks: []Callback{es2}})
	require.ErrorContains(t, err, `metric "val_accuracy" is not in the logs`)
}

// A ".keras" path saves the whole model each epoch; it loads back with the
// same predictions.
func TestModelCheckpointKerasFiles(t *testing.T) {
	dir := t.TempDir()
	ck := &ModelCheckpoint{Path: filepath.Join(dir, "model-{epoch:02d}.keras")}
	m, data := trainedClassifier(t, 2, ck)
	defer m.Close()
	require.Equal(t, []string{filepath.Join(dir, "model-01.keras"), filepath.Join(dir, "model-02.keras")}, ck.Saved)
	loaded, err := LoadKerasModel(ck.Saved[1], LoadOptions{})
	require.NoError(t, err)
	defer loaded.Close()
	a, err := m.Predict(data.X[:4])
	require.NoError(t, err)
	b, err := loaded.Predict(data.X[:4])
	require.NoError(t, err)
	allClose(t, "predictions of the saved and the loaded model", a, b, 0, 0) // one graph builder, the same weights: exact
}

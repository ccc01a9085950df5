package keraslike

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gotf/gotf/distribute"
	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mirrorCase is one model and optimizer trained with and without a strategy.
type mirrorCase struct {
	name  string
	model func(t *testing.T) *Model
	opt   func() Optimizer
	loss  Loss
	data  Dataset
}

func mirrorDenseModel(t *testing.T) *Model {
	ResetNames()
	return NewSequential("mlp", InputSpec{Shape: []int64{8}},
		NewDense(16, DenseOptions{Activation: "tanh"}), NewDense(4, DenseOptions{}))
}

func mirrorGPT(t *testing.T) *Model {
	ResetNames()
	m, err := NewGPT("gpt", GPTConfig{SeqLen: 8, DModel: 16, Heads: 2, Layers: 1})
	require.NoError(t, err)
	return m
}

// mirrorDenseData is 20 global batches of 8 examples, the same for every run.
func mirrorDenseData() Dataset {
	r := rand.New(rand.NewSource(7))
	d := &ArrayDataset[[]float32, []float32]{BatchSize: 8}
	for range 160 {
		x := make([]float32, 8)
		for j := range x {
			x[j] = float32(r.NormFloat64())
		}
		y := []float32{x[0] * x[1], x[2] - x[3], float32(r.NormFloat64()), x[4] + x[5]*x[6]}
		d.X, d.Y = append(d.X, x), append(d.Y, y)
	}
	return d
}

func mirrorTokenData(t *testing.T) Dataset {
	r := rand.New(rand.NewSource(3))
	toks := make([]int32, 20*8*4+1)
	for i := range toks {
		toks[i] = int32(r.Intn(40))
	}
	d, err := NextTokenDataset(toks, 8, 4, 1)
	require.NoError(t, err)
	return d
}

// trainMirrored trains c's model for 20 steps from the weights init, with
// a strategy on replicas logical CPUs (0: no strategy), and returns the
// model and its per-epoch loss.
func trainMirrored(t *testing.T, c mirrorCase, replicas int, init []*tfgo.Tensor) (*Model, float64) {
	t.Helper()
	m := c.model(t)
	o := CompileOptions{Optimizer: c.opt(), Loss: c.loss}
	if replicas > 0 {
		var devs []string
		for k := range replicas {
			devs = append(devs, fmt.Sprintf("/device:CPU:%d", k))
		}
		st, err := distribute.NewMirroredStrategy(devs...)
		require.NoError(t, err)
		o.Strategy = st
	}
	require.NoError(t, m.Compile(o))
	if init != nil {
		require.NoError(t, m.SetWeights(init))
	}
	h, err := m.Fit(context.Background(), c.data, FitOptions{Epochs: 1, StepsPerEpoch: 20})
	require.NoError(t, err)
	return m, h.Epochs[0]["loss"]
}

// Training 20 steps with 1, 2 and 4 replicas gives the weights of the
// single-device model, for SGD with momentum, Adam, Adam clipped by the
// global norm, and a GPT block; every replica's copies equal replica 0's.
func TestMirroredStrategyMatchesSingleDevice(t *testing.T) {
	mse := MeanSquaredError{}
	cases := []mirrorCase{
		{"dense_sgd", mirrorDenseModel, func() Optimizer {
			return NewSGD(SGDOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.05}, Momentum: 0.9})
		}, mse, mirrorDenseData()},
		{"dense_adam", mirrorDenseModel, func() Optimizer {
			return NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}})
		}, mse, mirrorDenseData()},
		// A norm of 0.1 clips every step: a norm summed per replica would show.
		{"dense_adam_clip", mirrorDenseModel, func() Optimizer {
			return NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01, GlobalClipNorm: 0.1}})
		}, mse, mirrorDenseData()},
		{"gpt_adam", mirrorGPT, func() Optimizer {
			return NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}})
		}, SparseCategoricalCrossentropy{FromLogits: true}, mirrorTokenData(t)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Every run starts from the same initial values.
			fresh := c.model(t)
			require.NoError(t, fresh.Build())
			init, err := fresh.GetWeights()
			require.NoError(t, err)
			fresh.Close()
			ref, refLoss := trainMirrored(t, c, 0, init)
			defer ref.Close()
			want, err := ref.GetWeights()
			require.NoError(t, err)
			for _, n := range []int{1, 2, 4} {
				m, loss := trainMirrored(t, c, n, init)
				got, err := m.GetWeights()
				require.NoError(t, err)
				for i, w := range m.Weights() {
					atol := 1e-5
					if strings.HasSuffix(w.Path, "key/bias") {
						// Its true gradient is zero (a row's softmax ignores
						// a shift of all its logits), so Adam's steps on it
						// are rounding noise scaled up to lr·g/ε: ~4e-6 here.
						atol = 1e-4
					}
					allClose(t, fmt.Sprintf("%d replicas: %s", n, w.Path), want[i], got[i], atol, 1e-5)
				}
				assert.InDelta(t, refLoss, loss, 1e-5*max(1, refLoss), "%d replicas: mean loss", n)
				replicasEqualReplica0(t, m, n, got)
				m.Close()
			}
		})
	}
}

// Keras' own MirroredStrategy on two logical CPUs trains the MLP to the
// weights the Go one does: 20 steps of Adam on global batches of 8 from
// the same weights. Python's logical devices can be made only before
// TensorFlow starts, and the package's Python worker has started it, so
// the reference runs in a child Python (once, for this test).
func TestMirroredStrategyMatchesKeras(t *testing.T) {
	c := mirrorCase{"dense_adam", mirrorDenseModel, func() Optimizer {
		return NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}})
	}, MeanSquaredError{}, mirrorDenseData()}
	fresh := c.model(t)
	require.NoError(t, fresh.Build())
	init, err := fresh.GetWeights()
	require.NoError(t, err)
	fresh.Close()
	m, _ := trainMirrored(t, c, 2, init)
	defer m.Close()
	got, err := m.GetWeights()
	require.NoError(t, err)

	d := c.data.(*ArrayDataset[[]float32, []float32])
	x, err := tfgo.NewTensor(d.X)
	require.NoError(t, err)
	y, err := tfgo.NewTensor(d.Y)
	require.NoError(t, err)
	ref := interop.Python(t, `
import os, subprocess, sys, tempfile
d = tempfile.mkdtemp()
for k, v in inputs.items():
    np.save(os.path.join(d, k + ".npy"), v)
script = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
d = sys.argv[1]
ld = lambda k: np.load(os.path.join(d, k + ".npy"))
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(4)], name="mlp")
    m.set_weights([ld("w%d" % i) for i in range(4)])
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="mean_squared_error")
m.fit(ld("x"), ld("y"), batch_size=8, epochs=1, shuffle=False, verbose=0)
assert strategy.num_replicas_in_sync == 2
for i, w in enumerate(m.get_weights()):
    np.save(os.path.join(d, "out%d.npy" % i), w)
"""
r = subprocess.run([sys.executable, "-c", script, d], capture_output=True)
if r.returncode:
    raise RuntimeError(r.stderr.decode()[-4000:])
for i in range(4):
    outputs["w%d" % i] = np.load(os.path.join(d, "out%d.npy" % i))
`, map[string]*tfgo.Tensor{"w0": init[0], "w1": init[1], "w2": init[2], "w3": init[3], "x": x, "y": y})
	for i, w := range m.Weights() {
		allClose(t, "Keras' MirroredStrategy: "+w.Path, ref[fmt.Sprintf("w%d", i)], got[i], 1e-5, 1e-5)
	}
}

func indexOf(ws []*Weight, w *Weight) int {
	for i, x := range ws {
		if x == w {
			return i
		}
	}
	return -1
}

// One traced step: each replica's MatMuls ran on its own device, and every
// device ran CollectiveReduceV2s.
func TestMirroredStepRunsOnEveryDevice(t *testing.T) {
	st, err := distribute.NewMirroredStrategy("/device:CPU:0", "/device:CPU:1")
	require.NoError(t, err)
	m := mirrorGPT(t)
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}, Strategy: st}))
	assert.Same(t, st, m.Strategy())
	sess, err := m.Session()
	require.NoError(t, err)
	var batch Batch
	require.NoError(t, mirrorTokenData(t).Batches(0, func(b Batch) bool { batch = b; return false }))
	xt, rx, err := m.batchTensor("x", batch.X, m.train.x)
	require.NoError(t, err)
	defer rx()
	yt, ry, err := m.batchTensor("y", batch.Y, m.train.yTrue)
	require.NoError(t, err)
	defer ry()
	_, tr, err := sess.RunTraced(map[tfgo.Output]any{m.train.x: xt, m.train.yTrue: yt}, []tfgo.Output{m.train.loss}, m.train.step)
	require.NoError(t, err)

	matmuls := map[int]map[string]int{} // replica -> device -> count
	collectives := map[string]int{}
	for _, g := range tr.Metadata.GetPartitionGraphs() {
		for _, n := range g.GetNode() {
			dev := n.GetDevice()[strings.LastIndex(n.GetDevice(), "/"):]
			if n.GetOp() == "CollectiveReduceV2" {
				collectives[dev]++
			}
			if !strings.Contains(n.GetOp(), "MatMul") {
				continue
			}
			for k := range 2 {
				if strings.Contains(n.GetName(), fmt.Sprintf("train/replica_%d/", k)) {
					if matmuls[k] == nil {
						matmuls[k] = map[string]int{}
					}
					matmuls[k][dev]++
				}
			}
		}
	}
	for k := range 2 {
		dev := fmt.Sprintf("/device:CPU:%d", k)
		require.NotEmpty(t, matmuls[k], "replica %d ran no MatMul", k)
		assert.Equal(t, []string{dev}, keys(matmuls[k]), "replica %d's MatMuls ran on %v", k, matmuls[k])
		// One per trainable weight on every device.
		assert.Equal(t, len(m.TrainableWeights()), collectives[dev], "CollectiveReduceV2s on %s", dev)
	}
	// The step stats agree with the partition graphs.
	seen := map[string]bool{}
	for _, op := range tr.Ops {
		if strings.Contains(op.Name, "CollectiveReduceV2") {
			seen[op.Device[strings.LastIndex(op.Device, "/"):]] = true
		}
	}
	assert.Equal(t, map[string]bool{"/device:CPU:0": true, "/device:CPU:1": true}, seen)
}

func keys(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// A mirrored model's checkpoint has the keys and shapes of a single-device
// model's, and a single-device model loading it predicts what it does.
func TestMirroredCheckpointIsSingleDevice(t *testing.T) {
	dir := t.TempDir()
	data := mirrorDenseData()
	st, err := distribute.NewMirroredStrategy("/device:CPU:0", "/device:CPU:1")
	require.NoError(t, err)
	mir := mirrorDenseModel(t)
	defer mir.Close()
	require.NoError(t, mir.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: MeanSquaredError{}, Strategy: st}))
	_, err = mir.Fit(context.Background(), data, FitOptions{StepsPerEpoch: 3})
	require.NoError(t, err)
	require.NoError(t, mir.SaveCheckpoint(filepath.Join(dir, "mirrored"), CheckpointOptions{}))

	single := mirrorDenseModel(t)
	defer single.Close()
	require.NoError(t, single.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: MeanSquaredError{}}))
	_, err = single.Fit(context.Background(), data, FitOptions{StepsPerEpoch: 1})
	require.NoError(t, err)
	require.NoError(t, single.SaveCheckpoint(filepath.Join(dir, "single"), CheckpointOptions{}))

	shapes := func(prefix string) map[string][]int64 {
		r, err := savedmodel.OpenBundle(filepath.Join(dir, prefix))
		require.NoError(t, err)
		defer r.Close()
		out := map[string][]int64{}
		for _, k := range r.Keys() {
			e, err := r.EntryProto(k)
			require.NoError(t, err)
			var dims []int64
			for _, d := range e.GetShape().GetDim() {
				dims = append(dims, d.GetSize())
			}
			out[k] = dims
		}
		return out
	}
	assert.Equal(t, shapes("single"), shapes("mirrored"))
	for k := range shapes("mirrored") {
		assert.NotContains(t, k, "replica_", "a replica's copy was saved")
	}

	require.NoError(t, single.LoadCheckpoint(filepath.Join(dir, "mirrored")))
	var x [][]float32
	require.NoError(t, data.Batches(0, func(b Batch) bool { x = b.X.([][]float32); return false }))
	want, err := mir.Predict(x)
	require.NoError(t, err)
	got, err := single.Predict(x)
	require.NoError(t, err)
	assert.Equal(t, floats(t, want), floats(t, got))
}

// Loading weights into a mirrored model reaches every replica before the
// next step: training on after LoadCheckpoint matches a single-device model
// trained on after the same load.
func TestMirroredLoadReachesReplicas(t *testing.T) {
	dir := t.TempDir()
	data := mirrorDenseData()
	opt := func() Optimizer {
		return NewSGD(SGDOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.1}, Momentum: 0.5})
	}
	src := mirrorDenseModel(t)
	require.NoError(t, src.Compile(CompileOptions{Optimizer: opt(), Loss: MeanSquaredError{}}))
	_, err := src.Fit(context.Background(), data, FitOptions{StepsPerEpoch: 5})
	require.NoError(t, err)
	require.NoError(t, src.SaveCheckpoint(filepath.Join(dir, "ck"), CheckpointOptions{}))
	src.Close()

	run := func(st *distribute.MirroredStrategy) []*tfgo.Tensor {
		m := mirrorDenseModel(t)
		defer m.Close()
		require.NoError(t, m.Compile(CompileOptions{Optimizer: opt(), Loss: MeanSquaredError{}, Strategy: st}))
		// A step first, so that the replicas hold other values than the checkpoint's.
		_, err := m.Fit(context.Background(), data, FitOptions{StepsPerEpoch: 1})
		require.NoError(t, err)
		require.NoError(t, m.LoadCheckpoint(filepath.Join(dir, "ck")))
		_, err = m.Fit(context.Background(), data, FitOptions{StepsPerEpoch: 4})
		require.NoError(t, err)
		w, err := m.GetWeights()
		require.NoError(t, err)
		return w
	}
	want := run(nil)
	st, err := distribute.NewMirroredStrategy("/device:CPU:0", "/device:CPU:1")
	require.NoError(t, err)
	got := run(st)
	for i := range want {
		allClose(t, fmt.Sprintf("weight %d", i), want[i], got[i], 1e-5, 1e-5)
	}
}

// Bad input is refused naming the problem: a device the session lacks, a
// global batch the replicas cannot share, what is not implemented.
func TestMirroredStrategyRefuses(t *testing.T) {
	st, err := distribute.NewMirroredStrategy("/device:CPU:0", "/device:CPU:7")
	require.NoError(t, err)
	m := mirrorDenseModel(t)
	defer m.Close()
	m.SetSessionOptions(tfgo.SessionOptions{DeviceCount: map[string]int32{"CPU": 2}})
	err = m.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{}), Loss: MeanSquaredError{}, Strategy: st})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/device:CPU:7 does not exist")
	assert.Contains(t, err.Error(), "/device:CPU:1")
	// The refused Compile left the model usable.
	_, err = m.Predict([][]float32{make([]float32, 8)})
	require.NoError(t, err)

	four, err := distribute.NewMirroredStrategy("/device:CPU:0", "/device:CPU:1", "/device:CPU:2", "/device:CPU:3")
	require.NoError(t, err)
	m4 := mirrorDenseModel(t)
	defer m4.Close()
	require.NoError(t, m4.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{}), Loss: MeanSquaredError{}, Strategy: four}))
	d := &ArrayDataset[[]float32, []float32]{BatchSize: 6}
	for range 6 {
		d.X, d.Y = append(d.X, make([]float32, 8)), append(d.Y, make([]float32, 4))
	}
	before, err := m4.GetWeights()
	require.NoError(t, err)
	_, err = m4.Fit(context.Background(), d, FitOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "global batch of 6 examples does not split into 4 equal parts")
	after, err := m4.GetWeights()
	require.NoError(t, err)
	for i := range before {
		assert.Equal(t, floats(t, before[i]), floats(t, after[i]), "no step ran")
	}

	for _, c := range []struct {
		o    CompileOptions
		want string
	}{
		{CompileOptions{BatchSize: 6}, "global batch of 6 examples does not split into 4"},
		{CompileOptions{AccumulationSteps: 2}, "gradient accumulation"},
		{CompileOptions{Optimizer: &LossScaleOptimizer{}}, "LossScaleOptimizer"},
		{CompileOptions{Strategy: &distribute.MirroredStrategy{}}, "zero MirroredStrategy"},
	} {
		o := c.o
		if o.Optimizer == nil {
			o.Optimizer = NewSGD(SGDOptions{})
		}
		if o.Strategy == nil {
			o.Strategy = four
		}
		o.Loss = MeanSquaredError{}
		err := mirrorDenseModel(t).Compile(o)
		require.Error(t, err, c.want)
		assert.Contains(t, err.Error(), c.want)
	}
}

// replicasEqualReplica0 checks that every replica's hidden copies live on
// its device and hold replica 0's values (got: the model's GetWeights).
func replicasEqualReplica0(t *testing.T, m *Model, n int, got []*tfgo.Tensor) {
	t.Helper()
	sess, err := m.Session()
	require.NoError(t, err)
	for k := 1; k < n; k++ {
		cp := m.ReplicaWeights(k)
		require.Len(t, cp, len(m.TrainableWeights()))
		outs := make([]tfgo.Output, len(cp))
		for i, w := range cp {
			outs[i] = w.Read(m.Scope().SubScope("check"))
			assert.Equal(t, fmt.Sprintf("/device:CPU:%d", k), w.Handle().Op.Device())
		}
		vals, err := sess.Run(nil, outs)
		require.NoError(t, err)
		for i, w := range m.TrainableWeights() {
			assert.Equal(t, floats(t, got[indexOf(m.Weights(), w)]), floats(t, vals[i]), "replica %d's %s", k, w.Path)
		}
	}
}

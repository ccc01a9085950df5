package keraslike

import (
	"context"
	"fmt"
	"maps"
	"math/rand"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goCheckpointState reads what a checkpoint of m holds: the weights by
// path and the optimizer's variables by name, in Keras order.
func goCheckpointState(t *testing.T, m *Model) (paths []string, weights []*tfgo.Tensor, names []string, opt []*tfgo.Tensor) {
	t.Helper()
	sess, err := m.session()
	require.NoError(t, err)
	read := func(v *tfgo.Variable) *tfgo.Tensor {
		out, err := sess.Run(nil, []tfgo.Output{v.Value()})
		require.NoError(t, err)
		return out[0]
	}
	for _, w := range m.Weights() {
		paths, weights = append(paths, w.Path), append(weights, read(w.Variable))
	}
	for _, v := range m.train.opts.Optimizer.Variables() {
		names, opt = append(names, v.Name()), append(opt, read(v))
	}
	return paths, weights, names, opt
}

// restoreInPython builds the twin with build (Python code defining m, o
// and loss), reads the Go checkpoint at prefix with tf.train.Checkpoint
// and returns its weights and optimizer variables with their paths.
func restoreInPython(t *testing.T, twin, prefix string) map[string]*tfgo.Tensor {
	t.Helper()
	pT, err := tfgo.NewStringTensor(nil, [][]byte{[]byte(prefix)})
	require.NoError(t, err)
	return interop.Python(t, twin+`
m.compile(optimizer=o, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
o.build(m.trainable_variables)
status = tf.train.Checkpoint(model=m, optimizer=o).read(inputs["prefix"].item().decode())
status.assert_existing_objects_matched()
# Nothing in Go's graph is left without a Python object either.
status.assert_consumed()
outputs["paths"] = np.array([v.path.encode() for v in m.weights], dtype=object)
outputs["names"] = np.array([v.path.encode() for v in o.variables], dtype=object)
for i, v in enumerate(m.weights):
    outputs["w%d" % i] = v.numpy()
for i, v in enumerate(o.variables):
    outputs["o%d" % i] = v.numpy()
# The twin's own checkpoint, whose keys Go's object keys must be.
p = tf.train.Checkpoint(model=m, optimizer=o).write(inputs["prefix"].item().decode() + "-py")
outputs["keys"] = np.array([n.encode() for n, _ in tf.train.list_variables(p)], dtype=object)
`, map[string]*tfgo.Tensor{"prefix": pT})
}

// checkRestored compares the twin's restored state with the Go model's,
// exactly: weights by path, then the optimizer's variables in order (Keras
// adds a learning_rate variable after each optimizer's iteration, which Go
// keeps as a constant: each must be lr).
func checkRestored(t *testing.T, m *Model, prefix string, lr float32, ref map[string]*tfgo.Tensor) {
	t.Helper()
	r, err := savedmodel.OpenBundle(prefix)
	require.NoError(t, err)
	named, _ := m.checkpointVars(false)
	objectKeys := slices.DeleteFunc(r.Names(), func(k string) bool { return slices.Contains(named, k) })
	r.Close()
	pyKeys, _ := ref["keys"].Strings()
	assert.Equal(t, stringsOf(pyKeys), objectKeys, "the keys besides the names")
	// Python finds each variable by any path that reaches it: every path
	// of the twin's graph to a variable must be in Go's.
	assert.Equal(t, objectPathsIn(t, prefix+"-py"), objectPathsIn(t, prefix))

	paths, weights, names, opt := goCheckpointState(t, m)
	pyPaths, _ := ref["paths"].Strings()
	require.Equal(t, paths, stringsOf(pyPaths))
	for i := range weights {
		assert.Equal(t, floats(t, weights[i]), floats(t, ref[fmt.Sprintf("w%d", i)]), "weight %s", paths[i])
	}
	pyNames, _ := ref["names"].Strings()
	var pyOpt []int
	rates := 0
	for i, n := range stringsOf(pyNames) {
		if strings.HasSuffix(n, "/learning_rate") {
			assert.Equal(t, []float32{lr}, floats(t, ref[fmt.Sprintf("o%d", i)]), "%s", n)
			rates++
		} else {
			pyOpt = append(pyOpt, i)
		}
	}
	require.Positive(t, rates)
	require.Equal(t, len(names), len(pyOpt), "Go's optimizer variables %v, Keras' %v", names, stringsOf(pyNames))
	trained := false
	for i, j := range pyOpt {
		pyName := string(pyNames[j])
		// Keras names a wrapped optimizer's slots after the wrapper.
		assert.Equal(t, path.Base(names[i]), path.Base(pyName))
		want := ref[fmt.Sprintf("o%d", j)]
		if opt[i].DataType() == tfgo.Int64 {
			it, err := tfgo.Int64s(opt[i])
			require.NoError(t, err)
			pyIt, err := tfgo.Int64s(want)
			require.NoError(t, err)
			assert.Equal(t, it, pyIt, "%s", names[i])
			trained = trained || (path.Base(names[i]) == "iteration" && it[0] > 0)
			continue
		}
		assert.Equal(t, floats(t, opt[i]), floats(t, want), "%s", names[i])
	}
	assert.True(t, trained, "the model was trained")
}

// checkGoReads restores the checkpoint into a fresh model of the same
// build with each of loads (by default LoadObjectCheckpoint, the object
// graph, and LoadCheckpoint, the names) and finds the state of src.
func checkGoReads(t *testing.T, src *Model, prefix string, fresh func() *Model, loads ...func(*Model, string) error) {
	t.Helper()
	paths, weights, names, opt := goCheckpointState(t, src)
	if loads == nil {
		loads = []func(*Model, string) error{(*Model).LoadObjectCheckpoint, (*Model).LoadCheckpoint}
	}
	for _, load := range loads {
		m := fresh()
		require.NoError(t, load(m, prefix))
		p2, w2, n2, o2 := goCheckpointState(t, m)
		require.Equal(t, paths, p2)
		require.Equal(t, names, n2)
		same := func(what string, a, b *tfgo.Tensor) {
			assert.Equal(t, a.DataType(), b.DataType(), what)
			assert.Equal(t, a.Shape(), b.Shape(), what)
			assert.Equal(t, a.Data(), b.Data(), what)
		}
		for i := range weights {
			same(paths[i], weights[i], w2[i])
		}
		for i := range opt {
			same(names[i], opt[i], o2[i])
		}
		m.Close()
	}
}

// A Go checkpoint of a Sequential MLP trained with Adam restores into its
// Keras twin through tf.train.Checkpoint(model=m, optimizer=o).read, and
// Go reads it back by object graph and by name.
func TestCheckpointObjectGraphSequentialToPython(t *testing.T) {
	m, _ := trainedClassifier(t, 1)
	defer m.Close()
	prefix := filepath.Join(t.TempDir(), "ckpt")
	require.NoError(t, m.SaveCheckpoint(prefix, CheckpointOptions{}))

	ref := restoreInPython(t, `
import keras
keras.backend.clear_session()
m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(4)], name="clf")
o = keras.optimizers.Adam()
`, prefix)
	checkRestored(t, m, prefix, 0.001, ref)

	checkGoReads(t, m, prefix, func() *Model {
		ResetNames()
		f := NewSequential("clf", InputSpec{Shape: []int64{8}}, NewDense(8, DenseOptions{Activation: "relu"}), NewDense(4, DenseOptions{}))
		require.NoError(t, f.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
		return f
	})
}

// A model trained with a LossScaleOptimizer around Adam restores into a
// twin with keras.optimizers.LossScaleOptimizer: the wrapper's step counter
// and scale, and Adam's state under inner_optimizer.
func TestCheckpointObjectGraphLossScaleToPython(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	x, y := mlpData(r, 48)
	ResetNames()
	m := NewSequential("clf", InputSpec{Shape: []int64{8}}, NewDense(8, DenseOptions{Activation: "relu"}), NewDense(4, DenseOptions{}))
	defer m.Close()
	lso, err := NewLossScaleOptimizer(NewAdam(AdamOptions{}), LossScaleOptions{})
	require.NoError(t, err)
	require.NoError(t, m.Compile(CompileOptions{Optimizer: lso, Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
	_, err = m.Fit(context.Background(), &ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: 16}, FitOptions{Epochs: 1})
	require.NoError(t, err)
	prefix := filepath.Join(t.TempDir(), "lso")
	require.NoError(t, m.SaveCheckpoint(prefix, CheckpointOptions{}))
	ref := restoreInPython(t, `
import keras
keras.backend.clear_session()
m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(4)], name="clf")
o = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
`, prefix)
	checkRestored(t, m, prefix, 0.001, ref)
	checkGoReads(t, m, prefix, func() *Model {
		ResetNames()
		f := NewSequential("clf", InputSpec{Shape: []int64{8}}, NewDense(8, DenseOptions{Activation: "relu"}), NewDense(4, DenseOptions{}))
		lso, err := NewLossScaleOptimizer(NewAdam(AdamOptions{}), LossScaleOptions{})
		require.NoError(t, err)
		require.NoError(t, f.Compile(CompileOptions{Optimizer: lso, Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
		return f
	})
}

// adamGPT is a compiled GPT (2 blocks) with Adam at rate lr.
func adamGPT(t *testing.T, lr float64) *Model {
	t.Helper()
	ResetNames()
	m, err := NewGPT("gpt", GPTConfig{SeqLen: 8, DModel: 16, Heads: 2, Layers: 2})
	require.NoError(t, err)
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: lr}}),
		Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
	return m
}

// The GPT, trained a few steps with Adam in Go, restores into the Keras
// twin of gpt_test.go (custom TransformerBlock and PositionalEmbedding
// layers holding built-in ones) with every weight and slot equal.
func TestCheckpointObjectGraphGPTToPython(t *testing.T) {
	const lr = 0.003
	m := adamGPT(t, lr)
	defer m.Close()
	r := rand.New(rand.NewSource(5))
	x := make([][]int32, 12)
	y := make([][]int32, len(x))
	for i := range x {
		x[i], y[i] = make([]int32, 8), make([]int32, 8)
		for j := range x[i] {
			x[i][j], y[i][j] = r.Int31n(256), r.Int31n(256)
		}
	}
	_, err := m.Fit(context.Background(), &ArrayDataset[[]int32, []int32]{X: x, Y: y, BatchSize: 4}, FitOptions{Epochs: 1})
	require.NoError(t, err)
	prefix := filepath.Join(t.TempDir(), "gpt")
	require.NoError(t, m.SaveCheckpoint(prefix, CheckpointOptions{}))

	ref := restoreInPython(t, kerasGPT+`
keras.backend.clear_session()
m = gpt(8, 16, 2, 2)
o = keras.optimizers.Adam(learning_rate=`+fmt.Sprint(lr)+`)
# Another rate, which the checkpoint's must replace.
o.learning_rate.assign(0.5)
`, prefix)
	checkRestored(t, m, prefix, lr, ref)
	// By name it is read as every other test reads it; a GPT's session
	// takes seconds to make.
	checkGoReads(t, m, prefix, func() *Model { return adamGPT(t, lr) }, (*Model).LoadObjectCheckpoint)
}

// A weights-only checkpoint has the model's object graph and no
// optimizer: Python restores it into an uncompiled twin, and the object
// paths of its variables are those of the twin's own checkpoint.
func TestCheckpointObjectGraphWeightsOnly(t *testing.T) {
	m, data := trainedClassifier(t, 1)
	defer m.Close()
	dir := t.TempDir()
	prefix := filepath.Join(dir, "w")
	require.NoError(t, m.SaveCheckpoint(prefix, CheckpointOptions{WeightsOnly: true}))
	x, err := tfgo.NewTensor(data.X[:4])
	require.NoError(t, err)
	pT, err := tfgo.NewStringTensor(nil, [][]byte{[]byte(prefix)})
	require.NoError(t, err)
	ref := interop.Python(t, `
import keras
keras.backend.clear_session()
m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(4)], name="clf")
tf.train.Checkpoint(model=m).read(inputs["prefix"].item().decode()).assert_consumed()
outputs["y"] = m(inputs["x"])
tf.train.Checkpoint(model=m).write(inputs["prefix"].item().decode() + "-py")
`, map[string]*tfgo.Tensor{"prefix": pT, "x": x})
	y, err := m.Predict(data.X[:4])
	require.NoError(t, err)
	allClose(t, "predictions of the restored twin", ref["y"], y, 0, 0) // one kernel library, the same weights

	assert.Equal(t, objectPathsIn(t, prefix+"-py"), objectPathsIn(t, prefix))
}

// objectPathsIn lists the paths of the object graph at prefix that reach
// a variable.
func objectPathsIn(t *testing.T, prefix string) []string {
	t.Helper()
	r, err := savedmodel.OpenBundle(prefix)
	require.NoError(t, err)
	defer r.Close()
	objects, err := objectVariables(r)
	require.NoError(t, err)
	return slices.Sorted(maps.Keys(objects))
}

// A checkpoint Python's tf.train.Checkpoint(model=m, optimizer=o) wrote
// after training the twin with Adam restores into the Go model, weights
// and optimizer state (iterations, slots), through LoadObjectCheckpoint and
// through LoadCheckpoint, which dispatches on the keys.
func TestLoadObjectCheckpointOptimizerFromPython(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "py")
	pT, err := tfgo.NewStringTensor(nil, [][]byte{[]byte(prefix)})
	require.NoError(t, err)
	ref := interop.Python(t, `
import keras
keras.backend.clear_session()
keras.utils.set_random_seed(2)
m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(4)], name="clf")
o = keras.optimizers.Adam(learning_rate=0.01)
m.compile(optimizer=o, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
rng = np.random.default_rng(2)
m.fit(rng.normal(size=(48, 8)).astype("float32"), rng.integers(0, 4, 48), batch_size=16, epochs=1, verbose=0)
tf.train.Checkpoint(model=m, optimizer=o).write(inputs["prefix"].item().decode())
for i, v in enumerate(m.weights):
    outputs["w%d" % i] = v.numpy()
names = [v.path for v in o.variables if v.path != "adam/learning_rate"]
outputs["names"] = np.array([n.encode() for n in names], dtype=object)
for i, v in enumerate(v for v in o.variables if v.path != "adam/learning_rate"):
    outputs["o%d" % i] = v.numpy()
`, map[string]*tfgo.Tensor{"prefix": pT})
	for _, load := range []func(*Model, string) error{(*Model).LoadObjectCheckpoint, (*Model).LoadCheckpoint} {
		ResetNames()
		m := NewSequential("clf", InputSpec{Shape: []int64{8}}, NewDense(8, DenseOptions{Activation: "relu"}), NewDense(4, DenseOptions{}))
		require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}}),
			Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
		require.NoError(t, load(m, prefix))
		_, weights, names, opt := goCheckpointState(t, m)
		for i := range weights {
			assert.Equal(t, floats(t, ref[fmt.Sprintf("w%d", i)]), floats(t, weights[i]), "weight %d", i)
		}
		pyNames, _ := ref["names"].Strings()
		require.Equal(t, stringsOf(pyNames), names)
		it, _ := tfgo.Int64s(opt[0])
		pyIt, _ := tfgo.Int64s(ref["o0"])
		assert.Equal(t, pyIt, it, "iterations")
		assert.Equal(t, int64(3), it[0], "one epoch of 3 batches")
		for i := 1; i < len(opt); i++ {
			assert.Equal(t, floats(t, ref[fmt.Sprintf("o%d", i)]), floats(t, opt[i]), "slot %s", names[i])
		}
		m.Close()
	}
}

// LoadObjectCheckpoint reads a checkpoint without an object graph (as
// SaveCheckpoint wrote them before) by name, as LoadCheckpoint does.
func TestLoadObjectCheckpointReadsNamedCheckpoints(t *testing.T) {
	m, _ := trainedClassifier(t, 1)
	defer m.Close()
	sess, err := m.session()
	require.NoError(t, err)
	prefix := filepath.Join(t.TempDir(), "named")
	keys, vars := m.checkpointVars(false)
	require.NoError(t, tfgo.SaveVariables(sess, prefix, keys, vars, savedmodel.WriteOptions{}))
	checkGoReads(t, m, prefix, func() *Model {
		ResetNames()
		f := NewSequential("clf", InputSpec{Shape: []int64{8}}, NewDense(8, DenseOptions{Activation: "relu"}), NewDense(4, DenseOptions{}))
		require.NoError(t, f.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
		return f
	})
}

package keraslike

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// epochWeights records the model's weights at every epoch end.
type epochWeights struct {
	NopCallback
	t       *testing.T
	byEpoch [][][]float32
}

func (c *epochWeights) OnEpochEnd(m *Model, _ int, _ Logs) error {
	vals, err := m.GetWeights()
	if err != nil {
		return err
	}
	defer closeTensors(vals)
	var ws [][]float32
	for _, v := range vals {
		ws = append(ws, floats(c.t, v))
	}
	c.byEpoch = append(c.byEpoch, ws)
	return nil
}

// ModelCheckpoint as the article writes it: per-epoch Keras .weights.h5
// files that model.load_weights reads into the model's Keras twin with the
// weights of that epoch, and, in the same Fit, per-epoch legacy .h5 full
// models (MaxToKeep 1) that keras.models.load_model opens.
func TestModelCheckpointKerasWeightsFiles(t *testing.T) {
	dir := t.TempDir()
	weights := &ModelCheckpoint{Path: filepath.Join(dir, "ckpt", "model_shard_{epoch}.weights.h5"), WeightsOnly: true}
	full := &ModelCheckpoint{Path: filepath.Join(dir, "full", "model-{epoch}.h5"), MaxToKeep: 1}
	rec := &epochWeights{t: t}
	m, data := trainedClassifier(t, 2, weights, full, rec)
	defer m.Close()
	require.Equal(t, []string{filepath.Join(dir, "ckpt", "model_shard_1.weights.h5"), filepath.Join(dir, "ckpt", "model_shard_2.weights.h5")}, weights.Saved)
	require.Len(t, rec.byEpoch, 2)
	entries, err := os.ReadDir(filepath.Join(dir, "ckpt"))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"model_shard_1.weights.h5", "model_shard_2.weights.h5"}, names, "Keras files only: no TensorFlow checkpoint, no state file")
	for _, p := range weights.Saved {
		assert.False(t, isZip(t, p))
	}
	_, err = os.Stat(filepath.Join(dir, "full", "model-1.h5"))
	assert.True(t, os.IsNotExist(err), "MaxToKeep 1 removed the first epoch's model")

	x, err := tfgo.NewTensor(data.X[:4])
	require.NoError(t, err)
	ref := interop.Python(t, `
import os, keras
d = inputs["dir"].item().decode()
keras.backend.clear_session()
m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(4)])
for e in (1, 2):
    m.load_weights(os.path.join(d, "ckpt", "model_shard_%d.weights.h5" % e))
    for i, w in enumerate(m.get_weights()):
        outputs["e%d_w%d" % (e, i)] = w
f = keras.models.load_model(os.path.join(d, "full", "model-2.h5"))
outputs["y"] = f.predict(inputs["x"], verbose=0)
`, map[string]*tfgo.Tensor{"dir": strTensor(t, dir), "x": x})
	for e, ws := range rec.byEpoch {
		for i, w := range ws {
			assert.Equal(t, w, floats(t, ref[fmt.Sprintf("e%d_w%d", e+1, i)]), "epoch %d weight %d", e+1, i)
		}
	}
	y := predict(t, m, x)
	samePredictions(t, y, ref["y"], 1e-6, "the last epoch's legacy .h5 in keras.models.load_model")
	back, err := LoadKerasModel(full.Saved[1], LoadOptions{})
	require.NoError(t, err)
	defer back.Close()
	samePredictions(t, y, predict(t, back, x), 0, "the last epoch's legacy .h5 in Go")
}

// ModelCheckpoint refuses the paths Keras' refuses for what is saved, with
// Keras' reason; it differs on purpose where Keras would mislabel a file
// or refuses a name model.save accepts.
func TestModelCheckpointPathRules(t *testing.T) {
	paths := []string{"m_{epoch}.weights.h5", "m_{epoch}.h5", "m_{epoch}.keras", "m_{epoch}.hdf5", "m_{epoch}.weights.json"}
	ref := interop.Python(t, `
import keras
for i, p in enumerate(`+"[\""+strings.Join(paths, "\", \"")+"\"]"+`):
    for w in (True, False):
        try:
            keras.callbacks.ModelCheckpoint(p, save_weights_only=w)
            msg = ""
        except ValueError as e:
            msg = str(e)
        outputs["%d_%s" % (i, w)] = msg.replace("`+"`"+`", "").encode()
`, nil)
	// Keras' ModelCheckpoint would save the whole model (a legacy .h5)
	// under a weights file's name, and refuses the .hdf5 its model.save
	// writes.
	differs := map[string]bool{"m_{epoch}.weights.h5 false": true, "m_{epoch}.hdf5 false": true}
	for i, p := range paths {
		for _, w := range []bool{true, false} {
			b, err := ref[fmt.Sprintf("%d_%s", i, map[bool]string{true: "True", false: "False"}[w])].Strings()
			require.NoError(t, err)
			kerasMsg := string(b[0])
			_, goErr := (&ModelCheckpoint{Path: p, WeightsOnly: w}).kerasFile()
			what := fmt.Sprintf("%s %v", p, w)
			if differs[what] {
				assert.NotEqual(t, kerasMsg != "", goErr != nil, what)
				continue
			}
			assert.Equal(t, kerasMsg != "", goErr != nil, "%s: Keras says %q, Go %v", what, kerasMsg, goErr)
			if goErr != nil {
				assert.Contains(t, goErr.Error(), "Received: path="+p)
			}
			if goErr != nil && w && !strings.HasSuffix(p, ".json") {
				const reason = "must end in .weights.h5 (Keras weights format)"
				assert.Contains(t, kerasMsg, reason)
				assert.Contains(t, goErr.Error(), reason)
			}
		}
	}
	_, err := (&ModelCheckpoint{Path: "m.weights.h5"}).kerasFile()
	assert.ErrorContains(t, err, "set WeightsOnly")

	// In Fit, the refusal stops training at the first save; nothing is written.
	dir := t.TempDir()
	r := rand.New(rand.NewSource(4))
	xs, ys := mlpData(r, 32)
	ResetNames()
	m := NewSequential("bad", InputSpec{Shape: []int64{8}}, NewDense(4, DenseOptions{}))
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
	ck := &ModelCheckpoint{Path: filepath.Join(dir, "model_{epoch}.h5"), WeightsOnly: true}
	_, err = m.Fit(context.Background(), &ArrayDataset[[]float32, int32]{X: xs, Y: ys, BatchSize: 8}, FitOptions{Epochs: 2, Callbacks: []Callback{ck}})
	require.ErrorContains(t, err, "must end in .weights.h5")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

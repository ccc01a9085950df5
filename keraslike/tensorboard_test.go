package keraslike

import (
	"context"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TensorFlow's own reader (summary_iterator) reads the event files the
// TensorBoard callback writes: the scalars, their steps and the graph.
func TestTensorBoardEventsReadByTensorFlow(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	x, y := mlpData(r, 64)
	ResetNames()
	m := NewSequential("tb", InputSpec{Shape: []int64{8}}, NewDense(4, DenseOptions{}))
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{}), Loss: SparseCategoricalCrossentropy{FromLogits: true}, Metrics: []string{"accuracy"}}))
	dir := t.TempDir()
	tb := &TensorBoard{LogDir: dir, UpdateFreq: 2}
	data := &ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: 16}
	hist, err := m.Fit(context.Background(), data, FitOptions{Epochs: 3, Validation: data, Callbacks: []Callback{tb}})
	require.NoError(t, err)
	require.NoError(t, tb.Err)
	files, _ := filepath.Glob(filepath.Join(dir, "train", "events.out.tfevents.*"))
	require.Len(t, files, 1)
	vfiles, _ := filepath.Glob(filepath.Join(dir, "validation", "events.out.tfevents.*"))
	require.Len(t, vfiles, 1)
	path, err := tfgo.NewStringTensor(nil, [][]byte{[]byte(files[0])})
	require.NoError(t, err)
	vpath, err := tfgo.NewStringTensor(nil, [][]byte{[]byte(vfiles[0])})
	require.NoError(t, err)
	ref := interop.Python(t, `
from tensorflow.core.framework import graph_pb2
def read(p):
    tags, steps, vals, graphs, version = [], [], [], 0, b""
    for e in tf.compat.v1.train.summary_iterator(p.item().decode()):
        if e.file_version:
            version = e.file_version.encode()
        if e.graph_def:
            g = graph_pb2.GraphDef(); g.ParseFromString(e.graph_def); graphs += len(g.node)
        for v in e.summary.value:
            tags.append(v.tag.encode()); steps.append(e.step); vals.append(v.simple_value)
    return tags, steps, vals, graphs, version
tags, steps, vals, nodes, version = read(inputs["path"])
outputs["tags"] = np.array(tags, dtype=object)
outputs["steps"] = np.array(steps, np.int64)
outputs["vals"] = np.array(vals, np.float64)
outputs["nodes"] = np.int64(nodes)
outputs["version"] = version
vt, vs, vv, _, _ = read(inputs["vpath"])
outputs["vtags"] = np.array(vt, dtype=object)
outputs["vvals"] = np.array(vv, np.float64)
outputs["vsteps"] = np.array(vs, np.int64)
`, map[string]*tfgo.Tensor{"path": path, "vpath": vpath})
	tags, err := ref["tags"].Strings()
	require.NoError(t, err)
	vals := floats64(t, ref["vals"])
	version, err := ref["version"].Strings()
	require.NoError(t, err)
	assert.Equal(t, "brain.Event:2", string(version[0]))
	g, err := m.Scope().Graph().GraphDef()
	require.NoError(t, err)
	nodes := floats64(t, ref["nodes"])
	assert.Greater(t, nodes[0], 10.0)
	assert.LessOrEqual(t, nodes[0], float64(len(g.Node)))
	var epochLoss []float64
	batchTags := 0
	for i, tag := range tags {
		switch string(tag) {
		case "epoch_loss":
			epochLoss = append(epochLoss, vals[i])
		case "batch_loss":
			batchTags++
		}
	}
	require.Len(t, epochLoss, 3)
	for e := range epochLoss {
		// simple_value is a float32: the logged value rounded once.
		assert.Equal(t, float64(float32(hist.Epochs[e]["loss"])), epochLoss[e], "epoch_loss of epoch %d", e+1)
	}
	assert.Equal(t, 6, batchTags, "12 batches, every 2nd logged")

	// The validation writer logs val_loss and val_accuracy of every epoch,
	// under Keras' tags, at the epoch's step, with History's values.
	vtags, err := ref["vtags"].Strings()
	require.NoError(t, err)
	vvals, vsteps := floats64(t, ref["vvals"]), floats64(t, ref["vsteps"])
	var wantTags []string
	var wantVals, wantSteps []float64
	for e, logs := range hist.Epochs {
		for _, k := range []string{"loss", "accuracy"} {
			wantTags = append(wantTags, "epoch_"+k)
			wantVals = append(wantVals, float64(float32(logs["val_"+k])))
			wantSteps = append(wantSteps, float64(e))
		}
	}
	assert.ElementsMatch(t, wantTags, stringsOf(vtags))
	require.Len(t, vvals, len(wantVals))
	type point struct {
		tag  string
		step float64
	}
	got := map[point]float64{}
	for i, tag := range vtags {
		got[point{string(tag), vsteps[i]}] = vvals[i]
	}
	for i := range wantTags {
		v, ok := got[point{wantTags[i], wantSteps[i]}]
		if assert.True(t, ok, "%s at step %v not logged", wantTags[i], wantSteps[i]) {
			assert.Equal(t, wantVals[i], v, "%s at step %v", wantTags[i], wantSteps[i])
		}
	}
}

func floats64(t *testing.T, tn *tfgo.Tensor) []float64 {
	switch tn.DataType() {
	case tfgo.Double:
		v, err := tfgo.Float64s(tn)
		require.NoError(t, err)
		return v
	case tfgo.Int64:
		v, err := tfgo.Int64s(tn)
		require.NoError(t, err)
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	t.Fatalf("unexpected dtype %s", tn.DataType())
	return nil
}

func stringsOf(b [][]byte) []string {
	out := make([]string, len(b))
	for i, x := range b {
		out[i] = string(x)
	}
	return out
}

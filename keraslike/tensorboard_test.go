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
`, map[string]*tfgo.Tensor{"path": path, "vpath": vpath})
	tags, _ := ref["tags"].Strings()
	vals := floats64(t, ref["vals"])
	version, _ := ref["version"].Strings()
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
		assert.InDelta(t, hist.Epochs[e]["loss"], epochLoss[e], 1e-6)
	}
	assert.Equal(t, 6, batchTags, "12 batches, every 2nd logged")
	vtags, _ := ref["vtags"].Strings()
	assert.Contains(t, stringsOf(vtags), "epoch_accuracy")
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

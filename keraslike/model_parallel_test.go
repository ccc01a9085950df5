package keraslike

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twoCPUs gives a session /device:CPU:0 and /device:CPU:1.
var twoCPUs = tfgo.SessionOptions{DeviceCount: map[string]int32{"CPU": 2}}

// parallelGPT is a compiled GPT (Adam, so that slot variables are placed
// too) on a session with two CPUs, and a batch for its train step.
func parallelGPT(t *testing.T, c GPTConfig, batch int) (*Model, map[tfgo.Output]any) {
	t.Helper()
	return compiledGPT(t, c, batch, NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}}), twoCPUs)
}

// steps runs n train steps and returns their losses.
func steps(t *testing.T, m *Model, feeds map[tfgo.Output]any, n int) []float32 {
	t.Helper()
	sess, err := m.Session()
	require.NoError(t, err)
	var losses []float32
	for range n {
		out, err := sess.Run(feeds, []tfgo.Output{m.train.loss}, m.train.step)
		require.NoError(t, err)
		losses = append(losses, floats(t, out[0])...)
	}
	return losses
}

// A GPT whose blocks are split over two devices trains as the same GPT on
// one: the same losses and weights after a few Adam steps from the same
// weights, and each part's weights, forward and backward ops ran on its
// device.
func TestModelParallelGPTTrainsLikePlain(t *testing.T) {
	c := GPTConfig{Vocab: 32, SeqLen: 8, DModel: 16, Heads: 2, Layers: 4}
	plain, feeds := parallelGPT(t, c, 4)
	init, err := plain.GetWeights()
	require.NoError(t, err)
	want := steps(t, plain, feeds, 4)
	wantW, err := plain.GetWeights()
	require.NoError(t, err)

	c.Devices = []string{"/device:CPU:0", "/device:CPU:1"}
	split, feeds := parallelGPT(t, c, 4)
	require.NoError(t, split.SetWeights(init))
	got := steps(t, split, feeds, 3)
	testutil.AllCloseShapeTol(t, "losses", []int64{3}, want[:3], []int64{3}, got, testutil.Tol{Atol: 1e-5, Rtol: 1e-5})

	// The fourth step traced: where every op of each part ran.
	sess, err := split.Session()
	require.NoError(t, err)
	out, tr, err := sess.RunTraced(feeds, []tfgo.Output{split.train.loss}, split.train.step)
	require.NoError(t, err)
	got = append(got, floats(t, out[0])...)
	testutil.AllCloseShapeTol(t, "losses", []int64{4}, want, []int64{4}, got, testutil.Tol{Atol: 1e-5, Rtol: 1e-5})
	gotW, err := split.GetWeights()
	require.NoError(t, err)
	worst := 0.0
	for i := range want {
		worst = max(worst, math.Abs(float64(want[i]-got[i])))
	}
	for i, w := range split.Weights() {
		a, b := floats(t, wantW[i]), floats(t, gotW[i])
		for j := range a {
			if j < len(b) {
				worst = max(worst, math.Abs(float64(a[j]-b[j])))
			}
		}
		testutil.AllCloseShapeTol(t, w.Path, wantW[i].Shape(), floats(t, wantW[i]), gotW[i].Shape(), floats(t, gotW[i]), testutil.Tol{Atol: 1e-5, Rtol: 1e-5})
	}

	// The part each layer belongs to, by the path element naming it in its
	// ops' names (forward "train/gpt/block_2/...", backward
	// "train/gradients/train/gpt/block_2/..._grad/...", weights
	// "block_2/...").
	part := map[string]string{"token_embedding": "CPU:0", "position_embedding": "CPU:0",
		"block_0": "CPU:0", "block_1": "CPU:0", "block_2": "CPU:1", "block_3": "CPU:1", "lm_head": "CPU:1"}
	for _, w := range split.Weights() {
		layer := strings.Split(w.Path, "/")[0]
		assert.Equal(t, "/device:"+part[layer], w.Handle().Op.Device(), "weight %s", w.Path)
	}
	ran := map[string]int{}
	gradRan := map[string]int{}
	for _, ds := range tr.Metadata.GetStepStats().GetDevStats() {
		dev := ds.GetDevice()
		for _, n := range ds.GetNodeStats() {
			name := n.GetNodeName()
			if strings.HasPrefix(name, "_SOURCE") || strings.HasPrefix(name, "_SINK") {
				continue
			}
			for _, e := range strings.Split(name, "/") {
				want, ok := part[e]
				if !ok {
					continue
				}
				// A _Send/_Recv pair moves a tensor between the parts: the
				// receiving end runs on the consumer's device.
				if !strings.Contains(n.GetTimelineLabel(), "_Recv") && !strings.Contains(n.GetTimelineLabel(), "_Send") {
					assert.True(t, strings.HasSuffix(dev, "device:"+want), "%s (%s) ran on %s, want %s", name, n.GetTimelineLabel(), dev, want)
				}
				ran[e]++
				if strings.Contains(name, "gradients/") {
					gradRan[e]++
				}
				break
			}
		}
	}
	for layer := range part {
		assert.Positive(t, ran[layer], "no op of %s ran", layer)
		assert.Positive(t, gradRan[layer], "no gradient op of %s ran", layer)
	}
	t.Logf("largest difference to the plain model over 4 steps (losses, weights): %g", worst)
	t.Logf("ops run per part: %v; of them gradient ops: %v", ran, gradRan)
}

// Blocks split in order, the earlier devices taking one more when they
// do not divide evenly; the embeddings with the first block, the head with
// the last.
func TestGPTDevicesSplit(t *testing.T) {
	ResetNames()
	devs := []string{"/device:CPU:0", "/device:CPU:1", "/device:CPU:2"}
	m, err := NewGPT("gpt", GPTConfig{Vocab: 16, SeqLen: 4, DModel: 8, Heads: 2, Layers: 5, Devices: devs})
	require.NoError(t, err)
	byName := map[string]string{}
	for _, l := range m.Layers() {
		byName[l.Name()] = deviceOf(l)
	}
	assert.Equal(t, map[string]string{"token_embedding": devs[0], "position_embedding": devs[0],
		"block_0": devs[0], "block_1": devs[0], "block_2": devs[1], "block_3": devs[1], "block_4": devs[2],
		"lm_head": devs[2]}, withoutInput(byName))

	_, err = NewGPT("gpt", GPTConfig{Vocab: 16, SeqLen: 4, DModel: 8, Heads: 2, Layers: 2, Devices: devs})
	assert.ErrorContains(t, err, "3 devices for 2 blocks")
	_, err = NewGPT("gpt", GPTConfig{Vocab: 16, SeqLen: 4, DModel: 8, Heads: 2, Layers: 2, Devices: []string{"/device:CPU:0", ""}})
	assert.ErrorContains(t, err, "Devices[1] is empty")
}

// withoutInput drops a functional model's input layers from byName.
func withoutInput(byName map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range byName {
		if !strings.HasPrefix(k, "input") {
			out[k] = v
		}
	}
	return out
}

// A layer on a device the session does not have is refused before
// anything runs, naming the layer and the device; so is a name that is no
// device name.
func TestModelParallelMissingDevice(t *testing.T) {
	for _, dev := range []string{"/device:CPU:2", "/device:GPU:0", "/job:worker/device:CPU:1", "cpu:one"} {
		ResetNames()
		m, err := NewGPT("gpt", GPTConfig{Vocab: 16, SeqLen: 4, DModel: 8, Heads: 2, Layers: 2, Devices: []string{"/device:CPU:0", dev}})
		require.NoError(t, err)
		m.SetSessionOptions(twoCPUs)
		_, err = m.Predict([][]int32{{1, 2, 3, 4}})
		require.Error(t, err, dev)
		assert.Contains(t, err.Error(), `layer "block_1"`)
		assert.Contains(t, err.Error(), fmt.Sprintf("%q", dev))
		t.Logf("%s: %v", dev, err)
		m.Close()
	}
	// A sublayer's own device is checked too, by its path.
	ResetNames()
	m, err := NewGPT("gpt", GPTConfig{Vocab: 16, SeqLen: 4, DModel: 8, Heads: 2, Layers: 1})
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Build())
	m.Layers()[2].(*TransformerBlock).mha.SetDevice("/device:CPU:7")
	_, err = m.Predict([][]int32{{1, 2, 3, 4}})
	assert.ErrorContains(t, err, `layer "block_0/multi_head_attention" is placed on device "/device:CPU:7"`)
}

// Names of devices as TensorFlow takes them, and what they match.
func TestParseDevice(t *testing.T) {
	full, err := parseDevice("/job:localhost/replica:0/task:0/device:CPU:1")
	require.NoError(t, err)
	for spec, ok := range map[string]bool{
		"/device:CPU:1": true, "/cpu:1": true, "/CPU:1": true, "device:CPU:1": true, "/device:CPU:*": true,
		"/job:localhost/device:CPU:1": true, "/task:0/device:CPU:1": true, "/device:CPU": true,
		"/device:CPU:0": false, "/device:GPU:1": false, "/job:worker/device:CPU:1": false, "/task:1/cpu:1": false,
	} {
		d, err := parseDevice(spec)
		require.NoError(t, err, spec)
		assert.Equal(t, ok, d.matches(full), spec)
	}
	for _, bad := range []string{"", "cpu", "/device:", "/device:CPU:x", "/task:a", "CPU:-1", "/foo:bar:baz"} {
		_, err := parseDevice(bad)
		assert.ErrorContains(t, err, "is not a TensorFlow device name", bad)
	}
}

// A sublayer follows its parent's device unless it has its own.
func TestSublayerDevice(t *testing.T) {
	ResetNames()
	b := NewTransformerBlock(8, 2, 16, TransformerBlockOptions{Name: "block"})
	b.SetDevice("/device:CPU:1")
	m := NewSequential("seq", InputSpec{Shape: []int64{4, 8}}, b)
	defer m.Close()
	m.SetSessionOptions(twoCPUs)
	require.NoError(t, m.Build())
	b.mha.SetDevice("/device:CPU:0") // for the graphs built from now on: the training graph
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{}), Loss: MeanSquaredError{}}))
	checked := 0
	for _, op := range m.Scope().Graph().Operations() {
		name := op.Name()
		if !strings.HasPrefix(name, "train/seq/block/") {
			continue
		}
		want := "/device:CPU:1"
		if strings.HasPrefix(name, "train/seq/block/multi_head_attention/") {
			want = "/device:CPU:0"
		}
		assert.Equal(t, want, op.Device(), name)
		checked++
	}
	assert.Greater(t, checked, 50)
	for _, w := range m.Weights() {
		assert.Equal(t, "/device:CPU:1", w.Handle().Op.Device(), w.Path) // made when the block was built
	}
	_, err := m.Predict(make([][][]float32, 1))
	require.Error(t, err) // wrong shape, but the devices passed the check
	assert.NotContains(t, err.Error(), "device")
}

// The summary has a Device column when the model is placed, and only then.
func TestSummaryDevices(t *testing.T) {
	ResetNames()
	plain, err := NewGPT("gpt", GPTConfig{Vocab: 16, SeqLen: 4, DModel: 8, Heads: 2, Layers: 2})
	require.NoError(t, err)
	defer plain.Close()
	assert.NotContains(t, plain.Summary(), "Device")

	ResetNames()
	m, err := NewGPT("gpt", GPTConfig{Vocab: 16, SeqLen: 4, DModel: 8, Heads: 2, Layers: 2, Devices: []string{"/device:CPU:0", "/device:CPU:1"}})
	require.NoError(t, err)
	defer m.Close()
	s := m.Summary()
	t.Log("\n" + s)
	lines := strings.Split(s, "\n")
	assert.Contains(t, lines[2], "Device")
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "token_embedding"), strings.HasPrefix(l, "block_0"):
			assert.True(t, strings.HasSuffix(l, "/device:CPU:0"), l)
		case strings.HasPrefix(l, "block_1"), strings.HasPrefix(l, "lm_head"):
			assert.True(t, strings.HasSuffix(l, "/device:CPU:1"), l)
		}
	}
	// The rest of each row is the plain summary's.
	for i, l := range strings.Split(plain.Summary(), "\n") {
		if strings.Contains(l, "(") && !strings.HasPrefix(l, " ") {
			assert.True(t, strings.HasPrefix(lines[i], l), "%q vs %q", lines[i], l)
		}
	}
}

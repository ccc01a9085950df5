package keraslike

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rematGPT is a compiled GPT with dropout, remat on or off, and a batch of
// ids and next-token targets for it.
func rematGPT(t *testing.T, c GPTConfig, batch int) (*Model, map[tfgo.Output]any) {
	t.Helper()
	return compiledGPT(t, c, batch, NewSGD(SGDOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.1}}), tfgo.SessionOptions{})
}

// compiledGPT is NewGPT(c) compiled with opt (fixed batch, sparse
// cross-entropy from logits) on a session with opts, and the feeds of one
// seeded batch of ids and next-token targets for its train step.
func compiledGPT(t *testing.T, c GPTConfig, batch int, opt Optimizer, opts tfgo.SessionOptions) (*Model, map[tfgo.Output]any) {
	t.Helper()
	ResetNames()
	m, err := NewGPT("gpt", c)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	m.SetSessionOptions(opts)
	require.NoError(t, m.Compile(CompileOptions{Optimizer: opt, Loss: SparseCategoricalCrossentropy{FromLogits: true}, BatchSize: batch}))
	r := rand.New(rand.NewSource(8))
	ids := make([][]int32, batch)
	next := make([][]int32, batch)
	for i := range ids {
		ids[i] = make([]int32, c.SeqLen)
		next[i] = make([]int32, c.SeqLen)
		for j := range ids[i] {
			ids[i][j] = r.Int31n(int32(c.Vocab))
			next[i][j] = r.Int31n(int32(c.Vocab))
		}
	}
	return m, map[tfgo.Output]any{m.train.x: ids, m.train.yTrue: next}
}

// gradients evaluates the gradients of the training loss with respect to
// the trainable weights, in one run (the dropout masks of that run).
func gptGradients(t *testing.T, m *Model, feeds map[tfgo.Output]any) []*tfgo.Tensor {
	t.Helper()
	ws := m.TrainableWeights()
	hs := make([]tfgo.Output, len(ws))
	for i, w := range ws {
		hs[i] = w.Handle()
	}
	g := tfgo.Gradients(m.Scope().SubScope("test_gradients"), []tfgo.Output{m.train.loss}, hs, nil)
	require.NoError(t, m.Scope().Err())
	sess, err := m.Session()
	require.NoError(t, err)
	out, err := sess.Run(feeds, g)
	require.NoError(t, err)
	return out
}

// Recomputing every block gives the gradients of keeping the activations
// (with dropout on: the recomputation draws the same masks), and the
// backward pass reads no activation of a block but its input.
func TestRematGradientsEqual(t *testing.T) {
	c := GPTConfig{Vocab: 64, SeqLen: 16, DModel: 32, Heads: 4, Layers: 3, Dropout: 0.2}
	plain, feeds := rematGPT(t, c, 4)
	want := gptGradients(t, plain, feeds)
	c.Remat = true
	re, feeds := rematGPT(t, c, 4)
	got := gptGradients(t, re, feeds)
	require.Len(t, got, len(want))
	// The recomputation runs the blocks' ops unfused where Grappler fused
	// the forward pass (MatMul+BiasAdd+activation), which rounds differently
	// in the last bits: within 1e-6 of the model's largest gradient element
	// (the key biases' gradients are zero in exact arithmetic, ~1e-10 here:
	// only such a model-wide scale compares them).
	largest := 0.0
	for _, g := range want {
		for _, v := range floats(t, g) {
			largest = math.Max(largest, math.Abs(float64(v)))
		}
	}
	for i, w := range re.TrainableWeights() {
		testutil.AllCloseShapeTol(t, "gradient of "+w.Path, want[i].Shape(), floats(t, want[i]), got[i].Shape(), floats(t, got[i]), testutil.Tol{Atol: 1e-6 * largest})
	}

	// From the graph: the blocks' ops are in recomputation segments, and
	// no op of the backward pass reads a block's activation but the
	// segments' outputs (the next block's input, kept anyway) — it reads
	// their recomputed clones. An activation is an op computed from the
	// block's input (tfgo's rule: a data input, not a resource, from outside
	// the segment or from an activation; stateful ops excluded), unlike the
	// weights' reads and casts, seeds and masks made of constants.
	s := re.Scope()
	act := map[*tfgo.Operation]bool{}
	var isAct func(op *tfgo.Operation) bool
	isAct = func(op *tfgo.Operation) bool {
		if v, ok := act[op]; ok {
			return v
		}
		act[op] = false
		seg := s.RecomputeSegment(op)
		switch op.Type() {
		case "ReadVariableOp", "AssignAddVariableOp", "VarHandleOp", "StatelessRandomGetKeyCounter":
			return false // stateful, or keyed by the seed
		}
		for i, in := range op.Inputs() {
			if op.Input(i).DataType() == tfgo.Resource {
				continue
			}
			if s.RecomputeSegment(in.Op) != seg || isAct(in.Op) {
				act[op] = true
			}
		}
		return act[op]
	}
	segOps, checked := 0, 0
	for _, op := range s.Graph().Operations() {
		seg := s.RecomputeSegment(op)
		if seg == 0 || isGradientOp(op) {
			continue
		}
		segOps++
		if !isAct(op) {
			continue
		}
		for i := 0; i < op.NumOutputs(); i++ {
			leaves := false
			for _, c := range op.Consumers(i) {
				leaves = leaves || s.RecomputeSegment(c.Op) != seg && !isGradientOp(c.Op)
			}
			if leaves {
				continue // a block's output
			}
			for _, c := range op.Consumers(i) {
				checked++
				if isGradientOp(c.Op) {
					t.Errorf("backward op %s reads the activation %s", c.Op.Name(), op.Name())
				}
			}
		}
	}
	assert.Greater(t, segOps, 100, "the blocks' ops are in recomputation segments")
	assert.Greater(t, checked, 100, "activations checked")
}

// isGradientOp tells the ops Gradients added (under a "gradients" scope).
func isGradientOp(op *tfgo.Operation) bool {
	return containsPathElem(op.Name(), "gradients")
}

func containsPathElem(name, elem string) bool {
	for _, e := range strings.Split(name, "/") {
		if e == elem || strings.HasPrefix(e, elem+"_") {
			return true
		}
	}
	return false
}

// A training step of a GPT with every block recomputed peaks lower in
// TensorFlow's allocator than without (the activations of the blocks are
// not kept until the backward pass).
func TestRematLowersStepPeak(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a GPT twice")
	}
	c := GPTConfig{Vocab: 128, SeqLen: 64, DModel: 64, Heads: 4, Layers: 6}
	peak := func(remat bool) int64 {
		c.Remat = remat
		m, feeds := rematGPT(t, c, 8)
		sess, err := m.Session()
		require.NoError(t, err)
		_, mem, err := sess.RunWithMemory(feeds, nil, m.train.step)
		require.NoError(t, err)
		return mem.PeakBytes
	}
	without, with := peak(false), peak(true)
	t.Logf("train step peak: %d bytes kept, %d recomputed (%.0f%% lower)", without, with, 100*(1-float64(with)/float64(without)))
	assert.Less(t, float64(with), 0.8*float64(without))
}

// RematScope's modes choose the layers as Keras' do: every layer made in
// the scope (full), the named ones (list_of_layers, also inside a
// composite), those with large outputs (larger_than); Dense's activation
// alone (activations). An unknown mode is refused.
func TestRematScopeModes(t *testing.T) {
	inSegment := func(m *Model, layer string) bool {
		s := m.Scope()
		for _, op := range s.Graph().Operations() {
			if containsPathElem(op.Name(), "train") && containsPathElem(op.Name(), layer) && s.RecomputeSegment(op) != 0 {
				return true
			}
		}
		return false
	}
	build := func(r RematScope) *Model {
		ResetNames()
		var m *Model
		require.NoError(t, WithRematScope(r, func() {
			m = NewSequential("seq", InputSpec{Shape: []int64{4, 8}},
				NewDense(64, DenseOptions{Name: "wide", Activation: "relu"}),
				NewTransformerBlock(64, 2, 16, TransformerBlockOptions{Name: "block"}),
				NewDense(2, DenseOptions{Name: "narrow"}))
		}))
		t.Cleanup(func() { m.Close() })
		require.NoError(t, m.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{}), Loss: MeanSquaredError{}}))
		return m
	}
	m := build(RematScope{Mode: RematFull})
	assert.True(t, inSegment(m, "wide") && inSegment(m, "block") && inSegment(m, "narrow"))
	m = build(RematScope{Mode: RematListOfLayers, LayerNames: []string{"narrow", "dense_1"}})
	assert.False(t, inSegment(m, "wide"))
	assert.True(t, inSegment(m, "narrow"))
	assert.True(t, inSegment(m, "dense_1"), "the block's sublayer dense_1")
	assert.False(t, inSegment(m, "multi_head_attention"))
	// Per example: wide and block output 4x64 = 256 elements, narrow 8.
	m = build(RematScope{Mode: RematLargerThan, OutputSizeThreshold: 100})
	assert.True(t, inSegment(m, "wide") && inSegment(m, "block"))
	assert.False(t, inSegment(m, "narrow"))
	m = build(RematScope{Mode: RematActivations})
	assert.True(t, inSegment(m, "wide"), "the relu of wide")
	assert.False(t, inSegment(m, "narrow"), "linear: nothing to recompute but the identity")

	assert.ErrorContains(t, WithRematScope(RematScope{Mode: "sometimes"}, func() { t.Error("build ran") }), `invalid remat mode "sometimes"`)
	d := NewDense(2, DenseOptions{Name: "d"})
	d.SetRemat(&RematScope{Mode: "x"})
	m = NewSequential("bad", InputSpec{Shape: []int64{3}}, d)
	defer m.Close()
	assert.ErrorContains(t, m.Compile(CompileOptions{Optimizer: NewSGD(SGDOptions{}), Loss: MeanSquaredError{}}), `layer "d" (Dense): keraslike: invalid remat mode "x"`)
	assert.ErrorContains(t, m.SetRemat(&RematScope{Mode: "y"}), `invalid remat mode "y"`)
	// Outside the scope, layers are made without remat.
	assert.Nil(t, NewDense(2, DenseOptions{}).Remat())
}

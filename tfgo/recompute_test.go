package tfgo

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// randMatrix is a rows x cols matrix of normal values scaled by scale.
func randMatrix(r *rand.Rand, rows, cols int, scale float64) [][]float32 {
	m := make([][]float32, rows)
	for i := range m {
		m[i] = make([]float32, cols)
		for j := range m[i] {
			m[i][j] = float32(r.NormFloat64() * scale)
		}
	}
	return m
}

// recomputeModel is a small network with variables: a dense layer, an
// attention-like block with a Keras-style dropout and a cast weight, and an
// MLP, each in its own segment when recompute is set.
type recomputeModel struct {
	s       *Scope
	loss    Output
	vars    []*Variable
	grads   []Output
	forward map[*Operation]bool // the ops before Gradients
}

func buildRecomputeModel(t *testing.T, recompute bool) *recomputeModel {
	t.Helper()
	const batch, dim = 6, 8
	r := rand.New(rand.NewSource(1))
	s := NewScope()
	seg := func(name string) *Scope {
		c := s.SubScope(name)
		if recompute {
			c = c.WithRecompute()
		}
		return c
	}
	m := &recomputeModel{s: s}
	newVar := func(name string, rows, cols int) *Variable {
		v := NewVariable(s, name, Float, []int64{int64(rows), int64(cols)}, InitialValue(randMatrix(r, rows, cols, 0.5)))
		m.vars = append(m.vars, v)
		return v
	}
	w1, b1 := newVar("w1", dim, dim), newVar("b1", 1, dim)
	wq, wk, wv := newVar("wq", dim, dim), newVar("wk", dim, dim), newVar("wv", dim, dim)
	w2, w3 := newVar("w2", dim, 2*dim), newVar("w3", 2*dim, dim)
	seedState := NewVariable(s, "seed_generator_state", Int64, []int64{2}, InitialValue([]int64{1337, 0}), Trainable(false))
	x := Const(s.SubScope("x"), randMatrix(r, batch, dim, 1))

	// Dense: reads of the variables happen outside the segment here, so
	// the segment's ops all depend on its input x.
	d := seg("dense")
	h := Tanh(d, AddV2(d, MatMul(d, x, w1.Value()), b1.Value()))

	// Attention-like: the reads are inside the segment (kept, not
	// recomputed), the dropout draws its mask as keraslike.Dropout does.
	a := seg("attention")
	q := MatMul(a, h, wq.Read(a))
	k := MatMul(a, h, wk.Read(a))
	v := MatMul(a, h, wv.Read(a))
	scores := Softmax(a, Mul(a, MatMul(a, q, k, MatMulTransposeB(true)), Const(a, float32(1/math.Sqrt(dim)))))
	att := MatMul(a, scores, v)
	seed := seedState.Read(a)
	update := seedState.AssignAdd(a.WithControlDependencies(seed.Op), Const(a, []int64{0, 1}))
	seed32 := Cast(a, FloorMod(a, seed, Const(a, int64(math.MaxInt32-1))), Int32)
	key, counter := StatelessRandomGetKeyCounter(a, seed32)
	draw := StatelessRandomUniformV2(a, ShapeOf(a, att), key, counter, Const(a, int32(3)), StatelessRandomUniformV2Dtype(Float))
	keep := GreaterEqual(a, draw, Const(a, float32(0.3)))
	dropped := SelectV2(a, keep, Mul(a, att, Const(a, float32(1/0.7))), Const(a, float32(0)))
	h2 := AddV2(a, h, Identity(a.WithControlDependencies(update), dropped))

	// MLP: a weight cast inside the segment (kept: it depends only on a read).
	f := seg("mlp")
	w2c := Cast(f, Cast(f, w2.Read(f), Double), Float)
	out := MatMul(f, Relu(f, MatMul(f, h2, w2c)), w3.Value())
	m.loss = Mean(s, Square(s, AddV2(s, out, h2)), Const(s, []int32{0, 1}))

	m.forward = map[*Operation]bool{}
	for _, op := range s.Graph().Operations() {
		m.forward[op] = true
	}
	handles := make([]Output, len(m.vars))
	for i, v := range m.vars {
		handles[i] = v.Handle()
	}
	m.grads = Gradients(s, []Output{m.loss}, handles, nil)
	require.NoError(t, s.Err())
	return m
}

// run initializes the variables and returns the loss and the gradients of
// one session run.
func (m *recomputeModel) run(t *testing.T, opts SessionOptions) [][]float32 {
	t.Helper()
	sess, err := NewSession(m.s, opts)
	require.NoError(t, err)
	defer sess.Close()
	_, err = sess.Run(nil, nil, GlobalVariablesInitializer(m.s))
	require.NoError(t, err)
	outs, err := sess.Run(nil, append([]Output{m.loss}, m.grads...))
	require.NoError(t, err)
	vals := make([][]float32, len(outs))
	for i, o := range outs {
		vals[i], err = Float32s(o)
		require.NoError(t, err)
		o.Close()
	}
	return vals
}

// recomputedOps are the ops of the graph's segments that Gradients
// recomputes.
func recomputedOps(t *testing.T, s *Scope) map[*Operation]bool {
	t.Helper()
	b := &backprop{stateful: map[string]bool{}}
	segs := map[*recomputeSegment]bool{}
	for _, op := range s.Graph().Operations() {
		if seg := s.segmentOf(op); seg != nil {
			segs[seg] = true
		}
	}
	all := map[*Operation]bool{}
	for seg := range segs {
		re, err := recomputable(s.segmentOps(seg), b.isStateful)
		require.NoError(t, err)
		for op := range re {
			all[op] = true
		}
	}
	return all
}

// compareGrads checks that the loss and the gradients agree to tol, and
// that none is all zeros (which would hide a wrong dropout mask).
func compareGrads(t *testing.T, want, got [][]float32, tol float64) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Len(t, got[i], len(want[i]))
		nonzero := false
		for j := range want[i] {
			require.InDelta(t, want[i][j], got[i][j], tol, "output %d element %d", i, j)
			nonzero = nonzero || want[i][j] != 0
		}
		require.True(t, nonzero, "output %d is all zeros", i)
	}
}

func TestRecomputeGradientsEqual(t *testing.T) {
	// By default Grappler fuses the dense layer's forward MatMul+Add+Tanh
	// into one kernel, but not its recomputation (whose MatMul carries the
	// control dependency on the gradient), and the fused kernel rounds
	// differently: the gradients then differ by a few ulps (up to 1.5e-6
	// seen). With remapping off both graphs run the same kernels.
	noFusion := SessionOptions{Config: &cpb.ConfigProto{GraphOptions: &cpb.GraphOptions{
		RewriteOptions: &cpb.RewriterConfig{Remapping: cpb.RewriterConfig_OFF}}}}
	compareGrads(t, buildRecomputeModel(t, false).run(t, noFusion), buildRecomputeModel(t, true).run(t, noFusion), 1e-6)
	compareGrads(t, buildRecomputeModel(t, false).run(t, SessionOptions{}), buildRecomputeModel(t, true).run(t, SessionOptions{}), 1e-5)
}

func TestRecomputeSegmentsAndRule(t *testing.T) {
	m := buildRecomputeModel(t, true)
	s, g := m.s, m.s.Graph()
	op := func(name string) *Operation {
		o := g.Operation(name)
		require.NotNil(t, o, name)
		return o
	}
	require.Equal(t, 1, s.RecomputeSegment(op("dense/MatMul")))
	require.Equal(t, 2, s.RecomputeSegment(op("attention/MatMul")))
	require.Equal(t, 3, s.RecomputeSegment(op("mlp/MatMul")))
	require.Equal(t, 0, s.RecomputeSegment(op("Mean")))
	require.Equal(t, 0, s.SubScope("other").RecomputeSegment(op("w1")), "a variable handle made outside segments")
	// A WithRecompute inside a segment keeps the outer segment, and
	// derived scopes stay in their segment.
	inner := s.SubScope("nest").WithRecompute()
	o1 := Identity(inner.WithRecompute().SubScope("a"), m.loss).Op
	o2 := Identity(inner.WithControlDependencies(o1), m.loss).Op
	require.Equal(t, 4, s.RecomputeSegment(o1))
	require.Equal(t, 4, s.RecomputeSegment(o2))
	require.Equal(t, 0, (*Scope)(nil).RecomputeSegment(o1))
	require.Nil(t, (*Scope)(nil).WithRecompute())
	require.Equal(t, 0, (&Scope{}).RecomputeSegment(o1))

	re := recomputedOps(t, s)
	var kept, recomputed []string
	for o := range m.forward {
		if s.RecomputeSegment(o) == 0 {
			continue
		}
		if re[o] {
			recomputed = append(recomputed, o.Name())
		} else {
			kept = append(kept, o.Name())
		}
	}
	sort.Strings(kept)
	sort.Strings(recomputed)
	t.Logf("kept: %v", kept)
	t.Logf("recomputed: %v", recomputed)
	for _, name := range []string{"attention/ReadVariableOp", "attention/AssignAddVariableOp", "attention/FloorMod",
		"attention/Cast", "attention/StatelessRandomGetKeyCounter", "attention/Const", "mlp/Cast", "mlp/Cast_1", "mlp/ReadVariableOp"} {
		require.Contains(t, kept, name)
	}
	for _, name := range []string{"dense/MatMul", "dense/Tanh", "attention/MatMul", "attention/Softmax", "attention/Shape",
		"attention/StatelessRandomUniformV2", "attention/SelectV2", "attention/Identity", "mlp/Relu", "mlp/MatMul_1"} {
		require.Contains(t, recomputed, name)
	}

	// The backward pass reads no activation of the forward pass that the
	// recomputation replaces, except the segments' outputs, which the ops
	// after a segment read anyway.
	segmentOutput := func(o Output) bool {
		for _, c := range o.Op.Consumers(o.Index) {
			if m.forward[c.Op] && s.segmentOf(c.Op) != s.segmentOf(o.Op) {
				return true
			}
		}
		return false
	}
	clones, roots := 0, 0
	for _, o := range g.Operations() {
		if m.forward[o] || !strings.HasPrefix(o.Name(), "gradients/") {
			continue
		}
		for _, in := range o.Inputs() {
			if re[in.Op] && !segmentOutput(in) {
				t.Errorf("%s reads %s, a recomputed activation of the forward pass", o.Name(), in.Name())
			}
		}
		if !strings.HasPrefix(o.Name(), "gradients/recompute_") {
			continue
		}
		clones++
		fromClone := false
		for _, in := range o.Inputs() {
			fromClone = fromClone || strings.HasPrefix(in.Op.Name(), "gradients/recompute_")
		}
		if !fromClone {
			roots++
			waits := false
			for _, c := range o.ControlInputs() {
				waits = waits || (!m.forward[c] && strings.HasPrefix(c.Name(), "gradients/"))
			}
			if !waits {
				t.Errorf("recomputation root %s does not wait for a gradient", o.Name())
			}
		}
	}
	require.Equal(t, len(recomputed), clones)
	require.Greater(t, roots, 0)
}

// deepChain is 16 segments of 4 layers tanh(x·W) on a [256,1024] input,
// and the gradient of sum(y) with respect to the input.
func deepChain(t *testing.T, recompute bool) (*Scope, Output, Output, Output) {
	t.Helper()
	const segments, layers, batch, width = 16, 4, 256, 1024
	r := rand.New(rand.NewSource(3))
	s := NewScope()
	x := Placeholder(s.SubScope("x"), Float, batch, width)
	w := Const(s.SubScope("w"), randMatrix(r, width, width, 1/math.Sqrt(width)))
	h := x
	for i := 0; i < segments; i++ {
		b := s.SubScope(fmt.Sprintf("block_%d", i))
		if recompute {
			b = b.WithRecompute()
		}
		for j := 0; j < layers; j++ {
			h = Tanh(b, MatMul(b, h, w))
		}
	}
	loss := Sum(s, h, Const(s, []int32{0, 1}))
	g := Gradients(s, []Output{loss}, []Output{x}, nil)
	require.NoError(t, s.Err())
	return s, x, loss, g[0]
}

// TestRecomputeSavesMemory compares the peak of live bytes of one training
// step with and without recomputation, replayed from the allocation records
// of a fully traced run (MemoryFromMetadata), and checks in the executed
// partition graphs that the clones ran, not merged back by Grappler.
func TestRecomputeSavesMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 192 MatMuls of 256x1024x1024")
	}
	feed := randMatrix(rand.New(rand.NewSource(4)), 256, 1024, 1)
	type result struct {
		peak    int64
		grad    []float32
		clones  int
		matmuls int
	}
	run := func(recompute bool) result {
		s, x, loss, g := deepChain(t, recompute)
		sess, err := NewSession(s, SessionOptions{})
		require.NoError(t, err)
		defer sess.Close()
		outs, tr, err := sess.RunTraced(map[Output]any{x: feed}, []Output{loss, g})
		require.NoError(t, err)
		var res result
		res.grad, err = Float32s(outs[1])
		require.NoError(t, err)
		for _, o := range outs {
			o.Close()
		}
		mem := MemoryFromMetadata(tr.Metadata)
		require.Greater(t, mem.AllocatedBytes, int64(0), "no allocation records in the step stats")
		res.peak = mem.PeakBytes
		for _, pg := range tr.Metadata.GetPartitionGraphs() {
			for _, n := range pg.GetNode() {
				if strings.HasPrefix(n.GetName(), "gradients/recompute_") {
					res.clones++
				}
			}
		}
		res.matmuls = tr.ExecutedOpTypes()["_MklMatMul"] + tr.ExecutedOpTypes()["MatMul"]
		return res
	}
	plain, re := run(false), run(true)
	t.Logf("peak live bytes: %d without recomputation, %d with (%.2fx); executed MatMuls %d and %d, recompute clones %d",
		plain.peak, re.peak, float64(plain.peak)/float64(re.peak), plain.matmuls, re.matmuls, re.clones)
	// Every layer's MatMul and Tanh are recomputed once. The count of
	// executed MatMuls is what shows that they ran as nodes of their own:
	// when common-subexpression elimination merges a clone with its
	// original (it does when the roots do not wait for the gradient), the
	// node it keeps may carry either name.
	require.Equal(t, 16*4*2, re.clones)
	require.Equal(t, plain.matmuls+16*4, re.matmuls)
	require.Equal(t, 0, plain.clones)
	for i := range plain.grad {
		require.InDelta(t, plain.grad[i], re.grad[i], 1e-6, "gradient element %d", i)
	}
	// Without recomputation the 64 activations of 1 MiB stay alive until
	// the backward pass reaches them; with it, the 16 segment outputs and
	// one segment's recomputation. Ask for a third less, far from both.
	require.Less(t, re.peak, plain.peak*2/3)
}

// DropRecompute turns a segment back into ordinary ops, and a later
// WithRecompute on the same scope starts a new segment.
func TestDropRecompute(t *testing.T) {
	s := NewScope()
	x := Placeholder(s, Float, 2)
	rs := s.WithRecompute()
	y := Tanh(rs, x)
	require.Equal(t, 1, s.RecomputeSegment(y.Op))
	rs.DropRecompute()
	require.Equal(t, 0, s.RecomputeSegment(y.Op))
	z := Tanh(rs, y)
	require.Equal(t, 0, s.RecomputeSegment(z.Op), "an op added after DropRecompute joins no segment")
	w := Tanh(rs.WithRecompute(), z)
	require.Equal(t, 2, s.RecomputeSegment(w.Op))
	var nilScope *Scope
	nilScope.DropRecompute()
	(&Scope{}).DropRecompute()
}

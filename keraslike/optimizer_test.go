package keraslike

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// optimizerCase is a keraslike optimizer and the Keras 3 expression for it.
type optimizerCase struct {
	name string
	opt  func() Optimizer
	py   string
}

func optimizerCases() []optimizerCase {
	return []optimizerCase{
		{"adam", func() Optimizer { return NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}}) },
			"keras.optimizers.Adam(learning_rate=0.01)"},
		{"adamw", func() Optimizer {
			return NewAdamW(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}, WeightDecay: 0.1})
		}, "keras.optimizers.AdamW(learning_rate=0.01, weight_decay=0.1)"},
		{"sgd", func() Optimizer { return NewSGD(SGDOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.1}}) },
			"keras.optimizers.SGD(learning_rate=0.1)"},
		{"sgd_momentum", func() Optimizer {
			return NewSGD(SGDOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.1}, Momentum: 0.9})
		}, "keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)"},
		{"sgd_nesterov", func() Optimizer {
			return NewSGD(SGDOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.1}, Momentum: 0.9, Nesterov: true})
		}, "keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)"},
		{"adam_clipped_warmup_cosine", func() Optimizer {
			return NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{GlobalClipNorm: 0.5,
				Schedule: WarmupCosine{Peak: 0.01, WarmupSteps: 1, DecaySteps: 10}}})
		}, "keras.optimizers.Adam(learning_rate=keras.optimizers.schedules.CosineDecay(0.0, 10, warmup_target=0.01, warmup_steps=1), global_clipnorm=0.5)"},
	}
}

// pyTrainedState ends a Python reference that trained model m with
// optimizer opt: it outputs the weights ("w00", ...), the optimizer's
// slots ("s00", ...) and the slots' paths ("slot_names").
const pyTrainedState = `
for i, v in enumerate(m.get_weights()):
    outputs["w%02d" % i] = v
slots = [v for v in opt.variables if "iteration" not in v.path and "learning_rate" not in v.path]
for i, v in enumerate(slots):
    outputs["s%02d" % i] = v.numpy()
outputs["slot_names"] = np.array([v.path.encode() for v in slots], dtype=object)
`

// freshSessions is how many new sessions each optimizer's two steps run
// in. The AdamW race this guards against showed in 6 of 300.
const freshSessions = 300

// Optimizer steps equal Keras 3's, and are the same bits in every fresh
// session: updated weights and optimizer slots after two train steps
// (train_on_batch) from the same weights.
//
// Tolerance: both sides run the same float32 kernels on the same inputs;
// what differs is the order of a few reductions (the loss' mean, the
// global norm), so results agree to a few float32 ulps: rtol 1e-6 (~8
// ulps), plus atol 1e-8 for elements that two steps leave near zero
// (biases, momenta), where one ulp of their inputs is larger than 1e-6 of
// the element.
func TestOptimizerStepsMatchKeras(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	w := []*tfgo.Tensor{randTensor(t, r, 8, 16), randTensor(t, r, 16), randTensor(t, r, 16, 4), randTensor(t, r, 4)}
	x, y := mlpData(r, 16)
	for _, c := range optimizerCases() {
		t.Run(c.name, func(t *testing.T) {
			m := mlp(t, w)
			defer m.Close()
			opt := c.opt()
			require.NoError(t, m.Compile(CompileOptions{Optimizer: opt, Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
			var slotNames []string
			for _, v := range opt.Variables()[1:] {
				slotNames = append(slotNames, v.Name())
			}
			got, slots := twoSteps(t, m, opt, x, y)
			requireSameInFreshSessions(t, m, opt, x, y, append(append([]*tfgo.Tensor{}, got...), slots...))

			xt, err := tfgo.NewTensor(x)
			require.NoError(t, err)
			yt, err := tfgo.NewTensor(y)
			require.NoError(t, err)
			ref := interop.Python(t, fmt.Sprintf(`
import keras
keras.backend.clear_session()
m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4)], name="mlp")
m.set_weights([inputs["w0"], inputs["w1"], inputs["w2"], inputs["w3"]])
opt = %s
m.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
for i in range(2):
    m.train_on_batch(inputs["x"][8*i:8*i+8], inputs["y"][8*i:8*i+8])
`, c.py)+pyTrainedState, map[string]*tfgo.Tensor{"w0": w[0], "w1": w[1], "w2": w[2], "w3": w[3], "x": xt, "y": yt})
			for i := range got {
				allClose(t, fmt.Sprintf("weight %d", i), ref[fmt.Sprintf("w%02d", i)], got[i], 1e-8, 1e-6)
			}
			names, err := ref["slot_names"].Strings()
			require.NoError(t, err)
			require.Len(t, slots, len(names), "optimizer slots")
			for i := range slots {
				require.Equal(t, string(names[i]), slotNames[i], "slot name")
				allClose(t, "slot "+slotNames[i], ref[fmt.Sprintf("s%02d", i)], slots[i], 1e-8, 1e-6)
			}
		})
	}
}

// twoSteps trains m on x, y in batches of 8 (two steps) and returns its
// weights and the optimizer's slots.
func twoSteps(t *testing.T, m *Model, opt Optimizer, x [][]float32, y []int32) (weights, slots []*tfgo.Tensor) {
	t.Helper()
	_, err := m.Fit(context.Background(), &ArrayDataset[[]float32, int32]{X: x, Y: y, BatchSize: 8}, FitOptions{Epochs: 1})
	require.NoError(t, err)
	weights, err = m.GetWeights()
	require.NoError(t, err)
	var outs []tfgo.Output
	for _, v := range opt.Variables()[1:] {
		outs = append(outs, v.Value())
	}
	if len(outs) > 0 {
		sess, err := m.Session()
		require.NoError(t, err)
		slots, err = sess.Run(nil, outs)
		require.NoError(t, err)
	}
	return weights, slots
}

// requireSameInFreshSessions runs Fit's two steps of m in freshSessions new
// sessions on m's graph, a few at a time (the scheduling noise of
// concurrent runs makes an unordered read and write lose more often), and
// requires each to end with the bits of want (the weights, then the slots).
func requireSameInFreshSessions(t *testing.T, m *Model, opt Optimizer, x [][]float32, y []int32, want []*tfgo.Tensor) {
	t.Helper()
	var feeds []map[tfgo.Output]any
	for i := 0; i < len(x); i += 8 {
		xt, err := tfgo.NewTensor(x[i : i+8])
		require.NoError(t, err)
		yt, err := tfgo.NewTensor(y[i : i+8])
		require.NoError(t, err)
		defer xt.Close()
		defer yt.Close()
		feeds = append(feeds, map[tfgo.Output]any{m.train.x: xt, m.train.yTrue: yt})
	}
	var fetches []tfgo.Output
	for _, w := range m.Weights() {
		fetches = append(fetches, w.Value())
	}
	for _, v := range opt.Variables()[1:] {
		fetches = append(fetches, v.Value())
	}
	require.Len(t, fetches, len(want))
	wantBits := make([]string, len(want))
	for i, tn := range want {
		wantBits[i] = string(tn.Data())
	}
	init := tfgo.GlobalVariablesInitializer(m.Scope())
	require.NoError(t, m.Scope().Err())

	run := func() error {
		sess, err := tfgo.NewSession(m.Scope(), m.sessOpts)
		if err != nil {
			return err
		}
		defer sess.Close()
		if _, err := sess.Run(nil, nil, init); err != nil {
			return err
		}
		for _, f := range feeds {
			if _, err := sess.Run(f, nil, m.train.step); err != nil {
				return err
			}
		}
		got, err := sess.Run(nil, fetches)
		if err != nil {
			return err
		}
		for i, tn := range got {
			same := string(tn.Data()) == wantBits[i]
			tn.Close()
			if !same {
				return fmt.Errorf("%s differs from Fit's result (an unordered read and write?)", fetches[i].Op.Name())
			}
		}
		return nil
	}
	const concurrent = 4
	errs := make(chan error, freshSessions)
	next := make(chan int)
	var wg sync.WaitGroup
	for g := 0; g < concurrent; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := run(); err != nil {
					errs <- fmt.Errorf("fresh session %d: %w", i, err)
				}
			}
		}()
	}
	for i := 0; i < freshSessions; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 3 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d fresh sessions differ", n, freshSessions)
	}
}

// In the train step's graph every pair of a write and another access of
// the same variable is ordered by a path, whatever the optimizer: an
// unordered pair is a race the executor may resolve either way (AdamW's
// decay once ran before the forward pass read the weight). This sees the
// race class in the graph, where the fresh-session runs above only see it
// when the scheduler happens to lose.
func TestTrainStepAccessesAreOrdered(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	w := []*tfgo.Tensor{randTensor(t, r, 8, 16), randTensor(t, r, 16), randTensor(t, r, 16, 4), randTensor(t, r, 4)}
	for _, c := range optimizerCases() {
		for _, accumulate := range []int{0, 2} {
			t.Run(fmt.Sprintf("%s/accumulate=%d", c.name, accumulate), func(t *testing.T) {
				m := mlp(t, w)
				defer m.Close()
				require.NoError(t, m.Compile(CompileOptions{Optimizer: c.opt(), Loss: SparseCategoricalCrossentropy{FromLogits: true},
					AccumulationSteps: accumulate, Metrics: []string{"accuracy"}}))
				requireOrderedAccesses(t, m)
			})
		}
	}
	t.Run("gpt/adamw", func(t *testing.T) {
		ResetNames()
		m, err := NewGPT("gpt", GPTConfig{Vocab: 32, SeqLen: 8, DModel: 16, Heads: 2, FFDim: 32, Layers: 2, Dropout: 0.1})
		require.NoError(t, err)
		defer m.Close()
		require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdamW(AdamOptions{OptimizerOptions: OptimizerOptions{GlobalClipNorm: 1}}),
			Loss: SparseCategoricalCrossentropy{FromLogits: true}}))
		requireOrderedAccesses(t, m)
	})
}

// requireOrderedAccesses checks the ops one train step runs (the step op
// and the fetched metrics): for every variable, each write is ordered
// against each other access of it.
func requireOrderedAccesses(t *testing.T, m *Model) {
	t.Helper()
	gd, err := m.Scope().Graph().GraphDef()
	require.NoError(t, err)
	inputs := map[string][]string{}
	opType := map[string]string{}
	for _, n := range gd.Node {
		opType[n.Name] = n.Op
		for _, in := range n.Input {
			in = strings.TrimPrefix(in, "^")
			if i := strings.LastIndexByte(in, ':'); i >= 0 {
				in = in[:i]
			}
			inputs[n.Name] = append(inputs[n.Name], in)
		}
	}
	ancestors := func(name string) map[string]bool {
		seen := map[string]bool{}
		stack := []string{name}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, in := range inputs[n] {
				if !seen[in] {
					seen[in] = true
					stack = append(stack, in)
				}
			}
		}
		return seen
	}
	roots := []string{m.train.step.Name()}
	for _, o := range m.train.metrics {
		roots = append(roots, o.Op.Name())
	}
	step := map[string]bool{}
	for _, r := range roots {
		step[r] = true
		for a := range ancestors(r) {
			step[a] = true
		}
	}
	// The accesses of each variable (by its VarHandleOp) in the step.
	type access struct {
		op    string
		write bool
	}
	byVar := map[string][]access{}
	for n := range step {
		for _, in := range inputs[n] {
			if opType[in] != "VarHandleOp" {
				continue
			}
			switch opType[n] {
			case "VariableShape", "VarIsInitializedOp": // no value access
			case "ReadVariableOp", "ResourceGather", "ResourceGatherNd":
				byVar[in] = append(byVar[in], access{n, false})
			default:
				byVar[in] = append(byVar[in], access{n, true})
			}
		}
	}
	var writes int
	anc := map[string]map[string]bool{}
	before := func(a, b string) bool {
		if anc[b] == nil {
			anc[b] = ancestors(b)
		}
		return anc[b][a]
	}
	for v, acc := range byVar {
		for i, a := range acc {
			if !a.write {
				continue
			}
			writes++
			for j, b := range acc {
				if i != j && !before(a.op, b.op) && !before(b.op, a.op) {
					t.Errorf("variable %s: %s (%s) and %s (%s) are unordered in the train step", v, a.op, opType[a.op], b.op, opType[b.op])
				}
			}
		}
	}
	require.NotZero(t, writes, "the train step writes no variable")
}

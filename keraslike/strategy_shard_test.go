package keraslike

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/distribute"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shardModel has weights of 40, 5, 20 and 4 elements: 5 divides by
// neither 2 nor 4, so the last part of its bias is padded.
func shardModel(t *testing.T) *Model {
	ResetNames()
	return NewSequential("mlp", InputSpec{Shape: []int64{8}},
		NewDense(5, DenseOptions{Activation: "tanh"}), NewDense(4, DenseOptions{}))
}

func cpus(n int) []string {
	var devs []string
	for k := range n {
		devs = append(devs, fmt.Sprintf("/device:CPU:%d", k))
	}
	return devs
}

// trainSharded trains c's model for 20 steps from init under a mirrored
// strategy on n logical CPUs, with the optimizer state sharded or not.
func trainSharded(t *testing.T, c mirrorCase, n int, shard bool, init []*tfgo.Tensor) *Model {
	t.Helper()
	st, err := distribute.NewMirroredStrategyWithOptions(cpus(n), distribute.MirroredOptions{ShardOptimizerState: shard})
	require.NoError(t, err)
	m := c.model(t)
	require.NoError(t, m.Compile(CompileOptions{Optimizer: c.opt(), Loss: c.loss, Strategy: st}))
	require.NoError(t, m.SetWeights(init))
	_, err = m.Fit(context.Background(), c.data, FitOptions{Epochs: 1, StepsPerEpoch: 20})
	require.NoError(t, err)
	return m
}

// 20 steps with the optimizer state sharded over 2 and 4 replicas end with
// the weights of the plain mirrored step, for SGD with momentum (and
// Nesterov), Adam, Adam and SGD clipped by the global norm, Adam on a GPT
// block and AdamW with a schedule; every replica's copy equals replica 0's.
func TestShardedOptimizerMatchesMirrored(t *testing.T) {
	mse := MeanSquaredError{}
	cases := []mirrorCase{
		{"sgd_momentum", shardModel, func() Optimizer {
			return NewSGD(SGDOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.05}, Momentum: 0.9})
		}, mse, mirrorDenseData()},
		{"sgd_nesterov", shardModel, func() Optimizer {
			return NewSGD(SGDOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.05}, Momentum: 0.9, Nesterov: true})
		}, mse, mirrorDenseData()},
		{"adam", shardModel, func() Optimizer {
			return NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}})
		}, mse, mirrorDenseData()},
		// A norm of 0.1 clips every step: a norm of a replica's parts only
		// would show.
		{"adam_clip", shardModel, func() Optimizer {
			return NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01, GlobalClipNorm: 0.1}})
		}, mse, mirrorDenseData()},
		{"sgd_clip", shardModel, func() Optimizer {
			return NewSGD(SGDOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.05, GlobalClipNorm: 0.1}, Momentum: 0.5})
		}, mse, mirrorDenseData()},
		{"gpt_adam", mirrorGPT, func() Optimizer {
			return NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 0.01}})
		}, SparseCategoricalCrossentropy{FromLogits: true}, mirrorTokenData(t)},
		{"adamw_schedule", shardModel, func() Optimizer {
			return NewAdamW(AdamOptions{OptimizerOptions: OptimizerOptions{Schedule: ExponentialDecay{Initial: 0.01, DecaySteps: 5, DecayRate: 0.5}}, WeightDecay: 0.1})
		}, mse, mirrorDenseData()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fresh := c.model(t)
			require.NoError(t, fresh.Build())
			init, err := fresh.GetWeights()
			require.NoError(t, err)
			fresh.Close()
			for _, n := range []int{2, 4} {
				ref := trainSharded(t, c, n, false, init)
				want, err := ref.GetWeights()
				require.NoError(t, err)
				ref.Close()
				m := trainSharded(t, c, n, true, init)
				got, err := m.GetWeights()
				require.NoError(t, err)
				worst, moved := 0.0, 0.0
				for i, w := range m.Weights() {
					allClose(t, fmt.Sprintf("%d replicas: %s", n, w.Path), want[i], got[i], 1e-5, 1e-5)
					for j, v := range floats(t, got[i]) {
						worst = math.Max(worst, math.Abs(float64(v-floats(t, want[i])[j])))
						moved = math.Max(moved, math.Abs(float64(v-floats(t, init[i])[j])))
					}
				}
				t.Logf("%d replicas: max |sharded - mirrored| = %.3g (weights moved up to %.3g)", n, worst, moved)
				assert.Greater(t, moved, 1e-2, "training moved the weights")
				replicasEqualReplica0(t, m, n, got)
				m.Close()
			}
		})
	}
}

// The graph's slot variables (VarHandleOps named *_momentum, *_velocity):
// with R replicas, device k holds ceil(size/R) elements of each slot of
// each weight, and nothing of the full size.
func TestShardedOptimizerSlotSizes(t *testing.T) {
	for _, n := range []int{2, 4} {
		st, err := distribute.NewMirroredStrategyWithOptions(cpus(n), distribute.MirroredOptions{ShardOptimizerState: true})
		require.NoError(t, err)
		m := shardModel(t)
		require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: MeanSquaredError{}, Strategy: st}))
		// per[device][weight path + slot] = elements
		per := map[string]map[string]int64{}
		for _, op := range m.Scope().Graph().Operations() {
			if op.Type() != "VarHandleOp" {
				continue
			}
			name := op.Name()
			slot := ""
			for _, s := range []string{"_momentum", "_velocity"} {
				if strings.HasSuffix(name, s) {
					slot = s
				}
			}
			if slot == "" {
				continue
			}
			a, err := op.Attr("shape")
			require.NoError(t, err)
			dev := op.Device()
			if per[dev] == nil {
				per[dev] = map[string]int64{}
			}
			key := name[strings.LastIndex(name, "/")+1:]
			per[dev][key] += a.(tfgo.Shape).NumElements()
		}
		require.Len(t, per, n, "%d replicas: slots on %v", n, per)
		for k, dev := range cpus(n) {
			got := per[dev]
			want := map[string]int64{}
			for _, w := range m.TrainableWeights() {
				size := int64(1)
				for _, d := range w.Shape() {
					size *= d
				}
				c := (size + int64(n) - 1) / int64(n)
				base := strings.ReplaceAll(w.Path, "/", "_")
				want[base+"_momentum"], want[base+"_velocity"] = c, c
			}
			assert.Equal(t, want, got, "%d replicas: slots on replica %d (%s)", n, k, dev)
			t.Logf("%d replicas, %s: %v", n, dev, got)
		}
		m.Close()
	}
}

// One traced step: every device ran one all-reduce, one slice of its part
// and one all-gather per trainable weight, and the Adam update of its
// parts.
func TestShardedStepTrace(t *testing.T) {
	st, err := distribute.NewMirroredStrategyWithOptions(cpus(2), distribute.MirroredOptions{ShardOptimizerState: true})
	require.NoError(t, err)
	m := shardModel(t)
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: MeanSquaredError{}, Strategy: st}))
	sess, err := m.Session()
	require.NoError(t, err)
	var batch Batch
	require.NoError(t, mirrorDenseData().Batches(0, func(b Batch) bool { batch = b; return false }))
	xt, rx, err := m.batchTensor("x", batch.X, m.train.x)
	require.NoError(t, err)
	defer rx()
	yt, ry, err := m.batchTensor("y", batch.Y, m.train.yTrue)
	require.NoError(t, err)
	defer ry()
	_, tr, err := sess.RunTraced(map[tfgo.Output]any{m.train.x: xt, m.train.yTrue: yt}, []tfgo.Output{m.train.loss}, m.train.step)
	require.NoError(t, err)
	count := map[string]map[string]int{} // device -> kind -> count
	for _, g := range tr.Metadata.GetPartitionGraphs() {
		for _, nd := range g.GetNode() {
			dev := nd.GetDevice()[strings.LastIndex(nd.GetDevice(), "/"):]
			kind := ""
			switch {
			case nd.GetOp() == "CollectiveReduceV2":
				kind = "all_reduce"
			case nd.GetOp() == "CollectiveGatherV2":
				kind = "all_gather"
			case nd.GetOp() == "Slice" && strings.Contains(nd.GetName(), "reduce_scatter/scatter_"):
				kind = "scatter_slice"
			}
			if kind == "" {
				continue
			}
			if count[dev] == nil {
				count[dev] = map[string]int{}
			}
			count[dev][kind]++
		}
	}
	nw := len(m.TrainableWeights())
	for _, dev := range cpus(2) {
		assert.Equal(t, map[string]int{"all_reduce": nw, "scatter_slice": nw, "all_gather": nw}, count[dev[strings.LastIndex(dev, "/"):]], dev)
	}
	seen := map[string]bool{}
	for _, op := range tr.Ops {
		if strings.Contains(op.Name, "CollectiveGatherV2") {
			seen[op.Device[strings.LastIndex(op.Device, "/"):]] = true
		}
	}
	assert.Equal(t, map[string]bool{"/device:CPU:0": true, "/device:CPU:1": true}, seen)
}

// An optimizer whose state cannot be sharded and saving the sharded state
// are refused naming the option, loading a full checkpoint's slots naming
// the shapes; a weights-only checkpoint saves, loads into a single-device
// model, and loads back reaching every replica.
func TestShardedOptimizerRefuses(t *testing.T) {
	st, err := distribute.NewMirroredStrategyWithOptions(cpus(2), distribute.MirroredOptions{ShardOptimizerState: true})
	require.NoError(t, err)
	for _, c := range []struct {
		opt  Optimizer
		want string
	}{
		{&shardTestOptimizer{NewSGD(SGDOptions{})}, "implemented for SGD, Adam and AdamW, whose updates are elementwise, not for *keraslike.shardTestOptimizer"},
		{&LossScaleOptimizer{}, "LossScaleOptimizer"},
	} {
		m := shardModel(t)
		err := m.Compile(CompileOptions{Optimizer: c.opt, Loss: MeanSquaredError{}, Strategy: st})
		require.Error(t, err)
		assert.Contains(t, err.Error(), c.want)
		m.Close()
	}

	dir := t.TempDir()
	m := shardModel(t)
	defer m.Close()
	require.NoError(t, m.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: MeanSquaredError{}, Strategy: st}))
	_, err = m.Fit(context.Background(), mirrorDenseData(), FitOptions{StepsPerEpoch: 2})
	require.NoError(t, err)
	err = m.SaveCheckpoint(filepath.Join(dir, "full"), CheckpointOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sharded over the 2 replicas")
	assert.Contains(t, err.Error(), "WeightsOnly")
	require.NoError(t, m.SaveCheckpoint(filepath.Join(dir, "w"), CheckpointOptions{WeightsOnly: true}))
	want, err := m.GetWeights()
	require.NoError(t, err)

	single := shardModel(t)
	defer single.Close()
	require.NoError(t, single.LoadCheckpoint(filepath.Join(dir, "w")))
	got, err := single.GetWeights()
	require.NoError(t, err)
	for i := range want {
		assert.Equal(t, floats(t, want[i]), floats(t, got[i]))
	}
	// A single-device model's full checkpoint: its slots have the shapes
	// of whole weights, which the sharded slots are not.
	require.NoError(t, single.Compile(CompileOptions{Optimizer: NewAdam(AdamOptions{}), Loss: MeanSquaredError{}}))
	_, err = single.Fit(context.Background(), mirrorDenseData(), FitOptions{StepsPerEpoch: 1})
	require.NoError(t, err)
	require.NoError(t, single.SaveCheckpoint(filepath.Join(dir, "single"), CheckpointOptions{}))
	err = m.LoadCheckpoint(filepath.Join(dir, "single"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"adam/mlp_dense_kernel_momentum" is float32[8 5], variable adam/mlp_dense_kernel_momentum is float32[20]`)

	// Back into the sharded model after more steps, and on: the load
	// reaches every replica.
	_, err = m.Fit(context.Background(), mirrorDenseData(), FitOptions{StepsPerEpoch: 1})
	require.NoError(t, err)
	require.NoError(t, m.LoadCheckpoint(filepath.Join(dir, "w")))
	_, err = m.Fit(context.Background(), mirrorDenseData(), FitOptions{StepsPerEpoch: 1})
	require.NoError(t, err)
	w0, err := m.GetWeights()
	require.NoError(t, err)
	sess, err := m.Session()
	require.NoError(t, err)
	cp := m.ReplicaWeights(1)
	outs := make([]tfgo.Output, len(cp))
	for i, w := range cp {
		outs[i] = w.Read(m.Scope().SubScope("check"))
	}
	vals, err := sess.Run(nil, outs)
	require.NoError(t, err)
	for i, w := range m.TrainableWeights() {
		assert.Equal(t, floats(t, w0[indexOf(m.Weights(), w)]), floats(t, vals[i]), "replica 1's %s", w.Path)
	}
}

// shardTestOptimizer is an optimizer the strategy does not know.
type shardTestOptimizer struct{ *SGD }

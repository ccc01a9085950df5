package keraslike

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// stepGraphs keeps the partition graphs of one traced training step.
type stepGraphs struct {
	NopCallback
	md *cpb.RunMetadata
}

func (c *stepGraphs) TraceStep(int, int) bool { return c.md == nil }

func (c *stepGraphs) OnStepTrace(_ *Model, _, _ int, md *cpb.RunMetadata) { c.md = md }

// Every Dense and attention projection of a GPT's training step runs as
// one fused MatMul + BiasAdd kernel after Grappler: no BiasAdd is left
// (the remapper skips a BiasAdd that has a control edge, which the
// gradient of the Reshape after it would give it without reshapeFused).
func TestTrainStepFusesMatMulAndBiasAdd(t *testing.T) {
	ResetNames()
	cfg := GPTConfig{SeqLen: 8, DModel: 16, Heads: 2, Layers: 2, Epsilon: 1e-6}
	m, err := NewGPT("gpt", cfg)
	require.NoError(t, err)
	defer m.Close()
	opt := NewAdam(AdamOptions{OptimizerOptions: OptimizerOptions{LearningRate: 1e-3}})
	const batch = 4
	require.NoError(t, m.Compile(CompileOptions{Optimizer: opt, Loss: SparseCategoricalCrossentropy{FromLogits: true}, BatchSize: batch}))
	x, y := make([][]int32, batch), make([][]int32, batch)
	for i := range x {
		x[i], y[i] = make([]int32, cfg.SeqLen), make([]int32, cfg.SeqLen)
		for j := range x[i] {
			x[i][j], y[i][j] = int32(i+j), int32(i*j%7)
		}
	}
	trace := &stepGraphs{}
	data := &ArrayDataset[[]int32, []int32]{X: x, Y: y, BatchSize: batch, DropRemainder: true}
	_, err = m.Fit(context.Background(), data, FitOptions{StepsPerEpoch: 1, Callbacks: []Callback{trace}})
	require.NoError(t, err)
	require.NotNil(t, trace.md, "no step was traced")
	ops := map[string]int{}
	for _, g := range trace.md.GetPartitionGraphs() {
		for _, n := range g.GetNode() {
			ops[n.GetOp()]++
		}
	}
	// Per block: query, key, value, attention output, two Dense; the head.
	want := 6*cfg.Layers + 1
	require.Zero(t, ops["BiasAdd"], "unfused BiasAdds in the step: %v", ops)
	require.Equal(t, want, ops["_FusedMatMul"]+ops["_MklFusedMatMul"]+ops["_MklNativeFusedMatMul"], "fused MatMuls in the step: %v", ops)
}

package keraslike

import (
	"context"
	"testing"

	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
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

// A GPT's exported inference graph runs every Dense and attention
// projection as one fused kernel after Grappler, the feed-forward gelu
// included (the remapper knows tf.nn.gelu's erfc form): no BiasAdd, Erf or
// Erfc is left. Before the activation moved ahead of the reshape back to
// three dimensions, the gelu and its MatMul stayed apart.
func TestExportedGraphFusesMatMulBiasAddAndGelu(t *testing.T) {
	ResetNames()
	cfg := GPTConfig{SeqLen: 8, DModel: 16, Heads: 2, Layers: 2, Epsilon: 1e-6}
	m, err := NewGPT("gpt", cfg)
	require.NoError(t, err)
	dir := t.TempDir() + "/gpt"
	err = m.Export(dir, ExportOptions{})
	m.Close()
	require.NoError(t, err)
	sm, err := runner.Load(dir)
	require.NoError(t, err)
	defer sm.Close()
	sig, ok := sm.Signature("serving_default")
	require.True(t, ok)
	g := sm.Session().Graph()
	in, err := g.OutputByName(sig.Inputs[sig.InputNames()[0]].Name)
	require.NoError(t, err)
	var fetches []tfgo.Output
	for _, k := range sig.OutputNames() {
		o, err := g.OutputByName(sig.Outputs[k].Name)
		require.NoError(t, err)
		fetches = append(fetches, o)
	}
	ids := [][]int32{{1, 2, 3, 4, 5, 6, 7, 8}}
	outs, tr, err := sm.Session().RunTraced(map[tfgo.Output]any{in: ids}, fetches)
	require.NoError(t, err)
	for _, o := range outs {
		o.Close()
	}
	ops := map[string]int{}
	fusedGelu := 0
	for _, pg := range tr.Metadata.GetPartitionGraphs() {
		for _, n := range pg.GetNode() {
			ops[n.GetOp()]++
			for _, f := range n.GetAttr()["fused_ops"].GetList().GetS() {
				if string(f) == "GeluExact" {
					fusedGelu++
				}
			}
		}
	}
	for _, op := range []string{"BiasAdd", "Erf", "Erfc"} {
		require.Zero(t, ops[op], "%s left in the inference graph: %v", op, ops)
	}
	require.Equal(t, 6*cfg.Layers+1, ops["_FusedMatMul"]+ops["_MklFusedMatMul"]+ops["_MklNativeFusedMatMul"], "fused MatMuls: %v", ops)
	require.Equal(t, cfg.Layers, fusedGelu, "MatMuls with a fused gelu: %v", ops)
}

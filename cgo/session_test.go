package cgo

import (
	"testing"

	"github.com/gotf/gotf/dtypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// placeholderMatMul builds y = x · w for a [?, 2] placeholder x.
func placeholderMatMul(t *testing.T) (*Graph, Output, Output) {
	g := NewGraph()
	x, err := g.NewOperation("Placeholder", "x").SetAttr("dtype", dtypes.Float).SetAttr("shape", MakeShape(-1, 2)).Finish()
	require.NoError(t, err)
	w := constOp(t, g, "w", []int64{2, 2}, 1, 2, 3, 4)
	y, err := g.NewOperation("MatMul", "y").AddInput(x.Output(0)).AddInput(w.Output(0)).Finish()
	require.NoError(t, err)
	return g, x.Output(0), y.Output(0)
}

func TestSessionRunWithMetadata(t *testing.T) {
	g, x, y := placeholderMatMul(t)
	defer g.Close()
	s, err := NewSession(g, &SessionOptions{Config: &cpb.ConfigProto{
		IntraOpParallelismThreads: 1, InterOpParallelismThreads: 1,
	}})
	require.NoError(t, err)
	defer s.Close()

	in, err := NewTensor(dtypes.Float, []int64{1, 2}, f32bytes(1, 1))
	require.NoError(t, err)
	defer in.Close()
	outs, md, err := s.RunWithOptions(&cpb.RunOptions{TraceLevel: cpb.RunOptions_FULL_TRACE},
		map[Output]*Tensor{x: in}, []Output{y}, nil)
	require.NoError(t, err)
	defer outs[0].Close()
	assert.Equal(t, []float32{4, 6}, bytesf32(outs[0].Data()))
	require.NotNil(t, md)
	var nodes []string
	for _, dev := range md.GetStepStats().GetDevStats() {
		for _, n := range dev.GetNodeStats() {
			nodes = append(nodes, n.GetNodeName())
		}
	}
	assert.Contains(t, nodes, "y", "step stats name the MatMul")
}

func TestSessionLogicalDevices(t *testing.T) {
	g := NewGraph()
	defer g.Close()
	s, err := NewSession(g, &SessionOptions{Config: &cpb.ConfigProto{DeviceCount: map[string]int32{"CPU": 4}}})
	require.NoError(t, err)
	defer s.Close()
	devs, err := s.ListDevices()
	require.NoError(t, err)
	var cpus []string
	for _, d := range devs {
		if d.Type == "CPU" {
			cpus = append(cpus, d.Name)
		}
	}
	assert.Len(t, cpus, 4)
	assert.Contains(t, cpus, "/job:localhost/replica:0/task:0/device:CPU:3")
}

func TestSessionRunErrors(t *testing.T) {
	g, x, y := placeholderMatMul(t)
	defer g.Close()
	s, err := NewSession(g, nil)
	require.NoError(t, err)

	// A feed of the wrong shape: the error names the op that rejected it.
	bad, err := NewTensor(dtypes.Float, []int64{1, 3}, f32bytes(1, 2, 3))
	require.NoError(t, err)
	defer bad.Close()
	_, err = s.Run(map[Output]*Tensor{x: bad}, []Output{y}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "y")

	// A missing feed names the placeholder.
	_, err = s.Run(nil, []Output{y}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "x")
	assert.Equal(t, "x", err.(*Error).Op)

	// Fetching an op of another graph.
	other := NewGraph()
	defer other.Close()
	c := constOp(t, other, "elsewhere", nil, 1)
	_, err = s.Run(nil, []Output{c.Output(0)}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "elsewhere")

	_, err = s.Run(map[Output]*Tensor{x: nil}, []Output{y}, nil)
	require.ErrorContains(t, err, "nil or closed")

	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	_, err = s.Run(nil, []Output{y}, nil)
	require.ErrorContains(t, err, "closed")
}

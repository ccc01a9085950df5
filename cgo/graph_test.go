package cgo

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gotf/gotf/dtypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersionIs2_21(t *testing.T) {
	require.True(t, strings.HasPrefix(Version(), "2.21."), "linked TensorFlow is %s, want 2.21.x", Version())
}

func TestGraphIntrospection(t *testing.T) {
	g := NewGraph()
	defer g.Close()
	a := constOp(t, g, "a", []int64{2, 3}, 1, 2, 3, 4, 5, 6)
	b := constOp(t, g, "b", []int64{3, 1}, 1, 1, 1)
	mm, err := g.NewOperation("MatMul", "block_0/mm").AddInput(a.Output(0)).AddInput(b.Output(0)).
		SetDevice("/device:CPU:0").AddControlInput(b).Finish()
	require.NoError(t, err)

	assert.Equal(t, "block_0/mm", mm.Name())
	assert.Equal(t, "MatMul", mm.Type())
	assert.Equal(t, "/device:CPU:0", mm.Device())
	assert.Equal(t, 2, mm.NumInputs())
	assert.Equal(t, 1, mm.NumOutputs())
	assert.Same(t, a, mm.Input(0).Op, "one *Operation per C operation")
	assert.Same(t, mm, g.Operation("block_0/mm"))
	assert.Equal(t, "b", mm.Input(1).Op.Name())
	assert.Equal(t, dtypes.Float, mm.OutputType(0))
	assert.Equal(t, dtypes.Float, mm.InputType(1))
	require.Len(t, mm.ControlInputs(), 1)
	assert.Equal(t, "b", mm.ControlInputs()[0].Name())
	cons := a.Consumers(0)
	require.Len(t, cons, 1)
	assert.Equal(t, Input{Op: g.Operation("block_0/mm"), Index: 0}.Op.Name(), cons[0].Op.Name())
	sh, err := mm.Output(0).Shape()
	require.NoError(t, err)
	assert.Equal(t, MakeShape(2, 1), sh)
	assert.Equal(t, "block_0/mm:0", mm.Output(0).Name())

	assert.Nil(t, g.Operation("missing"))
	names := []string{}
	for _, op := range g.Operations() {
		names = append(names, op.Name())
	}
	assert.Equal(t, []string{"a", "b", "block_0/mm"}, names)

	gd, err := g.GraphDef()
	require.NoError(t, err)
	assert.Len(t, gd.Node, 3)
	g2 := NewGraph()
	defer g2.Close()
	require.NoError(t, g2.Import(gd, "copy"))
	assert.NotNil(t, g2.Operation("copy/block_0/mm"))

	nd, err := mm.NodeDef()
	require.NoError(t, err)
	assert.Equal(t, "MatMul", nd.Op)
	assert.Contains(t, nd.Input, "^b")

	def, err := g.OpDef("MatMul")
	require.NoError(t, err)
	assert.Equal(t, "MatMul", def.Name)
}

// The C API indexes outputs and inputs without bounds checks: the zero
// Output and indices out of range must give zero values and errors, not
// reads outside the operation (or a nil dereference).
func TestOutputsAndInputsOutOfRange(t *testing.T) {
	g := NewGraph()
	defer g.Close()
	a := constOp(t, g, "a", []int64{2}, 1, 2)
	for _, o := range []Output{{}, a.Output(1), a.Output(-1), a.Output(1 << 30)} {
		assert.Equal(t, DataType(0), o.DataType(), o.Name())
		_, err := o.Shape()
		assert.Error(t, err, o.Name())
		_, err = g.TensorShape(o)
		assert.Error(t, err, o.Name())
	}
	assert.Equal(t, "", Output{}.Name())
	assert.Equal(t, Output{}, a.Input(0))
	assert.Equal(t, DataType(0), a.InputType(3))
	assert.Nil(t, a.Consumers(2))
	other := NewGraph()
	defer other.Close()
	_, err := other.TensorShape(a.Output(0))
	assert.Error(t, err, "an output of another graph")

	s, err := NewSession(g, nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = s.ListDevices()
	assert.Error(t, err, "ListDevices after Close")
}

func TestSplitListLengths(t *testing.T) {
	g := NewGraph()
	defer g.Close()
	x := constOp(t, g, "x", []int64{4}, 1, 2, 3, 4)
	axis, err := NewTensor(dtypes.Int32, nil, []byte{0, 0, 0, 0})
	require.NoError(t, err)
	ax, err := g.NewOperation("Const", "axis").SetAttr("dtype", dtypes.Int32).SetAttr("value", axis).Finish()
	require.NoError(t, err)
	split, err := g.NewOperation("Split", "split").AddInput(ax.Output(0)).AddInput(x.Output(0)).SetAttr("num_split", 2).Finish()
	require.NoError(t, err)
	n, err := split.OutputListLength("output")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	cc, err := g.NewOperation("ConcatV2", "concat").AddInputList([]Output{split.Output(1), split.Output(0)}).AddInput(ax.Output(0)).Finish()
	require.NoError(t, err)
	n, err = cc.InputListLength("values")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

// Bad graphs come back as errors that name the op; the process survives.
func TestBadGraphErrorsNameTheOp(t *testing.T) {
	g := NewGraph()
	defer g.Close()
	a := constOp(t, g, "a", []int64{2, 3}, 1, 2, 3, 4, 5, 6)

	cases := []struct {
		name  string
		build *OpBuilder
		want  string
	}{
		{"incompatible MatMul", g.NewOperation("MatMul", "bad_matmul").AddInput(a.Output(0)).AddInput(a.Output(0)), "Dimensions must be equal"},
		{"unknown op type", g.NewOperation("NoSuchOp", "mystery"), "Op type not registered 'NoSuchOp'"},
		{"missing attr", g.NewOperation("Placeholder", "no_dtype"), "missing attr 'dtype'"},
		{"bad attr type", g.NewOperation("Placeholder", "bad_dtype").SetAttr("dtype", "float32"), "dtype"},
		{"unsupported Go attr", g.NewOperation("Placeholder", "go_attr").SetAttr("dtype", struct{}{}), "unsupported Go type"},
		{"nil input", g.NewOperation("Identity", "nil_input").AddInput(Output{}), "nil"},
		{"input from another graph", g.NewOperation("Identity", "foreign").AddInput(constOp(t, NewGraph(), "elsewhere", nil, 1).Output(0)), "another graph"},
		{"duplicate name", g.NewOperation("Identity", "a").AddInput(a.Output(0)), "Duplicate node name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op, err := c.build.Finish()
			require.Error(t, err)
			assert.Nil(t, op)
			var tfErr *Error
			require.True(t, errors.As(err, &tfErr), "%T", err)
			assert.Equal(t, c.build.name, tfErr.Op)
			assert.Contains(t, err.Error(), c.build.name)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	_, err := g.OpDef("NoSuchOp")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NoSuchOp")
	// The graph is still usable after the failures.
	assert.Equal(t, 1, g.NumOperations())
}

func TestOpAndKernelRegistries(t *testing.T) {
	ops, err := OpList()
	require.NoError(t, err)
	assert.Greater(t, len(ops.Op), 1000)
	found := map[string]bool{}
	for _, op := range ops.Op {
		found[op.Name] = true
	}
	for _, name := range []string{"MatMul", "BatchMatMulV2", "Softmax", "VarHandleOp", "SaveV2", "StatefulPartitionedCall", "While"} {
		assert.True(t, found[name], name)
	}
	kernels, err := KernelList()
	require.NoError(t, err)
	cpuMatMul := false
	for _, k := range kernels.Kernel {
		if k.Op == "MatMul" && k.DeviceType == "CPU" {
			cpuMatMul = true
		}
	}
	assert.True(t, cpuMatMul)
}

func TestOutputByName(t *testing.T) {
	g := NewGraph()
	defer g.Close()
	a := constOp(t, g, "scope/a", []int64{1}, 1)
	o, err := g.OutputByName("scope/a:0")
	require.NoError(t, err)
	assert.Equal(t, a.Output(0), o)
	o, err = g.OutputByName("scope/a")
	require.NoError(t, err)
	assert.Equal(t, a.Output(0), o)
	_, err = g.OutputByName("scope/missing:0")
	require.ErrorContains(t, err, `no operation named "scope/missing"`)
	assert.Equal(t, "scope/missing", err.(*Error).Op)
	_, err = g.OutputByName("scope/a:3")
	require.ErrorContains(t, err, "has 1 outputs")
	_, err = g.OutputByName("scope/a:x")
	require.ErrorContains(t, err, "bad tensor name")
}

// A graph holding operations must be collectable once unreachable: the
// map from C operations to Go ones is weak, so it makes no cycle through
// the graph's finalizer (with a strong map, no such graph was ever freed).
func TestGraphWithOperationsIsCollected(t *testing.T) {
	collected := make(chan struct{})
	func() {
		g := NewGraph()
		op := constOp(t, g, "a", []int64{2}, 1, 2)
		assert.Same(t, op, op.Output(0).Op.Graph().op(op.c))
		runtime.AddCleanup(g, func(struct{}) { close(collected) }, struct{}{})
	}()
	for range 50 {
		runtime.GC()
		select {
		case <-collected:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("a graph with an operation was not collected after 50 GCs")
}

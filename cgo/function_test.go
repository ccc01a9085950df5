package cgo

import (
	"errors"
	"testing"

	"github.com/gotf/gotf/dtypes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func placeholderOp(t *testing.T, g *Graph, name string, dt DataType, shape Shape) Output {
	t.Helper()
	op, err := g.NewOperation("Placeholder", name).SetAttr("dtype", dt).SetAttr("shape", shape).Finish()
	require.NoError(t, err)
	return op.Output(0)
}

func binaryOp(t *testing.T, g *Graph, opType, name string, a, b Output) Output {
	t.Helper()
	op, err := g.NewOperation(opType, name).AddInput(a).AddInput(b).Finish()
	require.NoError(t, err)
	return op.Output(0)
}

// affineFunction builds AffineFn(x, a) = (x*a + 1, x - a) on float32 vectors.
func affineFunction(t *testing.T, name string) *Function {
	t.Helper()
	body := NewGraph()
	defer body.Close()
	x := placeholderOp(t, body, "x", dtypes.Float, MakeShape(-1))
	a := placeholderOp(t, body, "a", dtypes.Float, MakeShape(-1))
	one := constOp(t, body, "one", nil, 1)
	y := binaryOp(t, body, "AddV2", "y", binaryOp(t, body, "Mul", "xa", x, a), one.Output(0))
	d := binaryOp(t, body, "Sub", "d", x, a)
	f, err := GraphToFunction(body, name, []Output{x, a}, []Output{y, d},
		&FunctionOptions{OutputNames: []string{"y", "diff"}, Description: "x*a+1 and x-a"})
	require.NoError(t, err)
	return f
}

func TestFunctionDefinition(t *testing.T) {
	f := affineFunction(t, "AffineFn")
	defer f.Close()
	assert.Equal(t, "AffineFn", f.Name())

	def, err := f.FunctionDef()
	require.NoError(t, err)
	sig := def.GetSignature()
	assert.Equal(t, "AffineFn", sig.GetName())
	assert.Equal(t, "x*a+1 and x-a", sig.GetDescription())
	var ins, outs []string
	for _, a := range sig.GetInputArg() {
		ins = append(ins, a.GetName())
	}
	for _, a := range sig.GetOutputArg() {
		outs = append(outs, a.GetName())
	}
	assert.Equal(t, []string{"x", "a"}, ins)
	assert.Equal(t, []string{"y", "diff"}, outs)
	assert.False(t, sig.GetIsStateful())
	assert.NotEmpty(t, def.GetNodeDef())

	// A FunctionDef comes back as an equal function.
	f2, err := FunctionFromDef(def)
	require.NoError(t, err)
	defer f2.Close()
	assert.Equal(t, "AffineFn", f2.Name())
	def2, err := f2.FunctionDef()
	require.NoError(t, err)
	assert.Equal(t, len(def.GetNodeDef()), len(def2.GetNodeDef()))

	// A hashed name keeps the prefix.
	body := NewGraph()
	defer body.Close()
	x := placeholderOp(t, body, "x", dtypes.Float, UnknownShape())
	neg, err := body.NewOperation("Neg", "neg").AddInput(x).Finish()
	require.NoError(t, err)
	h, err := GraphToFunction(body, "NegFn", []Output{x}, []Output{neg.Output(0)}, &FunctionOptions{AppendHashToName: true})
	require.NoError(t, err)
	defer h.Close()
	assert.Regexp(t, `^NegFn_[A-Za-z0-9_-]+$`, h.Name())

	// Close is idempotent and a closed function says so.
	require.NoError(t, f2.Close())
	require.NoError(t, f2.Close())
	assert.Equal(t, "", f2.Name())
	_, err = f2.FunctionDef()
	assert.Error(t, err)
}

// A function copied into another graph runs through PartitionedCall, twice.
func TestFunctionCalledWithPartitionedCall(t *testing.T) {
	f := affineFunction(t, "AffineFn")
	defer f.Close()

	g := NewGraph()
	defer g.Close()
	require.NoError(t, g.AddFunction(f, nil))
	require.NoError(t, g.AddFunction(f, nil), "adding the same function again is a no-op")
	fs, err := g.Functions()
	require.NoError(t, err)
	require.Len(t, fs, 1)
	assert.Equal(t, "AffineFn", fs[0].Name())
	require.NoError(t, fs[0].Close())

	x := placeholderOp(t, g, "x", dtypes.Float, MakeShape(3))
	a := constOp(t, g, "a", []int64{3}, 2, 3, 4)
	call := func(name string, in0, in1 Output) *Operation {
		op, err := g.NewOperation("PartitionedCall", name).
			AddInputList([]Output{in0, in1}).
			SetAttr("Tin", []DataType{dtypes.Float, dtypes.Float}).
			SetAttr("Tout", []DataType{dtypes.Float, dtypes.Float}).
			SetAttr("f", Func{Name: "AffineFn"}).
			Finish()
		require.NoError(t, err)
		return op
	}
	c1 := call("call1", x, a.Output(0))
	c2 := call("call2", c1.Output(0), c1.Output(1)) // chained: a second call on the first's results
	assert.Equal(t, 2, c1.NumOutputs())

	s, err := NewSession(g, nil)
	require.NoError(t, err)
	defer s.Close()
	in, err := NewTensor(dtypes.Float, []int64{3}, f32bytes(1, 2, 3))
	require.NoError(t, err)
	defer in.Close()
	out, err := s.Run(map[Output]*Tensor{x: in}, []Output{c1.Output(0), c1.Output(1), c2.Output(0), c2.Output(1)}, nil)
	require.NoError(t, err)
	for _, o := range out {
		defer o.Close()
	}
	// y1 = x*a+1 = [3 7 13], d1 = x-a = [-1 -1 -1]; y2 = y1*d1+1, d2 = y1-d1.
	assert.Equal(t, []float32{3, 7, 13}, bytesf32(out[0].Data()))
	assert.Equal(t, []float32{-1, -1, -1}, bytesf32(out[1].Data()))
	assert.Equal(t, []float32{-2, -6, -12}, bytesf32(out[2].Data()))
	assert.Equal(t, []float32{4, 8, 14}, bytesf32(out[3].Data()))
}

func TestFunctionErrors(t *testing.T) {
	body := NewGraph()
	defer body.Close()
	x := placeholderOp(t, body, "x", dtypes.Float, UnknownShape())
	neg, err := body.NewOperation("Neg", "neg").AddInput(x).Finish()
	require.NoError(t, err)
	var tfErr *Error

	// Output names must match [a-z][a-z0-9_]*.
	_, err = GraphToFunction(body, "BadOutName", []Output{x}, []Output{neg.Output(0)},
		&FunctionOptions{OutputNames: []string{"Bad-Name"}})
	require.Error(t, err)
	require.True(t, errors.As(err, &tfErr))
	assert.Equal(t, "BadOutName", tfErr.Op)
	assert.Contains(t, err.Error(), "Bad-Name")

	// Names TensorFlow would take but that make a broken FunctionDef.
	for _, n := range []string{"", "has space", "1st"} {
		_, err = GraphToFunction(body, n, []Output{x}, []Output{neg.Output(0)}, nil)
		assert.ErrorContains(t, err, "function name", "name %q", n)
	}
	_, err = GraphToFunction(body, "TwoOutNames", []Output{x}, []Output{neg.Output(0), x},
		&FunctionOptions{OutputNames: []string{"y", "y"}})
	assert.ErrorContains(t, err, `output name "y" is used twice`)

	// Input names are derived from the operations' names; the same tensor twice is refused.
	_, err = GraphToFunction(body, "DupInput", []Output{x, x}, []Output{neg.Output(0)}, nil)
	require.Error(t, err)
	require.True(t, errors.As(err, &tfErr))
	assert.Equal(t, "DupInput", tfErr.Op)
	assert.Contains(t, err.Error(), "x:0")
	b2 := NewGraph()
	defer b2.Close()
	x2 := placeholderOp(t, b2, "X-2/in", dtypes.Float, UnknownShape())
	y2 := placeholderOp(t, b2, "x_2_in", dtypes.Float, UnknownShape())
	sum2 := binaryOp(t, b2, "AddV2", "sum", x2, y2)
	f, err := GraphToFunction(b2, "Normalised", []Output{x2, y2}, []Output{sum2}, nil)
	require.NoError(t, err)
	def, err := f.FunctionDef()
	require.NoError(t, err)
	require.Len(t, def.GetSignature().GetInputArg(), 2)
	assert.Equal(t, "x_2_in", def.GetSignature().GetInputArg()[0].GetName())
	assert.NotEqual(t, "x_2_in", def.GetSignature().GetInputArg()[1].GetName())
	require.NoError(t, f.Close())
	// An input or output of another graph.
	_, err = GraphToFunction(body, "Foreign", []Output{x2}, []Output{neg.Output(0)}, nil)
	assert.ErrorContains(t, err, "another graph")
	_, err = GraphToFunction(body, "Foreign", []Output{x}, []Output{sum2}, nil)
	assert.ErrorContains(t, err, "another graph")

	// Wrong number of output names, nil outputs: caught before the C API.
	_, err = GraphToFunction(body, "F", []Output{x}, []Output{neg.Output(0)}, &FunctionOptions{OutputNames: []string{"a", "b"}})
	assert.ErrorContains(t, err, "2 output names for 1 outputs")
	_, err = GraphToFunction(body, "F", []Output{x}, []Output{{}}, nil)
	assert.ErrorContains(t, err, "output 0")

	// An explicit body: enough with both inputs, an error naming the
	// function and the missing tensor with one.
	b3 := NewGraph()
	defer b3.Close()
	p := placeholderOp(t, b3, "p", dtypes.Float, UnknownShape())
	q := placeholderOp(t, b3, "q", dtypes.Float, UnknownShape())
	sum := binaryOp(t, b3, "AddV2", "sum", p, q)
	_ = binaryOp(t, b3, "Sub", "unused", p, q)
	only := &FunctionOptions{Operations: []*Operation{sum.Op}}
	f3, err := GraphToFunction(b3, "Subset", []Output{p, q}, []Output{sum}, only)
	require.NoError(t, err)
	def3, err := f3.FunctionDef()
	require.NoError(t, err)
	require.Len(t, def3.GetNodeDef(), 1, "only the listed operation")
	require.NoError(t, f3.Close())
	_, err = GraphToFunction(b3, "MissingInput", []Output{p}, []Output{sum}, only)
	require.Error(t, err)
	require.True(t, errors.As(err, &tfErr))
	assert.Equal(t, "MissingInput", tfErr.Op)
	assert.Contains(t, err.Error(), "q:0")

	// Calling a function the graph does not hold names it.
	g := NewGraph()
	defer g.Close()
	in := constOp(t, g, "in", nil, 1)
	_, err = g.NewOperation("PartitionedCall", "call").AddInputList([]Output{in.Output(0)}).
		SetAttr("Tin", []DataType{dtypes.Float}).SetAttr("Tout", []DataType{dtypes.Float}).
		SetAttr("f", Func{Name: "NoSuchFunction"}).Finish()
	if err == nil {
		// Shape inference may not look the function up; running it must fail.
		s, serr := NewSession(g, nil)
		require.NoError(t, serr)
		defer s.Close()
		_, err = s.Run(nil, []Output{g.Operation("call").Output(0)}, nil)
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NoSuchFunction")

	// A different function under a name the graph already holds.
	f1, err := GraphToFunction(body, "Same", []Output{x}, []Output{neg.Output(0)}, nil)
	require.NoError(t, err)
	defer f1.Close()
	f2, err := GraphToFunction(body, "Same", []Output{x}, []Output{x}, nil)
	require.NoError(t, err)
	defer f2.Close()
	require.NoError(t, g.AddFunction(f1, nil))
	err = g.AddFunction(f2, nil)
	require.Error(t, err)
	require.True(t, errors.As(err, &tfErr))
	assert.Equal(t, "Same", tfErr.Op)

	// Closed or nil functions are errors, not crashes.
	require.NoError(t, f2.Close())
	assert.Error(t, g.AddFunction(f2, nil))
	assert.Error(t, g.AddFunction(nil, nil))

	// TensorFlow imports and adds a FunctionDef that uses an unknown op;
	// calling it fails at run time, naming the op, without a crash.
	def, err = f1.FunctionDef()
	require.NoError(t, err)
	def.Signature.Name = "Broken"
	def.NodeDef[0].Op = "NoSuchOp"
	broken, err := FunctionFromDef(def)
	require.NoError(t, err)
	defer broken.Close()
	g2 := NewGraph()
	defer g2.Close()
	require.NoError(t, g2.AddFunction(broken, nil))
	in2 := constOp(t, g2, "in", nil, 1)
	call, err := g2.NewOperation("PartitionedCall", "call").AddInputList([]Output{in2.Output(0)}).
		SetAttr("Tin", []DataType{dtypes.Float}).SetAttr("Tout", []DataType{dtypes.Float}).
		SetAttr("f", Func{Name: "Broken"}).Finish()
	if err == nil {
		s, serr := NewSession(g2, nil)
		require.NoError(t, serr)
		defer s.Close()
		_, err = s.Run(nil, []Output{call.Output(0)}, nil)
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NoSuchOp")
}

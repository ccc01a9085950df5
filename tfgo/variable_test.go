package tfgo

import (
	"fmt"
	"math"
	"math/rand"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func varNames(vs []*Variable) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name()
	}
	return out
}

func varStrings(t *testing.T, tn *Tensor) []string {
	t.Helper()
	v, err := Value(tn)
	require.NoError(t, err)
	return v.([]string)
}

// Variables are named, shared and listed as Python TensorFlow names and
// lists the same variables built in a graph (tf.Variable in name scopes,
// tf.compat.v1.global_variables / trainable_variables).
func TestVariableNamesAndCollectionsMatchPython(t *testing.T) {
	s := NewScope()
	d := s.SubScope("dense")
	k := NewVariable(d, "kernel", Float, []int64{2, 3}, GlorotUniform(1))
	NewVariable(d, "bias", Float, []int64{3}, Zeros())
	NewVariable(s.SubScope("dense"), "kernel", Float, []int64{3, 3}, GlorotUniform(2))
	NewVariable(d, "kernel", Float, []int64{2, 3}, Ones())
	step := NewVariable(s, "step", Int64, nil, Zeros(), Trainable(false))
	require.NoError(t, s.Err())

	all := Variables(s)
	assert.Equal(t, varNames(all), varNames(Variables(d)), "one collection per graph, whatever the scope")
	assert.Equal(t, "dense/kernel", k.Name())
	assert.Equal(t, []int64{2, 3}, k.Shape())
	assert.Equal(t, Float, k.DType())
	assert.True(t, k.Trainable())
	assert.False(t, step.Trainable())
	assert.Equal(t, Int64, step.DType())
	assert.Equal(t, "VarHandleOp", k.Handle().Op.Type())
	assert.Equal(t, Resource, k.Handle().DataType())
	assert.Equal(t, "AssignVariableOp", k.Initializer().Type())
	assert.Equal(t, "ReadVariableOp", k.Value().Op.Type())
	sh, err := k.Value().Shape()
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 3}, sh.Dims, "the read's static shape comes from the handle")

	var handles, shared, inits, reads, trainable []string
	for _, v := range all {
		handles = append(handles, v.Handle().Op.Name())
		nd, err := v.Handle().Op.NodeDef()
		require.NoError(t, err)
		shared = append(shared, string(nd.Attr["shared_name"].GetS()))
		assert.Empty(t, nd.Attr["container"].GetS())
		inits = append(inits, v.Initializer().Name())
		reads = append(reads, v.Value().Op.Name())
	}
	for _, v := range TrainableVariables(s) {
		trainable = append(trainable, v.Name())
	}
	init := GlobalVariablesInitializer(s)
	require.NoError(t, s.Err())
	assert.Equal(t, "init", init.Name())
	var deps []string
	for _, c := range init.ControlInputs() {
		deps = append(deps, c.Name())
	}
	assert.ElementsMatch(t, inits, deps, "init runs every initializer")

	ref := python(t, `
g = tf.Graph()
with g.as_default():
    with tf.name_scope("dense") as d:
        tf.Variable(tf.zeros([2, 3]), name="kernel")
        tf.Variable(tf.zeros([3]), name="bias")
    with tf.name_scope("dense"):
        tf.Variable(tf.zeros([3, 3]), name="kernel")
    with tf.name_scope(d):
        tf.Variable(tf.ones([2, 3]), name="kernel")
    tf.Variable(tf.constant(0, tf.int64), name="step", trainable=False)
    vs = tf.compat.v1.global_variables()
    outputs["handles"] = [v.handle.op.name for v in vs]
    outputs["shared"] = [v.handle.op.get_attr("shared_name") for v in vs]
    outputs["inits"] = [v.initializer.name for v in vs]
    outputs["reads"] = [v._graph_element.op.name for v in vs]
    outputs["trainable"] = [v.op.name for v in tf.compat.v1.trainable_variables()]
    outputs["init"] = tf.compat.v1.global_variables_initializer().name
`, nil)
	assert.Equal(t, []string{"dense/kernel", "dense/bias", "dense_1/kernel", "dense/kernel_1", "step"}, handles)
	assert.Equal(t, varStrings(t, ref["handles"]), handles, "VarHandleOp names")
	assert.Equal(t, varStrings(t, ref["shared"]), shared, "shared_name = the full name")
	assert.Equal(t, varStrings(t, ref["inits"]), inits, "initializer op names")
	assert.Equal(t, varStrings(t, ref["reads"]), reads, "the construction-time read")
	assert.Equal(t, varStrings(t, ref["trainable"]), trainable, "trainable variables in order")
	initName, err := Value(ref["init"])
	require.NoError(t, err)
	assert.Equal(t, initName, init.Name())
}

// Initialize, read, assign, assign_add and assign_sub give what a Python
// tf.Variable gives for the same values; Read in a scope depending on an
// update sees the update in the same run.
func TestVariableAssignMatchesPython(t *testing.T) {
	r := rand.New(rand.NewSource(20))
	a, b, c, d := compRandTensor(t, r, 1, 2, 3), compRandTensor(t, r, 1, 2, 3), compRandTensor(t, r, 1, 2, 3), compRandTensor(t, r, 1, 2, 3)

	s := NewScope()
	v := NewVariable(s.SubScope("layer"), "w", Float, []int64{2, 3}, InitialValue(a))
	step := NewVariable(s, "step", Int64, nil, Zeros(), Trainable(false))
	pv := Placeholder(s, Float, 2, 3)
	assign := v.Assign(s, pv)
	afterAssign := v.Read(s.WithControlDependencies(assign))
	add := v.AssignAdd(s, Const(s, c))
	sub := v.AssignSub(s, Const(s, d))
	inc := step.AssignAdd(s, Const(s, int64(1)))
	init := GlobalVariablesInitializer(s)
	require.NoError(t, s.Err())
	assert.Equal(t, "AssignVariableOp", assign.Type())
	assert.Equal(t, "AssignAddVariableOp", add.Type())
	assert.Equal(t, "AssignSubVariableOp", sub.Type())

	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	run := func(feeds map[Output]any, fetch []Output, targets ...*Operation) []*Tensor {
		t.Helper()
		out, err := sess.Run(feeds, fetch, targets...)
		require.NoError(t, err)
		return out
	}
	run(nil, nil, init)
	initial := run(nil, []Output{v.Value(), step.Value()})
	assigned := run(map[Output]any{pv: b}, []Output{afterAssign})[0]
	run(nil, nil, add)
	added := run(nil, []Output{v.Value()})[0]
	run(nil, nil, sub)
	run(nil, nil, inc)
	run(nil, nil, inc)
	steps := run(nil, []Output{step.Value()})[0]
	final := run(nil, []Output{v.Value()})[0]

	ref := python(t, `
v = tf.Variable(inputs["a"])
step = tf.Variable(tf.constant(0, tf.int64), trainable=False)
outputs["initial"] = v.read_value()
v.assign(inputs["b"]); outputs["assigned"] = v.read_value()
v.assign_add(inputs["c"]); outputs["added"] = v.read_value()
v.assign_sub(inputs["d"]); outputs["subbed"] = v.read_value()
step.assign_add(1); step.assign_add(1); outputs["steps"] = step.read_value()
`, map[string]*Tensor{"a": a, "b": b, "c": c, "d": d})
	compAssertClose(t, ref["initial"], initial[0], 0, "initial value")
	compAssertClose(t, ref["assigned"], assigned, 0, "after assign (read depending on it)")
	compAssertClose(t, ref["added"], added, 1e-6, "after assign_add")
	compAssertClose(t, ref["subbed"], final, 1e-6, "after assign_sub")
	z, err := Value(initial[1])
	require.NoError(t, err)
	assert.Equal(t, int64(0), z)
	want, err := Value(ref["steps"])
	require.NoError(t, err)
	got, err := Value(steps)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, int64(2), got)
}

// Every initializer gives exactly what keras.initializers gives for the
// same arguments, seed, shape and dtype (Keras 3's TensorFlow backend uses
// the same stateless ops with the same seed derivation).
func TestInitializerMatchesKerasExactly(t *testing.T) {
	type initCase struct {
		name  string
		init  Initializer
		keras string
		shape []int64
		dtype DataType
	}
	cases := []initCase{
		{"zeros", Zeros(), "keras.initializers.Zeros()", []int64{4, 5}, Float},
		{"ones", Ones(), "keras.initializers.Ones()", []int64{7}, Double},
		{"constant", Constant(2.5), "keras.initializers.Constant(2.5)", []int64{3, 2}, Float},
		{"glorot_uniform", GlorotUniform(42), "keras.initializers.GlorotUniform(seed=42)", []int64{64, 32}, Float},
		{"glorot_uniform_conv", GlorotUniform(-3), "keras.initializers.GlorotUniform(seed=-3)", []int64{3, 3, 8, 16}, Float},
		{"glorot_uniform_f64", GlorotUniform(42), "keras.initializers.GlorotUniform(seed=42)", []int64{64, 32}, Double},
		{"glorot_normal", GlorotNormal(5), "keras.initializers.GlorotNormal(seed=5)", []int64{20, 30}, Float},
		{"he_normal", HeNormal(7), "keras.initializers.HeNormal(seed=7)", []int64{128, 16}, Float},
		{"he_uniform", HeUniform(8), "keras.initializers.HeUniform(seed=8)", []int64{5, 5, 3, 4}, Float},
		{"truncated_normal", TruncatedNormalInitializer(0.5, 2, 3), "keras.initializers.TruncatedNormal(mean=0.5, stddev=2.0, seed=3)", []int64{50, 40}, Float},
		{"random_normal", RandomNormal(-1, 0.25, 11), "keras.initializers.RandomNormal(mean=-1.0, stddev=0.25, seed=11)", []int64{1000}, Float},
		{"random_normal_f64", RandomNormal(-1, 0.25, 1<<40), "keras.initializers.RandomNormal(mean=-1.0, stddev=0.25, seed=1<<40)", []int64{10, 10}, Double},
		{"variance_scaling", VarianceScaling(0.3, "fan_out", "untruncated_normal", 9), `keras.initializers.VarianceScaling(scale=0.3, mode="fan_out", distribution="untruncated_normal", seed=9)`, []int64{6, 9}, Float},
		{"variance_scaling_scalar", VarianceScaling(1, "fan_avg", "uniform", 1), `keras.initializers.VarianceScaling(mode="fan_avg", distribution="uniform", seed=1)`, []int64{}, Float},
	}
	s := NewScope()
	fetch := make([]Output, len(cases))
	for i, c := range cases {
		fetch[i] = NewVariable(s, c.name, c.dtype, c.shape, c.init).Value()
	}
	init := GlobalVariablesInitializer(s)
	got := compRun(t, s, nil, fetch, init)

	var code strings.Builder
	code.WriteString("import keras\n")
	for _, c := range cases {
		dims := make([]string, len(c.shape))
		for i, d := range c.shape {
			dims[i] = strconv.FormatInt(d, 10) + ","
		}
		fmt.Fprintf(&code, "outputs[%q] = %s((%s), dtype=%q)\n", c.name, c.keras, strings.Join(dims, " "), c.dtype.String())
	}
	ref := python(t, code.String(), nil)
	for i, c := range cases {
		compAssertClose(t, ref[c.name], got[i], 0, c.name)
	}
}

func meanStd(xs []float32) (mean, std float64) {
	for _, x := range xs {
		mean += float64(x)
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)))
}

// The distributions have the moments and bounds Keras documents, on a
// large shape (n = 131072 samples: the sample mean is within 5σ/√n and the
// sample std within 2% with overwhelming probability).
func TestInitializerStatistics(t *testing.T) {
	shape := []int64{512, 256}
	fanIn, fanOut := 512.0, 256.0
	n := fanIn * fanOut
	trunc := 0.87962566103423978
	glorotLimit := math.Sqrt(6 / (fanIn + fanOut))
	heStd := math.Sqrt(2 / fanIn)
	cases := []struct {
		name       string
		init       Initializer
		mean, std  float64
		lo, hi     float64
		wantBounds bool
	}{
		{"random_normal", RandomNormal(1, 2, 1), 1, 2, 0, 0, false},
		{"truncated_normal", TruncatedNormalInitializer(-0.5, 3, 2), -0.5, 3 * trunc, -0.5 - 6, -0.5 + 6, true},
		{"glorot_uniform", GlorotUniform(3), 0, glorotLimit / math.Sqrt(3), -glorotLimit, glorotLimit, true},
		{"he_normal", HeNormal(4), 0, heStd, -2 * heStd / trunc, 2 * heStd / trunc, true},
	}
	s := NewScope()
	fetch := make([]Output, len(cases))
	for i, c := range cases {
		fetch[i] = NewVariable(s, c.name, Float, shape, c.init).Value()
	}
	got := compRun(t, s, nil, fetch, GlobalVariablesInitializer(s))
	for i, c := range cases {
		xs, err := Float32s(got[i])
		require.NoError(t, err)
		require.Len(t, xs, int(n))
		mean, std := meanStd(xs)
		t.Logf("%s: mean %.5f (want %.5f), std %.5f (want %.5f)", c.name, mean, c.mean, std, c.std)
		assert.InDelta(t, c.mean, mean, 5*c.std/math.Sqrt(n), "%s mean", c.name)
		assert.InEpsilon(t, c.std, std, 0.02, "%s std", c.name)
		if c.wantBounds {
			for _, x := range xs {
				if float64(x) < c.lo || float64(x) > c.hi {
					t.Fatalf("%s: %g outside [%g, %g]", c.name, x, c.lo, c.hi)
				}
			}
		}
	}
}

// A seeded initializer gives the same values in two graphs and sessions,
// and in two variables of one graph (as a Keras integer seed does); another
// seed gives other values.
func TestInitializerSeedDeterminism(t *testing.T) {
	build := func(seed int64) []*Tensor {
		s := NewScope()
		a := NewVariable(s, "a", Float, []int64{16, 8}, HeNormal(seed))
		b := NewVariable(s, "b", Float, []int64{16, 8}, HeNormal(seed))
		u := NewVariable(s, "u", Float, []int64{16, 8}, GlorotUniform(seed))
		return compRun(t, s, nil, []Output{a.Value(), b.Value(), u.Value()}, GlobalVariablesInitializer(s))
	}
	first, second, other := build(99), build(99), build(100)
	for i := range first {
		assert.Equal(t, first[i].Data(), second[i].Data(), "variable %d: same seed, same values across sessions", i)
		assert.NotEqual(t, first[i].Data(), other[i].Data(), "variable %d: another seed, other values", i)
	}
	assert.Equal(t, first[0].Data(), first[1].Data(), "same seed in one graph, same values")
}

// Wrong initial values, wrong update dtypes and misuse are errors naming
// the op; nothing panics.
func TestVariableErrors(t *testing.T) {
	cases := map[string]struct {
		build func(s *Scope)
		op    string
		msg   string
	}{
		"initial value of the wrong shape": {func(s *Scope) {
			NewVariable(s.SubScope("dense"), "kernel", Float, []int64{2, 3}, InitialValue([][]float32{{1, 2}, {3, 4}, {5, 6}}))
		}, "dense/kernel/Assign", "shape"},
		"initial value of the wrong dtype": {func(s *Scope) {
			NewVariable(s, "w", Float, []int64{2}, InitialValue([]float64{1, 2}))
		}, "w/Assign", "float64"},
		"initializer func of the wrong dtype": {func(s *Scope) {
			NewVariable(s, "w", Float, []int64{2}, InitializerFunc(func(s *Scope, shape []int64, _ DataType) Output {
				return Zeros().Init(s, shape, Int32)
			}))
		}, "w/Assign", "int32"},
		"random initializer of an int variable": {func(s *Scope) {
			NewVariable(s, "ids", Int32, []int64{4}, GlorotUniform(1))
		}, "ids/Initializer/stateless_random_uniform", "float dtype"},
		"bad variance scaling mode": {func(s *Scope) {
			NewVariable(s, "w", Float, []int64{4}, VarianceScaling(1, "fan_sideways", "uniform", 1))
		}, "w/Initializer/VarianceScaling", "fan_sideways"},
		"unknown dimension": {func(s *Scope) {
			NewVariable(s.SubScope("x"), "w", Float, []int64{-1, 4}, Zeros())
		}, "x/w", "unknown"},
		"nil initializer": {func(s *Scope) { NewVariable(s, "w", Float, []int64{1}, nil) }, "w", "nil initializer"},
		"assign of the wrong dtype": {func(s *Scope) {
			v := NewVariable(s, "w", Float, []int64{2}, Zeros())
			v.Assign(s.SubScope("train"), Const(s, []float64{1, 2}))
		}, "train/AssignVariableOp", "DT_DOUBLE vs. DT_FLOAT"},
		"assign of the wrong shape": {func(s *Scope) {
			v := NewVariable(s, "w", Float, []int64{2}, Zeros())
			v.Assign(s, Const(s, []float32{1, 2, 3}))
		}, "AssignVariableOp", "Shapes are [2] and [3]"},
		"assign_add of the wrong dtype": {func(s *Scope) {
			v := NewVariable(s, "w", Float, []int64{2}, Zeros())
			v.AssignAdd(s, Const(s, []int32{1, 2}))
		}, "AssignAddVariableOp", "DT_INT32 vs. DT_FLOAT"},
		"using a variable whose creation failed": {func(s *Scope) {
			v := NewVariable(s, "w", Float, []int64{2}, nil)
			assert.Nil(t, v.Value().Op)
			assert.Nil(t, v.Read(s).Op)
			assert.Nil(t, v.Assign(s, Const(s, []float32{1, 2})))
			assert.Nil(t, v.AssignSub(s, Const(s, []float32{1, 2})))
			assert.Empty(t, Variables(s), "a failed variable is not collected")
		}, "w", "nil initializer"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := NewScope()
			require.NotPanics(t, func() { c.build(s) })
			_, err := NewSession(s, SessionOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), `op "`+c.op+`"`)
			assert.Contains(t, err.Error(), c.msg)
			t.Log(err)
		})
	}
}

// A value whose shape is known only at run time is assigned (the kernel
// checks nothing more, as in TensorFlow), and a read depending on the
// assignment sees it in the same run.
func TestVariableAssignRuntimeShape(t *testing.T) {
	s := NewScope()
	v := NewVariable(s, "w", Float, []int64{2}, Zeros())
	p := Placeholder(s, Float)
	assign := v.Assign(s, p)
	read := v.Read(s.WithControlDependencies(assign))
	require.NoError(t, s.Err())
	out := compRun(t, s, map[Output]any{p: []float32{1, 2}}, []Output{read}, v.Initializer())
	got, err := Float32s(out[0])
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2}, got)
}

package tfgo

import (
	"errors"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func cfTensors(t *testing.T, vals map[string]any) map[string]*Tensor {
	t.Helper()
	out := map[string]*Tensor{}
	for k, v := range vals {
		tn, err := NewTensor(v)
		require.NoError(t, err)
		out[k] = tn
	}
	return out
}

func cfRun(t *testing.T, s *Scope, feeds map[Output]any, fetches ...Output) []*Tensor {
	t.Helper()
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	out, err := sess.Run(feeds, fetches)
	require.NoError(t, err)
	return out
}

// (a) A function traced once and called twice, its weights captured from
// the calling graph, equals the same tf.function in Python.
func TestFunctionCalledTwiceMatchesPython(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	w, b, x := toFloat32(randomMatrix(r, 4, 4)), toFloat32(randomMatrix(r, 1, 4))[0], toFloat32(randomMatrix(r, 3, 4))

	s := NewScope()
	pw := Placeholder(s, Float, 4, 4)
	cb := Const(s, b)
	dense, err := DefineFunction(s, "dense_tanh", []TensorSpec{{Float, MakeShape(-1, 4)}},
		func(fs *Scope, args []Output) []Output {
			y := MatMul(fs, args[0], Capture(fs, pw))
			y = BiasAdd(fs, y, Capture(fs, cb))
			return []Output{Tanh(fs, y)}
		})
	require.NoError(t, err)
	assert.Equal(t, "dense_tanh", dense.Name())
	assert.Equal(t, []TensorSpec{{Float, MakeShape(-1, 4)}}, dense.Outputs)
	assert.Equal(t, []Output{pw, cb}, dense.Captures)
	assert.False(t, dense.Stateful)
	def, err := dense.FunctionDef()
	require.NoError(t, err)
	assert.Len(t, def.GetSignature().GetInputArg(), 3, "the argument and two captures")

	px := Placeholder(s, Float, -1, 4)
	h1 := Call(s, dense, px)
	require.Len(t, h1, 1)
	h2 := Call(s, dense, h1[0])
	require.NoError(t, s.Err())
	assert.Equal(t, "PartitionedCall", h1[0].Op.Type())
	sh, err := h2[0].Shape()
	require.NoError(t, err)
	assert.Equal(t, MakeShape(-1, 4), sh, "shapes are inferred through the call")
	fns, err := s.Graph().Functions()
	require.NoError(t, err)
	require.Len(t, fns, 1)
	assert.Equal(t, "dense_tanh", fns[0].Name())

	got := cfRun(t, s, map[Output]any{px: x, pw: w}, h1[0], h2[0])
	ref := python(t, `
w, b = tf.constant(inputs["w"]), tf.constant(inputs["b"])
@tf.function
def dense_tanh(x):
    return tf.tanh(x @ w + b)
outputs["h1"] = dense_tanh(inputs["x"])
outputs["h2"] = dense_tanh(outputs["h1"])
`, cfTensors(t, map[string]any{"w": w, "b": b, "x": x}))
	allClose(t, "first call", ref["h1"], got[0], ulps(ref["h1"].DataType(), 4))
	allClose(t, "second call", ref["h2"], got[1], ulps(ref["h2"].DataType(), 4))
}

// A body with a stateful op is called through StatefulPartitionedCall.
func TestFunctionStatefulCall(t *testing.T) {
	s := NewScope()
	noise, err := DefineFunction(s, "noise", []TensorSpec{{Int32, MakeShape(2)}},
		func(fs *Scope, args []Output) []Output {
			return []Output{RandomUniform(fs, args[0], Float)}
		})
	require.NoError(t, err)
	assert.True(t, noise.Stateful)
	out := Call(s, noise, Const(s, []int32{2, 3}))
	require.NoError(t, s.Err())
	assert.Equal(t, "StatefulPartitionedCall", out[0].Op.Type())

	// Loops and conditionals with a stateful function use While and If.
	loop := While(s, []Output{Const(s, int32(0)), Const(s, float32(0))},
		func(fs *Scope, v []Output) Output { return Less(fs, v[0], Const(fs, int32(4))) },
		func(fs *Scope, v []Output) []Output {
			u := RandomUniform(fs, Const(fs, []int32{}), Float)
			return []Output{AddV2(fs, v[0], Const(fs, int32(1))), AddV2(fs, v[1], u)}
		}, WhileOptions{})
	cond := If(s, Const(s, true), nil,
		func(fs *Scope, _ []Output) []Output { return Call(fs, noise, Const(fs, []int32{1, 1})) },
		func(fs *Scope, _ []Output) []Output { return []Output{Const(fs, [][]float32{{-1}})} })
	require.NoError(t, s.Err())
	assert.Equal(t, "While", loop[0].Op.Type())
	assert.Equal(t, "If", cond[0].Op.Type())

	got := cfRun(t, s, nil, out[0], loop[1], cond[0])
	assert.Equal(t, []int64{2, 3}, got[0].Shape())
	v, err := Float32s(got[0])
	require.NoError(t, err)
	for _, f := range v {
		assert.True(t, f >= 0 && f < 1)
	}
	sum, err := Float32s(got[1])
	require.NoError(t, err)
	assert.True(t, sum[0] >= 0 && sum[0] < 4)
	c, err := Float32s(got[2])
	require.NoError(t, err)
	assert.True(t, c[0] >= 0 && c[0] < 1, "the then branch ran")
}

// (b) x = x*a + b repeated n times (n fed at run time), accumulating the
// iterates, equals tf.while_loop in a tf.function.
func TestWhileAffineRecurrenceMatchesPython(t *testing.T) {
	x0, a, b := []float64{1, -0.5, 2}, []float64{0.9, 1.1, -0.7}, []float64{0.25, -1, 0.5}
	s := NewScope()
	px := Placeholder(s, Double, 3)
	pa := Placeholder(s, Double, 3)
	cb := Const(s, b)
	pn := Placeholder(s, Int32)
	out := While(s, []Output{Const(s, int32(0)), px, ZerosLike(s, px)},
		func(fs *Scope, v []Output) Output {
			return Less(fs, v[0], Capture(fs, pn))
		},
		func(fs *Scope, v []Output) []Output {
			x := AddV2(fs, Mul(fs, v[1], Capture(fs, pa)), Capture(fs, cb))
			return []Output{AddV2(fs, v[0], Const(fs, int32(1))), x, AddV2(fs, v[2], x)}
		}, WhileOptions{})
	require.NoError(t, s.Err())
	require.Len(t, out, 3)
	assert.Equal(t, "StatelessWhile", out[0].Op.Type())
	assert.Equal(t, 3+3, out[0].Op.NumOutputs(), "the captures a, b and n ride along as loop variables")
	sh, err := out[1].Shape()
	require.NoError(t, err)
	assert.Equal(t, MakeShape(3), sh)

	ns := []int32{0, 1, 5, 17}
	ref := python(t, `
a, b = tf.constant(inputs["a"]), tf.constant(inputs["b"])
@tf.function
def recur(x, n):
    return tf.while_loop(lambda i, x, acc: i < n,
                         lambda i, x, acc: (i + 1, x * a + b, acc + (x * a + b)),
                         [tf.constant(0), x, tf.zeros_like(x)])
for n in inputs["ns"]:
    i, x, acc = recur(tf.constant(inputs["x"]), tf.constant(n))
    outputs[f"i{n}"], outputs[f"x{n}"], outputs[f"acc{n}"] = i, x, acc
`, cfTensors(t, map[string]any{"x": x0, "a": a, "b": b, "ns": ns}))
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	for _, n := range ns {
		got, err := sess.Run(map[Output]any{px: x0, pa: a, pn: n}, out)
		require.NoError(t, err)
		name := func(p string) string { return p + cfItoa(n) }
		is, err := Int32s(got[0])
		require.NoError(t, err)
		want, err := Int32s(ref[name("i")])
		require.NoError(t, err)
		assert.Equal(t, want, is)
		allClose(t, name("x"), ref[name("x")], got[1], ulps(ref[name("x")].DataType(), 4))
		allClose(t, name("acc"), ref[name("acc")], got[2], ulps(ref[name("acc")].DataType(), 4))
	}
}

func cfItoa(n int32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// (c) Greedy autoregressive decoding inside the graph: tok <- argmax(
// one_hot(tok, V) · W) for n steps, appending each token to a sequence
// that grows (shape invariant [None]), equals the same tf.while_loop.
func TestWhileGreedyDecodingMatchesPython(t *testing.T) {
	const V = 11
	r := rand.New(rand.NewSource(7))
	w := toFloat32(randomMatrix(r, V, V))
	s := NewScope()
	pw := Placeholder(s, Float, V, V)
	start := Placeholder(s, Int32)
	steps := Placeholder(s, Int32)
	seq0 := Reshape(s, start, Const(s, []int32{1}))

	dec := s.SubScope("decode")
	out := While(dec, []Output{Const(dec, int32(0)), start, seq0},
		func(fs *Scope, v []Output) Output { return Less(fs, v[0], Capture(fs, steps)) },
		func(fs *Scope, v []Output) []Output {
			oneHot := OneHot(fs, v[1], Const(fs, int32(V)), Const(fs, float32(1)), Const(fs, float32(0)))
			logits := MatMul(fs, ExpandDims(fs, oneHot, Const(fs, int32(0))), Capture(fs, pw))
			next := ArgMax(fs, logits, Const(fs, int32(1)), ArgMaxOutputType(Int32)) // [1]
			tok := Reshape(fs, next, Const(fs, []int32{}))
			seq := ConcatV2(fs, []Output{v[2], next}, Const(fs, int32(0)))
			return []Output{AddV2(fs, v[0], Const(fs, int32(1))), tok, seq}
		},
		WhileOptions{ShapeInvariants: []Shape{{}, {}, MakeShape(-1)}})
	require.NoError(t, s.Err())
	seq := out[2]
	sh, err := seq.Shape()
	require.NoError(t, err)
	assert.Equal(t, MakeShape(-1), sh, "the sequence's length is unknown until run time")
	assert.Equal(t, "decode/StatelessWhile", seq.Op.Name())
	shapes, err := seq.Op.Attr("output_shapes")
	require.NoError(t, err)
	assert.Equal(t, []Shape{{}, {}, MakeShape(-1), UnknownShape(), MakeShape(V, V)}, shapes,
		"the invariants, then the captured steps and W")

	type run struct{ start, steps int32 }
	runs := []run{{3, 0}, {3, 1}, {0, 7}, {5, 20}, {10, 33}}
	ref := python(t, `
W = tf.constant(inputs["w"])
V = W.shape[0]
@tf.function
def decode(start, steps):
    def body(i, tok, seq):
        logits = tf.one_hot(tok, V)[None, :] @ W
        nxt = tf.argmax(logits, axis=1, output_type=tf.int32)
        return i + 1, tf.reshape(nxt, []), tf.concat([seq, nxt], 0)
    _, _, seq = tf.while_loop(lambda i, tok, seq: i < steps, body,
                              [tf.constant(0), start, tf.reshape(start, [1])],
                              shape_invariants=[tf.TensorShape([]), tf.TensorShape([]), tf.TensorShape([None])])
    return seq
for k, (start, steps) in enumerate(inputs["runs"]):
    outputs[str(k)] = decode(tf.constant(start), tf.constant(steps))
`, cfTensors(t, map[string]any{"w": w, "runs": [][]int32{{3, 0}, {3, 1}, {0, 7}, {5, 20}, {10, 33}}}))

	// With a wrong output_shapes TensorFlow would fold Size to the static
	// length; the unknown dim keeps it a run-time value.
	size := Size(s, seq)
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	for k, rn := range runs {
		got, err := sess.Run(map[Output]any{pw: w, start: rn.start, steps: rn.steps}, []Output{seq, size})
		require.NoError(t, err)
		gotSeq, err := Int32s(got[0])
		require.NoError(t, err)
		wantSeq, err := Int32s(ref[cfItoa(int32(k))])
		require.NoError(t, err)
		assert.Equal(t, wantSeq, gotSeq, "start %d, %d steps", rn.start, rn.steps)
		assert.Len(t, gotSeq, int(rn.steps)+1)
		n, err := Int32s(got[1])
		require.NoError(t, err)
		assert.Equal(t, []int32{rn.steps + 1}, n)
	}

	// start has an unknown static shape: the loop checks at run time that
	// it is a scalar (EnsureShape), and so does Reshape to [1].
	_, err = sess.Run(map[Output]any{pw: w, start: []int32{1, 2}, steps: int32(3)}, []Output{out[1]})
	require.Error(t, err)
	var tfErr *Error
	require.True(t, errors.As(err, &tfErr))
	assert.Equal(t, InvalidArgument, tfErr.Code)
	assert.Contains(t, []string{"Reshape", "decode/EnsureShape"}, tfErr.Op)
}

// (d) If with two branches that capture, for both predicate values; an
// output whose length differs between the branches gets an unknown dim.
func TestIfMatchesPython(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	x, y := toFloat32(randomMatrix(r, 2, 3)), toFloat32(randomMatrix(r, 2, 3))
	s := NewScope()
	px := Placeholder(s, Float, 2, 3)
	cy := Const(s, y)
	pred := Placeholder(s, Bool)
	out := If(s, pred, []Output{px},
		func(fs *Scope, in []Output) []Output {
			flat := Reshape(fs, in[0], Const(fs, []int32{-1}))
			return []Output{AddV2(fs, Mul(fs, in[0], Const(fs, float32(2))), Capture(fs, cy)), flat}
		},
		func(fs *Scope, in []Output) []Output {
			flat := Reshape(fs, in[0], Const(fs, []int32{-1}))
			return []Output{Sub(fs, in[0], Capture(fs, cy)), ConcatV2(fs, []Output{flat, flat}, Const(fs, int32(0)))}
		})
	require.NoError(t, s.Err())
	require.Len(t, out, 2)
	assert.Equal(t, "StatelessIf", out[0].Op.Type())
	sh0, err := out[0].Shape()
	require.NoError(t, err)
	sh1, err := out[1].Shape()
	require.NoError(t, err)
	assert.Equal(t, MakeShape(2, 3), sh0)
	assert.Equal(t, MakeShape(-1), sh1, "6 in one branch, 12 in the other")

	ref := python(t, `
x, y = tf.constant(inputs["x"]), tf.constant(inputs["y"])
@tf.function
def f(p):
    flat = tf.reshape(x, [-1])
    return tf.cond(p, lambda: (x * 2 + y, flat), lambda: (x - y, tf.concat([flat, flat], 0)))
for p in (True, False):
    outputs[f"{p}0"], outputs[f"{p}1"] = f(tf.constant(p))
`, cfTensors(t, map[string]any{"x": x, "y": y}))
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	for _, p := range []bool{true, false} {
		got, err := sess.Run(map[Output]any{px: x, pred: p}, out)
		require.NoError(t, err)
		name := map[bool]string{true: "True", false: "False"}[p]
		allClose(t, name+"0", ref[name+"0"], got[0], ulps(ref[name+"0"].DataType(), 4))
		allClose(t, name+"1", ref[name+"1"], got[1], ulps(ref[name+"1"].DataType(), 4))
	}
}

// Loops nest: a While whose body runs an inner While (whose body captures
// a value two graphs out), an If and a call of a function of the root graph.
func TestNestedControlFlowMatchesPython(t *testing.T) {
	s := NewScope()
	n := Placeholder(s, Int32)
	scale := Placeholder(s, Float)
	square, err := DefineFunction(s, "square", []TensorSpec{{Float, Shape{}}},
		func(fs *Scope, a []Output) []Output { return []Output{Mul(fs, a[0], a[0])} })
	require.NoError(t, err)
	out := While(s, []Output{Const(s, int32(0)), Const(s, float32(0))},
		func(fs *Scope, v []Output) Output { return Less(fs, v[0], Capture(fs, n)) },
		func(fs *Scope, v []Output) []Output {
			i, acc := v[0], v[1]
			inner := While(fs, []Output{Const(fs, int32(0)), Const(fs, float32(0))},
				func(is *Scope, u []Output) Output { return Less(is, u[0], Capture(is, i)) },
				func(is *Scope, u []Output) []Output {
					j := Cast(is, u[0], Float)
					return []Output{
						AddV2(is, u[0], Const(is, int32(1))),
						AddV2(is, u[1], Mul(is, j, Capture(is, scale))),
					}
				}, WhileOptions{})
			even := Equal(fs, FloorMod(fs, i, Const(fs, int32(2))), Const(fs, int32(0)))
			acc = If(fs, even, []Output{acc, inner[1]},
				func(bs *Scope, in []Output) []Output { return []Output{AddV2(bs, in[0], in[1])} },
				func(bs *Scope, in []Output) []Output { return []Output{Sub(bs, in[0], in[1])} })[0]
			fi := Cast(fs, i, Float)
			acc = AddV2(fs, acc, Call(fs, square, fi)[0])
			return []Output{AddV2(fs, i, Const(fs, int32(1))), acc}
		}, WhileOptions{})
	require.NoError(t, s.Err())

	ref := python(t, `
@tf.function
def square(x):
    return x * x
@tf.function
def f(n, scale):
    def obody(i, acc):
        _, inner = tf.while_loop(lambda j, t: j < i,
                                 lambda j, t: (j + 1, t + tf.cast(j, tf.float32) * scale),
                                 [tf.constant(0), tf.constant(0.0)])
        acc = tf.cond(i % 2 == 0, lambda: acc + inner, lambda: acc - inner)
        return i + 1, acc + square(tf.cast(i, tf.float32))
    return tf.while_loop(lambda i, acc: i < n, obody, [tf.constant(0), tf.constant(0.0)])[1]
for n in (0, 1, 6, 9):
    outputs[str(n)] = f(tf.constant(n), tf.constant(0.5))
`, nil)
	sess, err := NewSession(s, SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	for _, k := range []int32{0, 1, 6, 9} {
		got, err := sess.Run(map[Output]any{n: k, scale: float32(0.5)}, []Output{out[1]})
		require.NoError(t, err)
		allClose(t, cfItoa(k), ref[cfItoa(k)], got[0], ulps(ref[cfItoa(k)].DataType(), 4))
	}
	// The inner loop's, the branches' and the square's functions all reached the root graph.
	fns, err := s.Graph().Functions()
	require.NoError(t, err)
	assert.Len(t, fns, 1+2+2+2)
}

// (e) Mistakes are errors that name the op and the function, and stick to the scope.
func TestWhileIfCallErrors(t *testing.T) {
	type build func(s *Scope)
	ivar := func(s *Scope) Output { return Const(s, int32(0)) }
	lessThan3 := func(fs *Scope, v []Output) Output { return Less(fs, v[0], Const(fs, int32(3))) }
	inc := func(fs *Scope, v []Output) Output { return AddV2(fs, v[0], Const(fs, int32(1))) }
	cases := []struct {
		name  string
		build build
		want  []string
	}{
		{"body returns too few values", func(s *Scope) {
			While(s, []Output{ivar(s), Const(s, float32(1))}, lessThan3,
				func(fs *Scope, v []Output) []Output { return []Output{inc(fs, v)} }, WhileOptions{})
		}, []string{`op "While"`, `body "while_body"`, "returns 1 values for 2 loop variables"}},
		{"body returns a wrong dtype", func(s *Scope) {
			While(s.SubScope("loop"), []Output{ivar(s)}, lessThan3,
				func(fs *Scope, v []Output) []Output { return []Output{Const(fs, float32(1))} }, WhileOptions{})
		}, []string{`op "loop/While"`, `body "loop_while_body"`, "returns float32 for loop variable 0, which is int32"}},
		{"cond returns an int", func(s *Scope) {
			While(s, []Output{ivar(s)}, func(fs *Scope, v []Output) Output { return v[0] },
				func(fs *Scope, v []Output) []Output { return []Output{inc(fs, v)} }, WhileOptions{})
		}, []string{`op "While"`, `cond "while_cond"`, "want a scalar bool"}},
		{"cond returns a bool vector", func(s *Scope) {
			While(s, []Output{ivar(s)}, func(fs *Scope, v []Output) Output { return Const(fs, []bool{true, false}) },
				func(fs *Scope, v []Output) []Output { return []Output{inc(fs, v)} }, WhileOptions{})
		}, []string{`op "While"`, `cond "while_cond"`, "want a scalar bool"}},
		{"a variable grows without a shape invariant", func(s *Scope) {
			While(s, []Output{ivar(s), Const(s, []int32{1})}, lessThan3,
				func(fs *Scope, v []Output) []Output {
					return []Output{inc(fs, v), ConcatV2(fs, []Output{v[1], v[1]}, Const(fs, int32(0)))}
				}, WhileOptions{})
		}, []string{`op "While"`, "loop variable 1 enters the loop with shape (1,) but has shape (2,) after one iteration", "ShapeInvariants"}},
		{"an invariant the initial value does not fit", func(s *Scope) {
			While(s, []Output{ivar(s)}, lessThan3,
				func(fs *Scope, v []Output) []Output { return []Output{inc(fs, v)} },
				WhileOptions{ShapeInvariants: []Shape{MakeShape(2)}})
		}, []string{`op "While"`, "loop variable 0 enters the loop with shape ()"}},
		{"an error inside the body", func(s *Scope) {
			While(s, []Output{ivar(s)}, lessThan3,
				func(fs *Scope, v []Output) []Output {
					return []Output{MatMul(fs.SubScope("bad"), v[0], v[0])}
				}, WhileOptions{})
		}, []string{`op "While"`, `body "while_body"`, `op "bad/MatMul"`}},
		{"an outer value used without Capture", func(s *Scope) {
			outer := Const(s, int32(5))
			While(s, []Output{ivar(s)},
				func(fs *Scope, v []Output) Output { return Less(fs, v[0], outer) },
				func(fs *Scope, v []Output) []Output { return []Output{inc(fs, v)} }, WhileOptions{})
		}, []string{`op "Less"`, "another graph", "Capture"}},
		{"a body built with the enclosing scope", func(s *Scope) {
			While(s, []Output{ivar(s)}, lessThan3,
				func(fs *Scope, v []Output) []Output { return []Output{AddV2(s, v[0], v[0])} }, WhileOptions{})
		}, []string{`op "AddV2"`, "another graph", "built with the scope it is given"}},
		{"a nested body built with the outermost scope", func(s *Scope) {
			While(s, []Output{ivar(s)}, lessThan3,
				func(fs *Scope, v []Output) []Output {
					return If(fs, Const(fs, true), v,
						func(bs *Scope, in []Output) []Output { return []Output{Neg(s, in[0])} },
						func(bs *Scope, in []Output) []Output { return in })
				}, WhileOptions{})
		}, []string{`op "Neg"`, "another graph"}},
		{"If on an int predicate", func(s *Scope) {
			id := func(fs *Scope, in []Output) []Output { return in }
			If(s, Const(s, int32(1)), []Output{ivar(s)}, id, id)
		}, []string{`op "If"`, "want a scalar bool"}},
		{"If branches returning different counts", func(s *Scope) {
			If(s, Const(s, true), []Output{ivar(s)},
				func(fs *Scope, in []Output) []Output { return in },
				func(fs *Scope, in []Output) []Output { return []Output{in[0], in[0]} })
		}, []string{`op "If"`, `then branch "cond_true" returns 1 values but else branch "cond_false" returns 2`}},
		{"If branches returning different dtypes", func(s *Scope) {
			If(s.SubScope("choose"), Const(s, true), []Output{ivar(s)},
				func(fs *Scope, in []Output) []Output { return in },
				func(fs *Scope, in []Output) []Output { return []Output{Const(fs, int64(1))} })
		}, []string{`op "choose/If"`, `output 0 is int32 in then branch "choose_cond_true" but int64 in else branch "choose_cond_false"`}},
		{"a function named like an op type", func(s *Scope) {
			_, err := DefineFunction(s, "MatMul", nil, func(fs *Scope, _ []Output) []Output { return []Output{Const(fs, int32(1))} })
			require.Error(t, err)
		}, []string{`function "MatMul"`, "an op with the same name already exists"}},
		{"a function name TensorFlow cannot use", func(s *Scope) {
			_, err := DefineFunction(s, "has space", nil, func(fs *Scope, _ []Output) []Output { return []Output{Const(fs, int32(1))} })
			require.Error(t, err)
		}, []string{`function "has space"`, "does not match"}},
		{"a call with a wrong argument", func(s *Scope) {
			f, err := DefineFunction(s, "neg", []TensorSpec{{Float, UnknownShape()}},
				func(fs *Scope, a []Output) []Output { return []Output{Neg(fs, a[0])} })
			require.NoError(t, err)
			Call(s, f, Const(s, int32(1)))
		}, []string{`op "PartitionedCall"`, `argument 0 of "neg" is int32, want float`}},
		{"a call with too many arguments", func(s *Scope) {
			f, err := DefineFunction(s, "neg", []TensorSpec{{Float, UnknownShape()}},
				func(fs *Scope, a []Output) []Output { return []Output{Neg(fs, a[0])} })
			require.NoError(t, err)
			Call(s, f, Const(s, float32(1)), Const(s, float32(1)))
		}, []string{`function "neg" takes 1 arguments, got 2`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewScope()
			c.build(s)
			err := s.Err()
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			_, serr := NewSession(s, SessionOptions{})
			assert.Equal(t, err, serr, "the error sticks to the scope")
		})
	}

	// An inner op's error stays a *Error underneath.
	s := NewScope()
	While(s, []Output{ivar(s)}, lessThan3,
		func(fs *Scope, v []Output) []Output { return []Output{MatMul(fs, v[0], v[0])} }, WhileOptions{})
	var tfErr *Error
	require.True(t, errors.As(s.Err(), &tfErr))
	assert.Equal(t, "MatMul", tfErr.Op)

	// Capture outside a function body.
	s = NewScope()
	other := NewScope()
	assert.Nil(t, Capture(s, Const(other, int32(1))).Op)
	assert.ErrorContains(t, s.Err(), "does not build a function body")
}

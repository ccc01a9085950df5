package tfgo

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"math/rand"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gotf/gotf/cgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A generated wrapper (or a few) against the TensorFlow Python API computing
// the same thing.
type wrapperCase struct {
	name   string
	inputs map[string]any // fed through placeholders, and given to Python
	// build returns the outputs to compare, in the order of py's results.
	build func(s *Scope, in map[string]Output) []Output
	// py is a Python expression of the inputs (bound to their names) giving
	// a tensor or a list or tuple of tensors.
	py string
}

func randFloats(r *rand.Rand, shift float64, dims ...int) any {
	n := 1
	for _, d := range dims {
		n *= d
	}
	flat := make([]float32, n)
	for i := range flat {
		flat[i] = float32(r.NormFloat64() + shift)
	}
	switch len(dims) {
	case 1:
		return flat
	case 2:
		m := make([][]float32, dims[0])
		for i := range m {
			m[i] = flat[i*dims[1] : (i+1)*dims[1]]
		}
		return m
	case 3:
		m := make([][][]float32, dims[0])
		for i := range m {
			m[i] = make([][]float32, dims[1])
			for j := range m[i] {
				off := (i*dims[1] + j) * dims[2]
				m[i][j] = flat[off : off+dims[2]]
			}
		}
		return m
	}
	panic("randFloats: rank 1 to 3")
}

func wrapperCases() []wrapperCase {
	r := rand.New(rand.NewSource(7))
	pos := func(dims ...int) any { // strictly positive values
		v := randFloats(r, 0, dims...)
		switch v := v.(type) {
		case []float32:
			for i := range v {
				v[i] = float32(math.Abs(float64(v[i]))) + 0.1
			}
		case [][]float32:
			for _, row := range v {
				for i := range row {
					row[i] = float32(math.Abs(float64(row[i]))) + 0.1
				}
			}
		}
		return v
	}
	i32 := func(s *Scope, v ...int32) Output { return Const(s, v) }
	scalar := func(s *Scope, v int32) Output { return Const(s, v) }
	return []wrapperCase{
		{
			name:   "MatMul transpose_b (optional attr)",
			inputs: map[string]any{"a": randFloats(r, 0, 2, 3), "b": randFloats(r, 0, 4, 3)},
			build: func(s *Scope, in map[string]Output) []Output {
				return []Output{MatMul(s, in["a"], in["b"], MatMulTransposeB(true))}
			},
			py: `tf.linalg.matmul(a, b, transpose_b=True)`,
		},
		{
			name:   "Sum keep_dims (optional attr), Max, Mean",
			inputs: map[string]any{"x": randFloats(r, 0, 3, 4)},
			build: func(s *Scope, in map[string]Output) []Output {
				return []Output{
					Sum(s, in["x"], i32(s, 1), SumKeepDims(true)),
					Sum(s, in["x"], i32(s, 0)),
					Max(s, in["x"], scalar(s, 1)),
					Mean(s, in["x"], i32(s, 0, 1), MeanKeepDims(true)),
				}
			},
			py: `[tf.reduce_sum(x, axis=[1], keepdims=True), tf.reduce_sum(x, axis=[0]),
			      tf.reduce_max(x, axis=1), tf.reduce_mean(x, axis=[0, 1], keepdims=True)]`,
		},
		{
			name:   "Cast DstT (required attr)",
			inputs: map[string]any{"x": []float32{-2.7, -0.5, 0, 0.5, 1.9, 300.25}},
			build: func(s *Scope, in map[string]Output) []Output {
				return []Output{Cast(s, in["x"], Int32), Cast(s, in["x"], Double)}
			},
			py: `[tf.cast(x, tf.int32), tf.cast(x, tf.float64)]`,
		},
		{
			name:   "OneHot (depth is an input, axis an option)",
			inputs: map[string]any{"idx": []int64{0, 3, 1, -1, 2}},
			build: func(s *Scope, in map[string]Output) []Output {
				on, off := Const(s, float32(2.5)), Const(s, float32(-1))
				return []Output{
					OneHot(s, in["idx"], scalar(s, 4), on, off),
					OneHot(s, in["idx"], scalar(s, 4), on, off, OneHotAxis(0)),
				}
			},
			py: `[tf.one_hot(idx, 4, on_value=2.5, off_value=-1.0), tf.one_hot(idx, 4, on_value=2.5, off_value=-1.0, axis=0)]`,
		},
		{
			name:   "ConcatV2 and AddN (list inputs)",
			inputs: map[string]any{"a": randFloats(r, 0, 2, 3), "b": randFloats(r, 0, 2, 3), "c": randFloats(r, 0, 2, 3)},
			build: func(s *Scope, in map[string]Output) []Output {
				abc := []Output{in["a"], in["b"], in["c"]}
				return []Output{ConcatV2(s, abc, scalar(s, 1)), ConcatV2(s, abc, scalar(s, 0)), AddN(s, abc)}
			},
			py: `[tf.concat([a, b, c], 1), tf.concat([a, b, c], 0), tf.add_n([a, b, c])]`,
		},
		{
			name:   "Split (list output)",
			inputs: map[string]any{"x": randFloats(r, 0, 4, 6)},
			build: func(s *Scope, in map[string]Output) []Output {
				return Split(s, scalar(s, 1), in["x"], 3)
			},
			py: `tf.split(x, 3, axis=1)`,
		},
		{
			name:   "SplitV (list output, num_split a required attr)",
			inputs: map[string]any{"x": randFloats(r, 0, 6, 2)},
			build: func(s *Scope, in map[string]Output) []Output {
				return SplitV(s, in["x"], i32(s, 1, 2, 3), scalar(s, 0), 3)
			},
			py: `tf.split(x, [1, 2, 3], axis=0)`,
		},
		{
			name:   "Unpack (list output, axis option)",
			inputs: map[string]any{"x": randFloats(r, 0, 2, 3, 4)},
			build: func(s *Scope, in map[string]Output) []Output {
				return Unpack(s, in["x"], 3, UnpackAxis(1))
			},
			py: `tf.unstack(x, axis=1)`,
		},
		{
			name:   "TopKV2 (two outputs)",
			inputs: map[string]any{"x": randFloats(r, 0, 3, 7)},
			build: func(s *Scope, in map[string]Output) []Output {
				values, indices := TopKV2(s, in["x"], scalar(s, 3))
				return []Output{values, indices}
			},
			py: `tf.math.top_k(x, k=3)`,
		},
		{
			name:   "Unique (two outputs, out_idx option)",
			inputs: map[string]any{"x": []int32{4, 5, 1, 2, 3, 3, 4, 5, 9}},
			build: func(s *Scope, in map[string]Output) []Output {
				y, idx := Unique(s, in["x"], UniqueOutIdx(Int64))
				return []Output{y, idx}
			},
			py: `tf.unique(x, out_idx=tf.int64)`,
		},
		{
			name:   "BatchMatMulV2 (broadcasting, adj_y)",
			inputs: map[string]any{"x": randFloats(r, 0, 2, 3, 4), "y": randFloats(r, 0, 5, 4)},
			build: func(s *Scope, in map[string]Output) []Output {
				return []Output{BatchMatMulV2(s, in["x"], in["y"], BatchMatMulV2AdjY(true))}
			},
			py: `tf.linalg.matmul(x, y, adjoint_b=True)`,
		},
		{
			name:   "Erf, Rsqrt, Pow, Exp",
			inputs: map[string]any{"x": randFloats(r, 0, 3, 4), "p": pos(3, 4), "e": randFloats(r, 0, 3, 4)},
			build: func(s *Scope, in map[string]Output) []Output {
				return []Output{Erf(s, in["x"]), Rsqrt(s, in["p"]), Pow(s, in["p"], in["e"]), Exp(s, in["x"])}
			},
			py: `[tf.math.erf(x), tf.math.rsqrt(p), tf.pow(p, e), tf.exp(x)]`,
		},
		{
			name:   "Softmax, LogSoftmax",
			inputs: map[string]any{"x": randFloats(r, 0, 3, 5)},
			build: func(s *Scope, in map[string]Output) []Output {
				return []Output{Softmax(s, in["x"]), LogSoftmax(s, in["x"])}
			},
			py: `[tf.nn.softmax(x), tf.nn.log_softmax(x)]`,
		},
		{
			name:   "Reshape, Transpose, ExpandDims",
			inputs: map[string]any{"x": randFloats(r, 0, 2, 3, 4)},
			build: func(s *Scope, in map[string]Output) []Output {
				return []Output{
					Reshape(s, in["x"], i32(s, 4, -1)),
					Transpose(s, in["x"], i32(s, 2, 0, 1)),
					ExpandDims(s, in["x"], scalar(s, -1)),
				}
			},
			py: `[tf.reshape(x, [4, -1]), tf.transpose(x, [2, 0, 1]), tf.expand_dims(x, -1)]`,
		},
		{
			name:   "StridedSlice with begin/end/shrink masks",
			inputs: map[string]any{"x": randFloats(r, 0, 5, 6)},
			build: func(s *Scope, in map[string]Output) []Output {
				return []Output{
					// x[1:4, ::2]
					StridedSlice(s, in["x"], i32(s, 1, 0), i32(s, 4, 0), i32(s, 1, 2),
						StridedSliceBeginMask(2), StridedSliceEndMask(2)),
					// x[:, 3]
					StridedSlice(s, in["x"], i32(s, 0, 3), i32(s, 0, 4), i32(s, 1, 1),
						StridedSliceBeginMask(1), StridedSliceEndMask(1), StridedSliceShrinkAxisMask(2)),
					// x[::-2, -3:]
					StridedSlice(s, in["x"], i32(s, 0, -3), i32(s, 0, 0), i32(s, -2, 1),
						StridedSliceBeginMask(1), StridedSliceEndMask(3)),
				}
			},
			py: `[x[1:4, ::2], x[:, 3], x[::-2, -3:]]`,
		},
		{
			name:   "Tile, Pad, GatherV2",
			inputs: map[string]any{"x": randFloats(r, 0, 2, 3), "idx": []int32{2, 0, 2, 1}},
			build: func(s *Scope, in map[string]Output) []Output {
				return []Output{
					Tile(s, in["x"], i32(s, 2, 3)),
					Pad(s, in["x"], Const(s, [][]int32{{1, 0}, {2, 3}})),
					GatherV2(s, in["x"], in["idx"], scalar(s, 1)),
				}
			},
			py: `[tf.tile(x, [2, 3]), tf.pad(x, [[1, 0], [2, 3]]), tf.gather(x, idx, axis=1)]`,
		},
		{
			name:   "ArgMax with output_type",
			inputs: map[string]any{"x": randFloats(r, 0, 4, 5)},
			build: func(s *Scope, in map[string]Output) []Output {
				return []Output{
					ArgMax(s, in["x"], scalar(s, 1), ArgMaxOutputType(Int32)),
					ArgMax(s, in["x"], scalar(s, 0)),
				}
			},
			py: `[tf.math.argmax(x, axis=1, output_type=tf.int32), tf.math.argmax(x, axis=0)]`,
		},
		{
			name:   "Range, Fill",
			inputs: map[string]any{"v": float32(1.25)},
			build: func(s *Scope, in map[string]Output) []Output {
				return []Output{
					Range(s, scalar(s, 3), scalar(s, 20), scalar(s, 4)),
					Range(s, Const(s, 0.5), Const(s, 2.0), Const(s, 0.25)),
					Fill(s, i32(s, 2, 3), in["v"]),
				}
			},
			py: `[tf.range(3, 20, 4), tf.range(0.5, 2.0, 0.25, dtype=tf.float64), tf.fill([2, 3], v)]`,
		},
	}
}

// The generated wrappers, run from Go, compute what Python TensorFlow computes.
func TestGeneratedWrappersMatchPython(t *testing.T) {
	for _, c := range wrapperCases() {
		t.Run(c.name, func(t *testing.T) {
			s := NewScope()
			in := map[string]Output{}
			feeds := map[Output]any{}
			tensors := map[string]*Tensor{}
			names := make([]string, 0, len(c.inputs))
			for k := range c.inputs {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				tn, err := NewTensor(c.inputs[k])
				require.NoError(t, err)
				tensors[k] = tn
				in[k] = Placeholder(s.SubScope(k), tn.DataType(), tn.Shape()...)
				feeds[in[k]] = tn
			}
			fetches := c.build(s, in)
			sess, err := NewSession(s, SessionOptions{})
			require.NoError(t, err)
			defer sess.Close()
			got, err := sess.Run(feeds, fetches)
			require.NoError(t, err)

			var code strings.Builder
			for _, k := range names {
				fmt.Fprintf(&code, "%s = inputs[%q]\n", k, k)
			}
			fmt.Fprintf(&code, "r = %s\nif not isinstance(r, (list, tuple)):\n    r = [r]\n", c.py)
			code.WriteString("for i, v in enumerate(r):\n    outputs['o%d' % i] = v\n")
			want := python(t, code.String(), tensors)

			require.Len(t, got, len(want), "number of outputs")
			for i, g := range got {
				w := want[fmt.Sprintf("o%d", i)]
				require.NotNil(t, w, "output %d", i)
				assertSameTensor(t, w, g, fmt.Sprintf("output %d", i))
			}
		})
	}
}

// assertSameTensor compares dtype, shape and values: floats within 4 ulps
// (the same kernels as Python's; observed exact), everything else exactly.
func assertSameTensor(t *testing.T, want, got *Tensor, what string) {
	t.Helper()
	require.Equal(t, want.DataType(), got.DataType(), "%s: dtype", what)
	require.Equal(t, want.Shape(), got.Shape(), "%s: shape", what)
	switch want.DataType() {
	case Float, Double:
		allClose(t, what, want, got, ulps(want.DataType(), 4))
	default:
		assert.Equal(t, want.Data(), got.Data(), "%s: values", what)
	}
}

// Once the scope has an error, wrappers return zero values and add nothing.
func TestGeneratedWrappersOnScopeError(t *testing.T) {
	s := NewScope()
	a := Const(s, [][]float32{{1, 2}})
	bad := MatMul(s, a, a) // [1,2] x [1,2]: shapes do not fit
	require.Error(t, s.Err())
	assert.Contains(t, s.Err().Error(), "MatMul")
	assert.Nil(t, bad.Op)

	assert.Nil(t, Split(s, Const(s, int32(0)), a, 1), "list output")
	v, i := TopKV2(s, a, Const(s, int32(1)))
	assert.Nil(t, v.Op)
	assert.Nil(t, i.Op)
	assert.Nil(t, NoOp(s), "op without outputs")
	assert.Nil(t, Exp(s, Output{}).Op, "nil input")
	assert.Contains(t, s.Err().Error(), "MatMul", "the first error sticks")
}

// A nil input is the scope's error, naming the op, not a panic.
func TestGeneratedWrapperNilInput(t *testing.T) {
	s := NewScope()
	y := Softmax(s, Output{})
	assert.Nil(t, y.Op)
	require.Error(t, s.Err())
	assert.Contains(t, s.Err().Error(), "Softmax")
}

func parseGenerated(t *testing.T) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "ops_gen.go", nil, parser.ParseComments)
	require.NoError(t, err)
	return f
}

// Every exported identifier of ops_gen.go is documented; the docs come from
// TensorFlow's docstrings, as Go doc comments.
func TestGeneratedDocComments(t *testing.T) {
	f := parseGenerated(t)
	require.NotEmpty(t, f.Comments)
	assert.Regexp(t, `^// Code generated .* DO NOT EDIT\.$`, f.Comments[0].List[0].Text)

	funcs := map[string]*ast.FuncDecl{}
	types := 0
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			funcs[d.Name.Name] = d
			if d.Name.IsExported() {
				if assert.NotNil(t, d.Doc, "doc of %s", d.Name.Name) {
					assert.True(t, strings.HasPrefix(d.Doc.Text(), d.Name.Name+" ") ||
						strings.HasPrefix(d.Doc.Text(), d.Name.Name+": "), "doc of %s starts with its name: %q", d.Name.Name, firstLine(d.Doc.Text()))
				}
			}
		case *ast.GenDecl:
			for _, sp := range d.Specs {
				if ts, ok := sp.(*ast.TypeSpec); ok && ts.Name.IsExported() {
					types++
					assert.NotNil(t, d.Doc, "doc of type %s", ts.Name.Name)
				}
			}
		}
	}
	assert.Greater(t, len(funcs), 3000, "wrappers and options")
	assert.Greater(t, types, 500, "option types")

	doc := funcs["MatMul"].Doc.Text()
	assert.Contains(t, doc, `MatMul multiplies the matrix "a" by the matrix "b".`)
	assert.Contains(t, doc, "inner dimension of\n\"a\"")
	assert.Regexp(t, `(?m)^  - a: A tensor\. Must be one of the following types: .*float32`, doc)
	assert.Regexp(t, `(?m)^  - product: `, doc)
	assert.Contains(t, doc, "[MatMulTransposeA]")
	assert.NotContains(t, doc, "name: A name for the operation")
	assert.Contains(t, funcs["MatMulTransposeB"].Doc.Text(), `If true, "b" is transposed before multiplication.`)
	assert.Contains(t, funcs["MatMulTransposeB"].Doc.Text(), "defaults to false")

	// Python's Markdown became Go doc syntax: a code block and a Go list.
	ss := funcs["StridedSlice"].Doc.Text()
	assert.Contains(t, ss, "\n\tbegin = [1, 2, x, x, 0, x]")
	assert.Contains(t, ss, "\n  - An ellipsis (...).")
	assert.NotContains(t, ss, "```")
	// Python renames Split's split_dim to axis; the doc follows the op's name.
	assert.Regexp(t, "(?m)^  - splitDim: A tensor of type `int32`.\n    0-D.  The dimension along which to split.", funcs["Split"].Doc.Text())
	assert.Contains(t, funcs["Cast"].Doc.Text(), "Cast casts x of type SrcT to y of DstT.")
	assert.Contains(t, funcs["UniqueOutIdx"].Doc.Text(), "Allowed values: Int32, Int64. If not specified, defaults to Int32.")
	assert.Contains(t, funcs["TopK"].Doc.Text(), "Deprecated: TopK is not available from GraphDef version 7 on.")
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// Hand-written functions win: Const and Placeholder are not generated, and
// the generated file says why.
func TestGeneratedSkipsHandWritten(t *testing.T) {
	f := parseGenerated(t)
	declared := map[string]bool{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok {
			declared[fd.Name.Name] = true
		}
	}
	assert.False(t, declared["Const"])
	assert.False(t, declared["Placeholder"])
	assert.True(t, declared["PlaceholderWithDefault"])
	var comments strings.Builder
	for _, cg := range f.Comments {
		comments.WriteString(cg.Text())
	}
	assert.Regexp(t, `(?m)^  - Const: the name is hand-written in \w+\.go$`, comments.String())
	assert.Regexp(t, `(?m)^  - Placeholder: the name is hand-written in \w+\.go$`, comments.String())
}

// The generated wrappers agree with the linked runtime's registry: every
// public op is generated or listed as skipped, and every wrapper takes an
// input per input arg and a parameter per required attr.
func TestGeneratedWrappersMatchRegistry(t *testing.T) {
	f := parseGenerated(t)
	funcs := map[string]*ast.FuncDecl{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok {
			funcs[fd.Name.Name] = fd
		}
	}
	var comments strings.Builder
	for _, cg := range f.Comments {
		comments.WriteString(cg.Text())
	}
	list, err := cgo.OpList()
	require.NoError(t, err)
	generated := 0
	for _, op := range list.GetOp() {
		name := op.GetName()
		if strings.HasPrefix(name, "_") {
			continue
		}
		fd := funcs[name]
		if fd == nil {
			assert.Regexp(t, regexp.MustCompile(`(?m)^  - `+name+`: `), comments.String(), "%s is neither generated nor listed as skipped", name)
			continue
		}
		generated++
		inferred := map[string]bool{}
		for _, a := range op.GetInputArg() {
			inferred[a.GetTypeAttr()], inferred[a.GetNumberAttr()], inferred[a.GetTypeListAttr()] = true, true, true
		}
		want, optional := 1+len(op.GetInputArg()), false
		for _, a := range op.GetAttr() {
			switch {
			case inferred[a.GetName()]:
			case a.GetDefaultValue() == nil:
				want++
			default:
				optional = true
			}
		}
		if optional {
			want++
		}
		params := 0
		for _, p := range fd.Type.Params.List {
			params += len(p.Names)
		}
		assert.Equal(t, want, params, "parameters of %s", name)
		results := 0
		if fd.Type.Results != nil {
			for _, r := range fd.Type.Results.List {
				results += max(1, len(r.Names))
			}
		}
		assert.Equal(t, max(1, len(op.GetOutputArg())), results, "results of %s", name)
	}
	assert.Greater(t, generated, 1500)
}

package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	oppb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
)

func TestGenNames(t *testing.T) {
	for in, want := range map[string]string{"transpose_a": "TransposeA", "DstT": "DstT", "T": "T", "out__idx": "OutIdx"} {
		assert.Equal(t, want, camel(in), in)
	}
	for in, want := range map[string]string{"num_split": "numSplit", "DstT": "dstT", "T": "t", "Tidx": "tidx", "TPU_config": "tpuConfig", "N": "n"} {
		assert.Equal(t, want, lowerCamel(in), in)
	}
	taken := map[string]bool{}
	for _, c := range []struct{ in, want string }{
		{"type", "type_"}, {"len", "len_"}, {"scope", "scope_"}, {"optional", "optional_"},
		{"max", "max_"}, {"op", "op_"}, {"x", "x"}, {"x", "x2"}, {"foo_bar", "fooBar"}, {"fooBar", "fooBar2"},
	} {
		assert.Equal(t, c.want, localName(c.in, taken), c.in)
	}
}

func TestGenLeadSentence(t *testing.T) {
	for summary, want := range map[string]string{
		"Computes the sum.":                       "Op computes the sum.",
		`Multiply the matrix "a" by "b".`:         `Op multiplies the matrix "a" by "b".`,
		"Apply a thing.":                          "Op applies a thing.",
		"Batch the inputs.":                       "Op batches the inputs.",
		"A queue that produces elements.":         "Op is a queue that produces elements.",
		"Greedily selects boxes.":                 "Op greedily selects boxes.",
		"Elementwise computes the bitwise AND.":   "Op elementwise computes the bitwise AND.",
		"This op consumes a lock.":                "Op: This op consumes a lock.",
		"Fast Fourier transform.":                 "Op: Fast Fourier transform.",
		"Deprecated. Use V3.":                     "Op is deprecated. Use V3.",
		"BatchToSpace for 4-D tensors of type T.": "Op: BatchToSpace for 4-D tensors of type T.",
		"": "Op.",
	} {
		assert.Equal(t, want, leadSentence("Op", summary), summary)
	}
}

func TestGenConvertBody(t *testing.T) {
	in := strings.Split(strings.TrimPrefix("\n"+`Intro text:

`+"```python"+`
x = f(1)

y = g(x)
`+"```"+`

* first item
continued
* second item

1.  numbered
  indented continuation

>>> tf.add(1, 2)
3

#### Example

  already indented

| a | b |
|---|---|`, "\n"), "\n")
	want := `Intro text:

    x = f(1)

    y = g(x)

  * first item
    continued
  * second item

  1.  numbered
    indented continuation

    >>> tf.add(1, 2)
    3

# Example

    already indented

    | a | b |
    |---|---|`
	assert.Equal(t, want, strings.Join(convertBody(in), "\n"))
}

func TestGenStripAttrPreamble(t *testing.T) {
	for in, want := range map[string]string{
		"An optional `int`. Defaults to `0`.\na bitmask":                "a bitmask",
		"An optional `int`. Defaults to `0`. analogous to `begin_mask`": "analogous to `begin_mask`",
		"An `int` that is `>= 1`.\nThe number of ways to split.":        "The number of ways to split.",
		"A `tf.DType`.": "",
		"An optional `float`. Defaults to `0.0001`.\nSmall constant.": "Small constant.",
		"A list of `ints`.": "",
		"Some free text.":   "Some free text.",
	} {
		assert.Equal(t, want, stripAttrPreamble(in), in)
	}
}

func TestGenPyDocs(t *testing.T) {
	dir := t.TempDir()
	src := `
def split(axis: Annotated[Any, _atypes.Int32], value, num_split: int, name=None):
  r"""Splits a tensor into ` + "`num_split`" + ` tensors.

  More text,
  on two lines.

  Args:
    axis: A ` + "`Tensor`" + ` of type ` + "`int32`" + `.
      0-D.  The dimension along which to split.
    value: A ` + "`Tensor`" + `. The tensor to split.
    num_split: An ` + "`int`" + ` that is ` + "`>= 1`" + `.
      The number of ways to split.
    name: A name for the operation (optional).

  Returns:
    A list of ` + "`num_split` `Tensor`" + ` objects with the same type as ` + "`value`" + `.
  """
  _, _, _op, _outputs = _op_def_library._apply_op_helper(
        "Split", split_dim=axis, value=value, num_split=num_split, name=name)
  return _result

def split_eager_fallback(axis, value, num_split, name, ctx):
  _result = _execute.execute(b"Split", num_split, inputs=_inputs_flat)

def todo(x, name=None):
  r"""TODO: add doc.

  Args:
    x: A ` + "`Tensor`" + `.
  """
  _, _, _op, _outputs = _op_def_library._apply_op_helper("Todo", x=x, name=name)
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "gen_fake_ops.py"), []byte(src), 0o644))
	docs, err := loadPyDocs(dir)
	require.NoError(t, err)
	require.Contains(t, docs, "Split")
	assert.NotContains(t, docs, "Todo", "placeholder docstrings are no docs")
	d := docs["Split"]
	assert.Equal(t, "Splits a tensor into `num_split` tensors.", d.Summary)
	assert.Equal(t, []string{"More text,", "on two lines."}, d.Body)
	text, ok := d.arg("split_dim")
	assert.True(t, ok, "split_dim is Python's axis")
	assert.Equal(t, "A `Tensor` of type `int32`.\n0-D.  The dimension along which to split.", text)
	_, ok = d.arg("name")
	assert.True(t, ok)
	assert.Len(t, d.Returns, 1)
}

func TestGenDeclaredNames(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"const.go":        "package tfgo\n\nfunc Const() {}\n\ntype Scope struct{}\n\nfunc (Scope) Method() {}\n\nvar A, B = 1, 2\n",
		"other_gen.go":    "// Code generated by hand. DO NOT EDIT.\n\npackage tfgo\n\nfunc Generated() {}\n",
		"ops_gen.go":      "package tfgo\n\nfunc MatMul() {}\n",
		"in_test.go":      "package tfgo\n\nfunc Helper() {}\n",
		"example_test.go": "package tfgo_test\n\nfunc Example() {}\n",
	}
	for name, src := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644))
	}
	decl, testDecl, err := declaredNames(dir, filepath.Join(dir, "ops_gen.go"))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"Const": "const.go", "Scope": "const.go", "A": "const.go", "B": "const.go"}, decl)
	assert.Equal(t, map[string]string{"Helper": "in_test.go"}, testDecl)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.go"), []byte("package tfgo\n\nfunc {"), 0o644))
	_, _, err = declaredNames(dir, filepath.Join(dir, "ops_gen.go"))
	assert.ErrorContains(t, err, "broken.go", "a file that does not parse is an error, not a silent gap")
}

func attr(name, kind string, def *attrpb.AttrValue) *oppb.OpDef_AttrDef {
	return &oppb.OpDef_AttrDef{Name: name, Type: kind, DefaultValue: def}
}

// Skips (internal, hand-written, unsupported) and clashes between generated
// names are handled; the output is gofmt'ed Go.
func TestGenSkipsAndDisambiguates(t *testing.T) {
	boolDefault := &attrpb.AttrValue{Value: &attrpb.AttrValue_B{B: false}}
	x := &oppb.OpDef_ArgDef{Name: "x", TypeAttr: "T"}
	y := &oppb.OpDef_ArgDef{Name: "y", TypeAttr: "T"}
	list := &oppb.OpList{Op: []*oppb.OpDef{
		{Name: "Foo", InputArg: []*oppb.OpDef_ArgDef{x}, OutputArg: []*oppb.OpDef_ArgDef{y},
			Attr: []*oppb.OpDef_AttrDef{attr("T", "type", nil), attr("bar", "bool", boolDefault), attr("type", "int", nil)}},
		{Name: "FooBar", OutputArg: []*oppb.OpDef_ArgDef{{Name: "out", Type: typespb.DataType_DT_FLOAT}}},
		{Name: "FooAttr"},
		{Name: "Handy"},
		{Name: "_Internal"},
		{Name: "Odd", Attr: []*oppb.OpDef_AttrDef{attr("w", "list(weird)", nil)}},
		{Name: "Lists", InputArg: []*oppb.OpDef_ArgDef{{Name: "in", NumberAttr: "N", Type: typespb.DataType_DT_INT32}},
			OutputArg: []*oppb.OpDef_ArgDef{{Name: "a", Type: typespb.DataType_DT_INT32},
				{Name: "parts", TypeListAttr: "Tout"}, {Name: "idx", Type: typespb.DataType_DT_INT32}},
			Attr: []*oppb.OpDef_AttrDef{attr("N", "int", nil), attr("Tout", "list(type)", nil)}},
	}}
	g, err := newGenerator(list, map[string]string{"Handy": "handy.go"}, map[string]*pyDoc{}, "9.9")
	require.NoError(t, err)
	assert.Equal(t, 1, g.internal)
	assert.Equal(t, []skipped{
		{"Handy", "the name is hand-written in handy.go"},
		{"Odd", `attr w has type "list(weird)", which cgo.OpBuilder.SetAttr cannot set`},
	}, g.skipped)
	src, err := g.generate()
	require.NoError(t, err, "%s", src)

	f, err := parser.ParseFile(token.NewFileSet(), "x.go", src, parser.ParseComments)
	require.NoError(t, err)
	sigs := map[string]*ast.FuncDecl{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok {
			sigs[fd.Name.Name] = fd
		}
	}
	code := string(src)
	// FooAttr is an op, so Foo's option type is FooOption; FooBar is an op,
	// so Foo's bar option is FooAttrBar.
	assert.Contains(t, code, "type FooOption func(optionalAttr)")
	assert.Contains(t, code, "func FooAttrBar(value bool) FooOption")
	assert.Contains(t, code, "func Foo(scope *Scope, x Output, type_ int64, optional ...FooOption) (y Output)")
	assert.Contains(t, code, `attrs := optionalAttr{"type": type_}`)
	assert.Contains(t, code, "FooAttrBar instead of FooBar, which is the op FooBar")
	assert.Contains(t, code, "  - Handy: the name is hand-written in handy.go")
	assert.Contains(t, code, "  - 1 internal ops")
	assert.NotContains(t, sigs, "Handy")
	assert.NotContains(t, sigs, "Odd")
	assert.Contains(t, sigs, "FooBar")
	assert.Contains(t, sigs, "FooAttr")
	// List input, outputs after a list output.
	assert.Contains(t, code, "func Lists(scope *Scope, in []Output, tout []DataType) (a Output, parts []Output, idx Output)")
	assert.Contains(t, code, "\ta = op.Output(0)\n\tnext := 1\n")
	assert.Contains(t, code, `if parts, next, err = genOpOutputList(op, next, "parts"); err != nil {`)
	assert.Contains(t, code, "\tidx = op.Output(next)\n\treturn a, parts, idx\n")
	assert.Contains(t, code, "func FooAttr(scope *Scope) *Operation {")
	assert.Contains(t, code, "// FooAttr adds a FooAttr operation to the graph (TensorFlow documents no summary for it).")
}

package main

import (
	"fmt"
	"go/format"
	"sort"
	"strconv"
	"strings"

	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	oppb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
)

// The Go type of each attr kind, as cgo.OpBuilder.SetAttr takes it.
var attrGoTypes = map[string]string{
	"int": "int64", "float": "float32", "bool": "bool", "string": "string",
	"type": "DataType", "shape": "Shape", "tensor": "*Tensor", "func": "Func",
	"list(int)": "[]int64", "list(float)": "[]float32", "list(bool)": "[]bool",
	"list(string)": "[]string", "list(type)": "[]DataType", "list(shape)": "[]Shape",
	"list(tensor)": "[]*Tensor", "list(func)": "[]Func",
}

// The names generated code declares besides the wrappers.
var helperNames = []string{"optionalAttr", "genOpAttr", "genOpOutputList"}

// goArg is a parameter or result of a wrapper.
type goArg struct {
	name   string // the op's arg or attr name
	goName string
	goType string
	list   bool
	arg    *oppb.OpDef_ArgDef  // inputs and outputs
	attr   *oppb.OpDef_AttrDef // required attrs
}

// goOpt is an optional attr, set by an option function.
type goOpt struct {
	attr   *oppb.OpDef_AttrDef
	goName string
	goType string
}

type genOp struct {
	def      *oppb.OpDef
	attrType string // "<Op>Attr", or "" without optional attrs
	inputs   []*goArg
	reqAttrs []*goArg
	options  []*goOpt
	outputs  []*goArg
	doc      *pyDoc
}

type skipped struct{ op, why string }

type renamed struct{ want, got, why string }

type generator struct {
	version  string
	ops      []*genOp
	skipped  []skipped
	internal int
	renamed  []renamed
	taken    map[string]string // package-level name -> who declares it
	docs     map[string]*pyDoc
	stats    struct{ pyDocs, registryDocs, noDocs int }
}

// newGenerator picks the ops to wrap and names everything.
func newGenerator(list *oppb.OpList, handWritten map[string]string, docs map[string]*pyDoc, version string) (*generator, error) {
	g := &generator{version: version, taken: map[string]string{}, docs: docs}
	for name, file := range handWritten {
		g.taken[name] = "hand-written in " + file
	}
	for _, h := range helperNames {
		if who, ok := g.taken[h]; ok {
			return nil, fmt.Errorf("%s is %s, but the generated code declares it", h, who)
		}
		g.taken[h] = "a generated helper"
	}
	defs := append([]*oppb.OpDef(nil), list.GetOp()...)
	sort.Slice(defs, func(i, j int) bool { return defs[i].GetName() < defs[j].GetName() })
	var kept []*oppb.OpDef
	for _, d := range defs {
		name := d.GetName()
		switch {
		case strings.HasPrefix(name, "_"):
			g.internal++
			continue
		case g.taken[name] != "":
			g.skipped = append(g.skipped, skipped{name, "the name is " + g.taken[name]})
			continue
		case !isExported(name):
			g.skipped = append(g.skipped, skipped{name, "the name is not an exported Go identifier"})
			continue
		}
		if why := unsupported(d); why != "" {
			g.skipped = append(g.skipped, skipped{name, why})
			continue
		}
		kept = append(kept, d)
	}
	// Op names first: an op keeps its own name, options give way.
	for _, d := range kept {
		g.taken[d.GetName()] = "the op " + d.GetName()
	}
	for _, d := range kept {
		g.ops = append(g.ops, g.build(d))
	}
	return g, nil
}

func isExported(name string) bool {
	if name == "" || name[0] < 'A' || name[0] > 'Z' {
		return false
	}
	for _, r := range name {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// unsupported says why an op cannot be wrapped, or "".
func unsupported(d *oppb.OpDef) string {
	for _, a := range d.GetAttr() {
		if _, ok := attrGoTypes[a.GetType()]; !ok {
			return fmt.Sprintf("attr %s has type %q, which cgo.OpBuilder.SetAttr cannot set", a.GetName(), a.GetType())
		}
	}
	return ""
}

// claim returns the first candidate name not taken and takes it for who.
func (g *generator) claim(who string, candidates ...string) string {
	for i, c := range candidates {
		if g.taken[c] == "" {
			g.taken[c] = who
			if i > 0 {
				g.renamed = append(g.renamed, renamed{candidates[0], c, g.taken[candidates[0]]})
			}
			return c
		}
	}
	base := candidates[len(candidates)-1]
	for n := 2; ; n++ {
		if c := fmt.Sprintf("%s%d", base, n); g.taken[c] == "" {
			g.taken[c] = who
			g.renamed = append(g.renamed, renamed{candidates[0], c, g.taken[candidates[0]]})
			return c
		}
	}
}

func (g *generator) build(d *oppb.OpDef) *genOp {
	op := &genOp{def: d, doc: g.docs[d.GetName()]}
	inferred := map[string]bool{}
	for _, a := range d.GetInputArg() {
		for _, n := range []string{a.GetTypeAttr(), a.GetNumberAttr(), a.GetTypeListAttr()} {
			if n != "" {
				inferred[n] = true
			}
		}
	}
	local := map[string]bool{}
	for _, a := range d.GetInputArg() {
		list := a.GetNumberAttr() != "" || a.GetTypeListAttr() != ""
		t := "Output"
		if list {
			t = "[]Output"
		}
		op.inputs = append(op.inputs, &goArg{name: a.GetName(), goName: localName(a.GetName(), local), goType: t, list: list, arg: a})
	}
	for _, a := range d.GetAttr() {
		if inferred[a.GetName()] {
			continue
		}
		t := attrGoTypes[a.GetType()]
		if a.GetDefaultValue() == nil {
			op.reqAttrs = append(op.reqAttrs, &goArg{name: a.GetName(), goName: localName(a.GetName(), local), goType: t, attr: a})
			continue
		}
		op.options = append(op.options, &goOpt{attr: a, goType: t})
	}
	for _, a := range d.GetOutputArg() {
		list := a.GetNumberAttr() != "" || a.GetTypeListAttr() != ""
		t := "Output"
		if list {
			t = "[]Output"
		}
		op.outputs = append(op.outputs, &goArg{name: a.GetName(), goName: localName(a.GetName(), local), goType: t, list: list, arg: a})
	}
	if len(op.options) > 0 {
		name := d.GetName()
		op.attrType = g.claim("the option type of "+name, name+"Attr", name+"Option")
		for _, o := range op.options {
			c := camel(o.attr.GetName())
			o.goName = g.claim("an option of "+name, name+c, name+"Attr"+c)
		}
	}
	return op
}

// generate returns the formatted source of the wrappers.
func (g *generator) generate() ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "// Code generated by tfgo/internal/genop from the op registry of TensorFlow %s. DO NOT EDIT.\n\n", g.version)
	b.WriteString(`// Typed wrappers for the ops of the TensorFlow runtime, one function per op,
// made by "go generate" (generate.go) from the registry of the linked
// runtime (cgo.OpList) and the docstrings of the same version's Python
// wrappers. Regenerate after adding hand-written identifiers to package
// tfgo: an op whose name a hand-written identifier takes is not generated.

package tfgo

// optionalAttr collects the optional attrs of an operation; every op's
// <Op>Attr options write into it.
type optionalAttr map[string]any

// genOpAttr returns an option that sets the attr name to value.
func genOpAttr(name string, value any) func(optionalAttr) {
	return func(m optionalAttr) { m[name] = value }
}

// genOpOutputList returns the outputs of op's output list arg, which starts
// at output start, and the index of the output after it.
func genOpOutputList(op *Operation, start int, arg string) ([]Output, int, error) {
	n, err := op.OutputListLength(arg)
	if err != nil {
		return nil, start, err
	}
	list := make([]Output, n)
	for i := range list {
		list[i] = op.Output(start + i)
	}
	return list, start + n, nil
}

`)
	b.WriteString(g.skipComment())
	for _, op := range g.ops {
		g.writeOp(&b, op)
	}
	src, err := format.Source([]byte(b.String()))
	if err != nil {
		return []byte(b.String()), fmt.Errorf("formatting the generated code: %w", err)
	}
	return src, nil
}

// skipComment lists the ops not generated, and the names disambiguated.
func (g *generator) skipComment() string {
	var b strings.Builder
	fmt.Fprintf(&b, "// Ops of the registry not generated:\n//\n")
	fmt.Fprintf(&b, "//   - %d internal ops, whose names start with \"_\"\n", g.internal)
	for _, s := range g.skipped {
		fmt.Fprintf(&b, "//   - %s: %s\n", s.op, s.why)
	}
	if len(g.renamed) > 0 {
		fmt.Fprintf(&b, "//\n// Generated names changed to avoid a clash:\n//\n")
		for _, r := range g.renamed {
			fmt.Fprintf(&b, "//   - %s instead of %s, which is %s\n", r.got, r.want, r.why)
		}
	}
	b.WriteString("\n")
	return b.String()
}

func writeComment(b *strings.Builder, lines []string) {
	for _, l := range lines {
		if l == "" {
			b.WriteString("//\n")
		} else {
			b.WriteString("// " + l + "\n")
		}
	}
}

func (g *generator) writeOp(b *strings.Builder, op *genOp) {
	name := op.def.GetName()
	if op.attrType != "" {
		fmt.Fprintf(b, "// %s is an optional argument to [%s].\n", op.attrType, name)
		fmt.Fprintf(b, "type %s func(optionalAttr)\n\n", op.attrType)
		for _, o := range op.options {
			writeComment(b, g.optionDoc(op, o))
			fmt.Fprintf(b, "func %s(value %s) %s { return genOpAttr(%q, value) }\n\n", o.goName, o.goType, op.attrType, o.attr.GetName())
		}
	}

	writeComment(b, g.funcDoc(op))
	params := []string{"scope *Scope"}
	for _, a := range append(append([]*goArg(nil), op.inputs...), op.reqAttrs...) {
		params = append(params, a.goName+" "+a.goType)
	}
	if op.attrType != "" {
		params = append(params, "optional ..."+op.attrType)
	}
	results := "*Operation"
	if len(op.outputs) > 0 {
		var rs []string
		for _, o := range op.outputs {
			rs = append(rs, o.goName+" "+o.goType)
		}
		results = "(" + strings.Join(rs, ", ") + ")"
	}
	fmt.Fprintf(b, "func %s(%s) %s {\n", name, strings.Join(params, ", "), results)

	attrs := ""
	if len(op.reqAttrs) > 0 || op.attrType != "" {
		var kv []string
		for _, a := range op.reqAttrs {
			kv = append(kv, fmt.Sprintf("%q: %s", a.name, a.goName))
		}
		fmt.Fprintf(b, "\tattrs := optionalAttr{%s}\n", strings.Join(kv, ", "))
		if op.attrType != "" {
			b.WriteString("\tfor _, opt := range optional {\n\t\topt(attrs)\n\t}\n")
		}
		attrs = ", Attrs: attrs"
	}
	inputs := ""
	if len(op.inputs) > 0 {
		var in []string
		for _, a := range op.inputs {
			in = append(in, a.goName)
		}
		inputs = ", Input: []any{" + strings.Join(in, ", ") + "}"
	}
	add := fmt.Sprintf("scope.AddOperation(OpSpec{Type: %q%s%s})", name, inputs, attrs)
	if len(op.outputs) == 0 {
		fmt.Fprintf(b, "\treturn %s\n}\n\n", add)
		return
	}
	fmt.Fprintf(b, "\top := %s\n", add)
	firstList := -1
	for i, o := range op.outputs {
		if o.list {
			firstList = i
			break
		}
	}
	if firstList < 0 {
		var outs []string
		for i := range op.outputs {
			outs = append(outs, fmt.Sprintf("Out(op, %d)", i))
		}
		fmt.Fprintf(b, "\treturn %s\n}\n\n", strings.Join(outs, ", "))
		return
	}
	b.WriteString("\tif op == nil {\n\t\treturn\n\t}\n")
	for i := 0; i < firstList; i++ {
		fmt.Fprintf(b, "\t%s = op.Output(%d)\n", op.outputs[i].goName, i)
	}
	fmt.Fprintf(b, "\tnext := %d\n\tvar err error\n", firstList)
	for i := firstList; i < len(op.outputs); i++ {
		o := op.outputs[i]
		last := i == len(op.outputs)-1
		if o.list {
			target := "next"
			if last {
				target = "_"
			}
			fmt.Fprintf(b, "\tif %s, %s, err = genOpOutputList(op, next, %q); err != nil {\n\t\tscope.UpdateErr(%q, err)\n\t\treturn\n\t}\n", o.goName, target, o.name, name)
			continue
		}
		fmt.Fprintf(b, "\t%s = op.Output(next)\n", o.goName)
		if !last {
			b.WriteString("\tnext++\n")
		}
	}
	var outs []string
	for _, o := range op.outputs {
		outs = append(outs, o.goName)
	}
	fmt.Fprintf(b, "\treturn %s\n}\n\n", strings.Join(outs, ", "))
}

// ---- documentation ----

func (g *generator) funcDoc(op *genOp) []string {
	name := op.def.GetName()
	var lines []string
	d := op.doc
	switch {
	case d != nil:
		g.stats.pyDocs++
		lines = append(lines, leadSentence(name, d.Summary))
		if body := convertBody(d.Body); len(body) > 0 {
			lines = append(append(lines, ""), body...)
		}
	case op.def.GetSummary() != "":
		g.stats.registryDocs++
		lines = append(lines, leadSentence(name, strings.Join(strings.Fields(op.def.GetSummary()), " ")))
		if body := convertBody(strings.Split(op.def.GetDescription(), "\n")); len(body) > 0 {
			lines = append(append(lines, ""), body...)
		}
	default:
		g.stats.noDocs++
		lines = append(lines, g.signatureSentence(op))
	}

	if params := append(append([]*goArg(nil), op.inputs...), op.reqAttrs...); len(params) > 0 {
		lines = append(lines, "", "Arguments:")
		for _, a := range params {
			lines = append(lines, listItem(a.goName, g.paramText(op, a))...)
		}
	}
	if len(op.options) > 0 {
		var links []string
		for _, o := range op.options {
			links = append(links, "["+o.goName+"]")
		}
		lines = append(lines, "", fmt.Sprintf("Optional attributes (%s): %s.", op.attrType, joinAnd(links)))
	}
	if len(op.outputs) == 0 {
		lines = append(lines, "", "It returns the operation, which has no outputs.")
	} else {
		lines = append(lines, "", "Returns:")
		ret := returnTexts(d, len(op.outputs))
		for _, o := range op.outputs {
			t := ret[o.name]
			if t == "" && len(op.outputs) == 1 {
				t = ret[""]
			}
			if t == "" {
				t = describeArg(op.def, o.arg)
			}
			if desc := o.arg.GetDescription(); desc != "" && d == nil {
				t += "\n" + desc
			}
			lines = append(lines, listItem(o.goName, pythonTypes.Replace(t))...)
		}
	}
	if dep := op.def.GetDeprecation(); dep != nil && dep.GetVersion() > 0 {
		lines = append(lines, "", fmt.Sprintf("Deprecated: %s is not available from GraphDef version %d on. %s",
			name, dep.GetVersion(), strings.TrimSpace(ensurePeriod(dep.GetExplanation()))))
	}
	return lines
}

func ensurePeriod(s string) string {
	s = strings.TrimSpace(s)
	if s != "" && !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

func joinAnd(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// listItem formats "name: text" as a Go doc list item.
func listItem(name, text string) []string {
	t := itemText(text)
	if len(t) == 0 {
		return []string{"  - " + name}
	}
	out := []string{"  - " + name + ": " + t[0]}
	for _, l := range t[1:] {
		out = append(out, "    "+l)
	}
	return out
}

// signatureSentence is the summary of an op without documentation.
func (g *generator) signatureSentence(op *genOp) string {
	name := op.def.GetName()
	s := fmt.Sprintf("%s adds a %s operation to the graph", name, name)
	var in []string
	for _, a := range op.inputs {
		in = append(in, a.goName)
	}
	if len(in) > 0 {
		s += " taking " + joinAnd(in)
	}
	var out []string
	for _, a := range op.outputs {
		out = append(out, a.goName)
	}
	if len(out) > 0 {
		if len(in) > 0 {
			s += " and"
		}
		s += " returning " + joinAnd(out)
	}
	return s + " (TensorFlow documents no summary for it)."
}

// paramText is the doc of an input or a required attr.
func (g *generator) paramText(op *genOp, a *goArg) string {
	t, ok := op.doc.arg(a.name)
	if a.attr != nil {
		if ok {
			t = stripAttrPreamble(t)
		} else {
			t = a.attr.GetDescription()
		}
		t = joinSentences(t, attrNotes(a.attr, false))
		if t == "" {
			t = "The value of the " + a.name + " attribute."
		}
		return t
	}
	if !ok {
		return joinSentences(describeArg(op.def, a.arg), a.arg.GetDescription())
	}
	return pythonTypes.Replace(t)
}

func joinSentences(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, ensurePeriod(p))
		}
	}
	return strings.Join(out, " ")
}

// describeArg describes an input or output from the op's definition.
func describeArg(d *oppb.OpDef, a *oppb.OpDef_ArgDef) string {
	var what string
	switch {
	case a.GetNumberAttr() != "":
		what = fmt.Sprintf("A list of %s tensors", a.GetNumberAttr())
	case a.GetTypeListAttr() != "":
		what = fmt.Sprintf("A list of tensors of the types %s", a.GetTypeListAttr())
	default:
		what = "A tensor"
	}
	if a.GetIsRef() {
		what = strings.Replace(what, "A ", "A mutable ", 1)
	}
	switch {
	case a.GetType() != typespb.DataType_DT_INVALID:
		what += " of type " + dtypeName(a.GetType())
	case a.GetTypeAttr() != "":
		what += " of type " + a.GetTypeAttr()
		for _, at := range d.GetAttr() {
			if at.GetName() == a.GetTypeAttr() {
				if allowed := at.GetAllowedValues().GetList().GetType(); len(allowed) > 0 {
					var names []string
					for _, t := range allowed {
						names = append(names, dtypeName(t))
					}
					what += " (" + strings.Join(names, ", ") + ")"
				}
			}
		}
	}
	return what + "."
}

// returnTexts maps output names to their docstring text; "" holds the text
// of a single output.
func returnTexts(d *pyDoc, n int) map[string]string {
	m := map[string]string{}
	if d == nil || len(d.Returns) == 0 {
		return m
	}
	if n == 1 || !strings.HasPrefix(d.Returns[0], "A tuple of") {
		m[""] = strings.Join(d.Returns, "\n")
		return m
	}
	cur := ""
	for _, l := range d.Returns[1:] {
		if am := argItem.FindStringSubmatch("  " + l); am != nil && !strings.HasPrefix(l, " ") {
			cur = am[1]
			m[cur] = am[2]
			continue
		}
		if cur != "" && strings.TrimSpace(l) != "" {
			m[cur] += "\n" + strings.TrimSpace(l)
		}
	}
	return m
}

func (g *generator) optionDoc(op *genOp, o *goOpt) []string {
	lines := []string{fmt.Sprintf("%s sets the optional %s attribute of [%s].", o.goName, o.attr.GetName(), op.def.GetName())}
	t, ok := op.doc.arg(o.attr.GetName())
	if ok {
		t = stripAttrPreamble(t)
	} else {
		t = o.attr.GetDescription()
	}
	if body := convertBody(strings.Split(t, "\n")); len(body) > 0 {
		lines = append(append(lines, ""), body...)
	}
	if notes := attrNotes(o.attr, true); notes != "" {
		lines = append(lines, "", notes)
	}
	return lines
}

// attrNotes states an attr's constraints and default in Go terms.
func attrNotes(a *oppb.OpDef_AttrDef, withDefault bool) string {
	var notes []string
	if av := a.GetAllowedValues().GetList(); av != nil {
		var vals []string
		for _, t := range av.GetType() {
			vals = append(vals, dtypeGo(t))
		}
		for _, s := range av.GetS() {
			vals = append(vals, strconv.Quote(string(s)))
		}
		if len(vals) > 0 {
			what := "Allowed values"
			if strings.HasPrefix(a.GetType(), "list(") {
				what = "Allowed values of the elements"
			}
			notes = append(notes, fmt.Sprintf("%s: %s.", what, strings.Join(vals, ", ")))
		}
	}
	if a.GetHasMinimum() {
		if strings.HasPrefix(a.GetType(), "list(") {
			notes = append(notes, fmt.Sprintf("The list has at least %d elements.", a.GetMinimum()))
		} else {
			notes = append(notes, fmt.Sprintf("Minimum value: %d.", a.GetMinimum()))
		}
	}
	if withDefault && a.GetDefaultValue() != nil {
		notes = append(notes, "If not specified, defaults to "+renderValue(a.GetType(), a.GetDefaultValue())+".")
	}
	return strings.Join(notes, " ")
}

// renderValue writes an attr value as Go code (or words, for tensors).
func renderValue(kind string, v *attrpb.AttrValue) string {
	switch kind {
	case "int":
		return strconv.FormatInt(v.GetI(), 10)
	case "float":
		return strconv.FormatFloat(float64(v.GetF()), 'g', -1, 32)
	case "bool":
		return strconv.FormatBool(v.GetB())
	case "string":
		return strconv.Quote(string(v.GetS()))
	case "type":
		return dtypeGo(v.GetType())
	case "shape":
		return renderShape(v.GetShape())
	case "tensor":
		return "a " + dtypeName(v.GetTensor().GetDtype()) + " tensor"
	case "func":
		return fmt.Sprintf("Func{Name: %q}", v.GetFunc().GetName())
	}
	l := v.GetList()
	var items []string
	switch kind {
	case "list(int)":
		for _, x := range l.GetI() {
			items = append(items, strconv.FormatInt(x, 10))
		}
	case "list(float)":
		for _, x := range l.GetF() {
			items = append(items, strconv.FormatFloat(float64(x), 'g', -1, 32))
		}
	case "list(bool)":
		for _, x := range l.GetB() {
			items = append(items, strconv.FormatBool(x))
		}
	case "list(string)":
		for _, x := range l.GetS() {
			items = append(items, strconv.Quote(string(x)))
		}
	case "list(type)":
		for _, x := range l.GetType() {
			items = append(items, dtypeGo(x))
		}
	case "list(shape)":
		for _, x := range l.GetShape() {
			items = append(items, renderShape(x))
		}
	case "list(tensor)":
		for _, x := range l.GetTensor() {
			items = append(items, "a "+dtypeName(x.GetDtype())+" tensor")
		}
	case "list(func)":
		for _, x := range l.GetFunc() {
			items = append(items, fmt.Sprintf("Func{Name: %q}", x.GetName()))
		}
	}
	if len(items) == 0 {
		return "an empty list"
	}
	return attrGoTypes[kind] + "{" + strings.Join(items, ", ") + "}"
}

func renderShape(s *shapepb.TensorShapeProto) string {
	if s.GetUnknownRank() {
		return "UnknownShape()"
	}
	var dims []string
	for _, d := range s.GetDim() {
		dims = append(dims, strconv.FormatInt(d.GetSize(), 10))
	}
	return "MakeShape(" + strings.Join(dims, ", ") + ")"
}

// The tfgo constants of the dtypes.
var dtypeConsts = map[typespb.DataType]string{
	typespb.DataType_DT_FLOAT: "Float", typespb.DataType_DT_DOUBLE: "Double", typespb.DataType_DT_INT32: "Int32",
	typespb.DataType_DT_UINT8: "Uint8", typespb.DataType_DT_INT16: "Int16", typespb.DataType_DT_INT8: "Int8",
	typespb.DataType_DT_STRING: "String", typespb.DataType_DT_COMPLEX64: "Complex64", typespb.DataType_DT_INT64: "Int64",
	typespb.DataType_DT_BOOL: "Bool", typespb.DataType_DT_QINT8: "Qint8", typespb.DataType_DT_QUINT8: "Quint8",
	typespb.DataType_DT_QINT32: "Qint32", typespb.DataType_DT_BFLOAT16: "BFloat16", typespb.DataType_DT_QINT16: "Qint16",
	typespb.DataType_DT_QUINT16: "Quint16", typespb.DataType_DT_UINT16: "Uint16", typespb.DataType_DT_COMPLEX128: "Complex128",
	typespb.DataType_DT_HALF: "Half", typespb.DataType_DT_RESOURCE: "Resource", typespb.DataType_DT_VARIANT: "Variant",
	typespb.DataType_DT_UINT32: "Uint32", typespb.DataType_DT_UINT64: "Uint64",
}

// dtypeGo names a dtype as Go code: Float, or DataType(24) for
// types tfgo has no constant for.
func dtypeGo(t typespb.DataType) string {
	if c, ok := dtypeConsts[t]; ok {
		return c
	}
	return fmt.Sprintf("DataType(%d) (%s)", int32(t), dtypeName(t))
}

// dtypeName is Python's name of a dtype: float32, int64, bfloat16...
func dtypeName(t typespb.DataType) string {
	switch t {
	case typespb.DataType_DT_FLOAT:
		return "float32"
	case typespb.DataType_DT_DOUBLE:
		return "float64"
	case typespb.DataType_DT_HALF:
		return "float16"
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "DT_"))
}

package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/savedmodel"
	tspb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	tpb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// savedModelInfo is what inspect shows of a SavedModel: the content of
// saved_model_cli show --all.
type savedModelInfo struct {
	Format     string          `json:"format"`
	Path       string          `json:"path"`
	MetaGraphs []metaGraphInfo `json:"meta_graphs"`
	// Functions is nil when no meta graph has an object graph (a TF1
	// SavedModel): saved_model_cli then prints no "Concrete Functions".
	Functions  []functionInfo `json:"functions,omitempty"`
	hasObjects bool
}

type metaGraphInfo struct {
	Tags       []string        `json:"tags"`
	Signatures []signatureInfo `json:"signatures"`
	Ops        []string        `json:"ops"`
}

type signatureInfo struct {
	Key        string       `json:"key"`
	Inputs     []tensorInfo `json:"inputs"`
	Outputs    []tensorInfo `json:"outputs"`
	MethodName string       `json:"method_name"`
}

type tensorInfo struct {
	Key string `json:"key"`
	// DType is the types.proto name saved_model_cli prints (DT_FLOAT).
	DType string `json:"dtype"`
	// Shape is nil when UnknownRank; -1 is a dimension of any size.
	Shape       []int64 `json:"shape"`
	UnknownRank bool    `json:"unknown_rank,omitempty"`
	Name        string  `json:"name"`
}

// functionInfo is a tf.function or concrete function the SavedModel's root
// object has, with the input signatures it can be called with.
type functionInfo struct {
	Name    string       `json:"name"`
	Options []callOption `json:"options"`
}

type callOption struct {
	// Args and Kwargs are Python reprs of the canonicalized input
	// signature's elements, as saved_model_cli prints them.
	Args   []argInfo `json:"args,omitempty"`
	Kwargs []argInfo `json:"kwargs,omitempty"`
}

type argInfo struct {
	// Name is a TensorSpec's name, or a keyword.
	Name string `json:"name,omitempty"`
	// Type is Python's type name (TensorSpec, bool, int, list, str...).
	Type  string `json:"type"`
	Value string `json:"value"`
	raw   *cpb.StructuredValue
}

func readSavedModelInfo(dir string) (*savedModelInfo, error) {
	sm, err := savedmodel.ReadSavedModel(dir)
	if err != nil {
		return nil, err
	}
	info := &savedModelInfo{Format: fmtSavedModel, Path: dir}
	mgs := slices.Clone(sm.GetMetaGraphs())
	// Python sorts the meta graphs by their tag lists, in file order.
	sort.SliceStable(mgs, func(i, j int) bool {
		return slices.Compare(mgs[i].GetMetaInfoDef().GetTags(), mgs[j].GetMetaInfoDef().GetTags()) < 0
	})
	for _, mg := range mgs {
		m := metaGraphInfo{Tags: mg.GetMetaInfoDef().GetTags(), Ops: opsUsed(mg)}
		if m.Tags == nil {
			m.Tags = []string{}
		}
		for _, key := range sortedKeys(mg.GetSignatureDef()) {
			sd := mg.GetSignatureDef()[key]
			m.Signatures = append(m.Signatures, signatureInfo{
				Key:        key,
				Inputs:     tensorInfos(sd.GetInputs()),
				Outputs:    tensorInfos(sd.GetOutputs()),
				MethodName: sd.GetMethodName(),
			})
		}
		info.MetaGraphs = append(info.MetaGraphs, m)
	}
	for _, mg := range sm.GetMetaGraphs() {
		if og := mg.GetObjectGraphDef(); og != nil {
			info.hasObjects = true
			if info.Functions == nil {
				info.Functions = concreteFunctions(og)
			}
		}
	}
	return info, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func tensorInfos(m map[string]*cpb.TensorInfo) []tensorInfo {
	out := []tensorInfo{}
	for _, k := range sortedKeys(m) {
		ti := m[k]
		t := tensorInfo{Key: k, DType: tpb.DataType_name[int32(ti.GetDtype())], Name: ti.GetName()}
		if t.DType == "" {
			t.DType = fmt.Sprint(int32(ti.GetDtype()))
		}
		if ti.GetTensorShape().GetUnknownRank() {
			t.UnknownRank = true
		} else {
			t.Shape = []int64{}
			for _, d := range ti.GetTensorShape().GetDim() {
				t.Shape = append(t.Shape, d.GetSize())
			}
		}
		out = append(out, t)
	}
	return out
}

// opsUsed is meta_graph.ops_used_by_graph_def: the op types of the graph
// and of the library functions it calls, through (Stateful)PartitionedCall
// and through nodes whose op is a function, sorted (Python prints a set).
func opsUsed(mg *cpb.MetaGraphDef) []string {
	gd := mg.GetGraphDef()
	funcs := map[string]int{}
	lib := gd.GetLibrary().GetFunction()
	for i, f := range lib {
		funcs[f.GetSignature().GetName()] = i
	}
	used := map[string]bool{}
	var todo []int
	mark := func(op string) {
		if i, ok := funcs[op]; ok && !used[op] {
			todo = append(todo, i)
		}
		used[op] = true
	}
	process := func(op string, attr func(string) string) {
		mark(op)
		if op == "PartitionedCall" || op == "StatefulPartitionedCall" {
			mark(attr("f"))
		}
	}
	for _, n := range gd.GetNode() {
		process(n.GetOp(), func(k string) string { return n.GetAttr()[k].GetFunc().GetName() })
	}
	for len(todo) > 0 {
		f := lib[todo[len(todo)-1]]
		todo = todo[:len(todo)-1]
		for _, n := range f.GetNodeDef() {
			process(n.GetOp(), func(k string) string { return n.GetAttr()[k].GetFunc().GetName() })
		}
	}
	ops := []string{}
	for op := range used {
		if _, isFunc := funcs[op]; !isFunc {
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	return ops
}

// concreteFunctions lists the root object's function children as
// saved_model_cli's _show_defined_functions does after loading the model:
// by child name, each function's concrete functions by name.
func concreteFunctions(og *cpb.SavedObjectGraph) []functionInfo {
	nodes := og.GetNodes()
	if len(nodes) == 0 {
		return []functionInfo{}
	}
	children := slices.Clone(nodes[0].GetChildren())
	sort.SliceStable(children, func(i, j int) bool { return children[i].GetLocalName() < children[j].GetLocalName() })
	out := []functionInfo{}
	for _, c := range children {
		id := int(c.GetNodeId())
		if id < 0 || id >= len(nodes) {
			continue
		}
		var names []string
		var keywords []string
		switch k := nodes[id].GetKind().(type) {
		case *cpb.SavedObject_Function:
			names = slices.Clone(k.Function.GetConcreteFunctions())
		case *cpb.SavedObject_BareConcreteFunction:
			names = []string{k.BareConcreteFunction.GetConcreteFunctionName()}
			keywords = k.BareConcreteFunction.GetArgumentKeywords()
		default:
			continue
		}
		sort.Strings(names)
		fi := functionInfo{Name: c.GetLocalName(), Options: []callOption{}}
		for _, n := range names {
			var opt callOption
			sig := og.GetConcreteFunctions()[n].GetCanonicalizedInputSignature()
			if parts := sig.GetTupleValue().GetValues(); len(parts) == 2 {
				for _, a := range parts[0].GetTupleValue().GetValues() {
					opt.Args = append(opt.Args, describeArg(a))
				}
				// Iterating a dict gives its keys: Python prints the keywords.
				for _, k := range sortedKeys(parts[1].GetDictValue().GetFields()) {
					opt.Kwargs = append(opt.Kwargs, argInfo{Type: "str", Value: k})
				}
			} else {
				// A concrete function without a structured signature:
				// Python falls back on its argument keywords.
				for _, k := range keywords {
					opt.Args = append(opt.Args, argInfo{Type: "str", Value: k})
				}
			}
			fi.Options = append(fi.Options, opt)
		}
		out = append(out, fi)
	}
	return out
}

func describeArg(v *cpb.StructuredValue) argInfo {
	a := argInfo{Value: pyRepr(v), raw: v}
	switch k := v.GetKind().(type) {
	case *cpb.StructuredValue_TensorSpecValue:
		a.Type, a.Name = "TensorSpec", k.TensorSpecValue.GetName()
	case *cpb.StructuredValue_StringValue:
		a.Type, a.Value = "str", k.StringValue
	default:
		a.Type = pyTypeName(v)
	}
	return a
}

func pyTypeName(v *cpb.StructuredValue) string {
	switch v.GetKind().(type) {
	case *cpb.StructuredValue_NoneValue:
		return "NoneType"
	case *cpb.StructuredValue_Float64Value:
		return "float"
	case *cpb.StructuredValue_Int64Value:
		return "int"
	case *cpb.StructuredValue_StringValue:
		return "str"
	case *cpb.StructuredValue_BoolValue:
		return "bool"
	case *cpb.StructuredValue_ListValue:
		return "list"
	case *cpb.StructuredValue_TupleValue:
		return "tuple"
	case *cpb.StructuredValue_DictValue:
		return "dict"
	case *cpb.StructuredValue_NamedTupleValue:
		return v.GetNamedTupleValue().GetName()
	case *cpb.StructuredValue_TensorShapeValue:
		return "TensorShape"
	case *cpb.StructuredValue_TensorDtypeValue:
		return "DType"
	case *cpb.StructuredValue_BoundedTensorSpecValue:
		return "BoundedTensorSpec"
	case *cpb.StructuredValue_TypeSpecValue:
		return v.GetTypeSpecValue().GetTypeSpecClassName()
	}
	return "object"
}

// pyRepr is Python's str() of a decoded StructuredValue, as far as the
// proto says what it was.
func pyRepr(v *cpb.StructuredValue) string {
	switch k := v.GetKind().(type) {
	case *cpb.StructuredValue_NoneValue:
		return "None"
	case *cpb.StructuredValue_Float64Value:
		return pyFloat(k.Float64Value)
	case *cpb.StructuredValue_Int64Value:
		return strconv.FormatInt(k.Int64Value, 10)
	case *cpb.StructuredValue_StringValue:
		return k.StringValue
	case *cpb.StructuredValue_BoolValue:
		if k.BoolValue {
			return "True"
		}
		return "False"
	case *cpb.StructuredValue_TensorSpecValue:
		s := k.TensorSpecValue
		return fmt.Sprintf("TensorSpec(shape=%s, dtype=tf.%s, name=%s)", specShape(s.GetShape()), dtypes.FromProto(s.GetDtype()), pyStrOrNone(s.GetName()))
	case *cpb.StructuredValue_BoundedTensorSpecValue:
		s := k.BoundedTensorSpecValue
		return fmt.Sprintf("BoundedTensorSpec(shape=%s, dtype=tf.%s, name=%s)", specShape(s.GetShape()), dtypes.FromProto(s.GetDtype()), pyStrOrNone(s.GetName()))
	case *cpb.StructuredValue_TensorShapeValue:
		return specShape(k.TensorShapeValue)
	case *cpb.StructuredValue_TensorDtypeValue:
		return "<dtype: '" + dtypes.FromProto(k.TensorDtypeValue).String() + "'>"
	case *cpb.StructuredValue_ListValue:
		return "[" + joinRepr(k.ListValue.GetValues()) + "]"
	case *cpb.StructuredValue_TupleValue:
		vs := k.TupleValue.GetValues()
		if len(vs) == 1 {
			return "(" + pyQuoted(vs[0]) + ",)"
		}
		return "(" + joinRepr(vs) + ")"
	case *cpb.StructuredValue_DictValue:
		f := k.DictValue.GetFields()
		parts := []string{}
		for _, key := range sortedKeys(f) {
			parts = append(parts, pyQuote(key)+": "+pyQuoted(f[key]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case *cpb.StructuredValue_NamedTupleValue:
		parts := []string{}
		for _, p := range k.NamedTupleValue.GetValues() {
			parts = append(parts, p.GetKey()+"="+pyQuoted(p.GetValue()))
		}
		return k.NamedTupleValue.GetName() + "(" + strings.Join(parts, ", ") + ")"
	case *cpb.StructuredValue_TypeSpecValue:
		return k.TypeSpecValue.GetTypeSpecClassName() + "(" + pyRepr(k.TypeSpecValue.GetTypeState()) + ")"
	}
	return "?"
}

// pyQuoted is an element inside a container: strings get quotes (repr).
func pyQuoted(v *cpb.StructuredValue) string {
	if s, ok := v.GetKind().(*cpb.StructuredValue_StringValue); ok {
		return pyQuote(s.StringValue)
	}
	return pyRepr(v)
}

func joinRepr(vs []*cpb.StructuredValue) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = pyQuoted(v)
	}
	return strings.Join(parts, ", ")
}

func pyQuote(s string) string {
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

func pyStrOrNone(s string) string {
	if s == "" {
		return "None"
	}
	return pyQuote(s)
}

// pyFloat is Python's repr of a float: shortest round-trip digits, with a
// ".0" on integral values.
func pyFloat(f float64) string { return pyFloatBits(f, 64) }

func pyFloat32(f float32) string { return pyFloatBits(float64(f), 32) }

func pyFloatBits(f float64, bits int) string {
	s := strconv.FormatFloat(f, 'g', -1, bits)
	switch s {
	case "+Inf":
		return "inf"
	case "-Inf":
		return "-inf"
	case "NaN":
		return "nan"
	}
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// specShape is a TensorSpec's shape as its repr shows it: a tuple with
// None for unknown dimensions, or <unknown> for an unknown rank.
func specShape(s *tspb.TensorShapeProto) string {
	if s.GetUnknownRank() {
		return "<unknown>"
	}
	dims := make([]int64, len(s.GetDim()))
	for i, d := range s.GetDim() {
		dims[i] = d.GetSize()
	}
	return pyShape(dims, "None")
}

// writeText prints what saved_model_cli show --all prints, line for line;
// the ops, a Python set there, are sorted here.
func (s *savedModelInfo) writeText(w io.Writer) {
	for _, m := range s.MetaGraphs {
		fmt.Fprintf(w, "\nMetaGraphDef with tag-set: '%s' contains the following SignatureDefs:\n", strings.Join(m.Tags, ", "))
		for _, sig := range m.Signatures {
			fmt.Fprintf(w, "\nsignature_def['%s']:\n", sig.Key)
			fmt.Fprintf(w, "  The given SavedModel SignatureDef contains the following input(s):\n")
			for _, t := range sig.Inputs {
				fmt.Fprintf(w, "    inputs['%s'] tensor_info:\n", t.Key)
				writeTensorInfo(w, t)
			}
			fmt.Fprintf(w, "  The given SavedModel SignatureDef contains the following output(s):\n")
			for _, t := range sig.Outputs {
				fmt.Fprintf(w, "    outputs['%s'] tensor_info:\n", t.Key)
				writeTensorInfo(w, t)
			}
			fmt.Fprintf(w, "  Method name is: %s\n", sig.MethodName)
		}
		tags := make([]string, len(m.Tags))
		for i, t := range m.Tags {
			tags[i] = pyQuote(t)
		}
		ops := make([]string, len(m.Ops))
		for i, op := range m.Ops {
			ops[i] = pyQuote(op)
		}
		opSet := "set()"
		if len(ops) > 0 {
			opSet = "{" + strings.Join(ops, ", ") + "}"
		}
		fmt.Fprintf(w, "The MetaGraph with tag set [%s] contains the following ops: %s\n", strings.Join(tags, ", "), opSet)
	}
	if !s.hasObjects {
		return
	}
	// Python's layout, its end='' and backspaces included, so that a diff
	// against saved_model_cli is empty.
	fmt.Fprint(w, "\nConcrete Functions:")
	for _, f := range s.Functions {
		fmt.Fprintf(w, "\n  Function Name: '%s'\n", f.Name)
		for i, o := range f.Options {
			if len(o.Args) > 0 {
				fmt.Fprintf(w, "    Option #%d\n      Callable with:\n", i+1)
				writeArgs(w, o.Args, "Argument")
			}
			if len(o.Kwargs) > 0 {
				writeArgs(w, o.Kwargs, "Named Argument")
			}
		}
	}
}

func writeTensorInfo(w io.Writer, t tensorInfo) {
	shape := "unknown_rank"
	if !t.UnknownRank {
		parts := make([]string, len(t.Shape))
		for i, d := range t.Shape {
			parts[i] = strconv.FormatInt(d, 10)
		}
		shape = "(" + strings.Join(parts, ", ") + ")"
	}
	fmt.Fprintf(w, "        dtype: %s\n        shape: %s\n        name: %s\n", t.DType, shape, t.Name)
}

// writeArgs is saved_model_cli's _print_args at indent 4.
func writeArgs(w io.Writer, args []argInfo, kind string) {
	const in = "        "
	for i, a := range args {
		fmt.Fprintf(w, "%s%s #%d\n", in, kind, i+1)
		switch {
		case a.Type == "str":
			fmt.Fprintf(w, "%s  %s\n", in, a.Value)
		case a.Type == "TensorSpec":
			fmt.Fprintf(w, "%s  %s: %s\n", in, a.Name, a.Value)
		case a.raw != nil && (a.Type == "list" || a.Type == "tuple" || a.raw.GetNamedTupleValue() != nil):
			var elems []*cpb.StructuredValue
			if nt := a.raw.GetNamedTupleValue(); nt != nil {
				for _, p := range nt.GetValues() {
					elems = append(elems, p.GetValue())
				}
			} else if l := a.raw.GetListValue(); l != nil {
				elems = l.GetValues()
			} else {
				elems = a.raw.GetTupleValue().GetValues()
			}
			fmt.Fprintf(w, "%s  DType: %s\n%s  Value: [", in, a.Type, in)
			for _, e := range elems {
				fmt.Fprintf(w, "%s, ", pyQuoted(e))
			}
			fmt.Fprint(w, "\b\b]\n")
		case a.raw != nil && a.Type == "dict":
			fmt.Fprintf(w, "%s  DType: dict\n%s  Value: {", in, in)
			f := a.raw.GetDictValue().GetFields()
			for _, k := range sortedKeys(f) {
				fmt.Fprintf(w, "'%s': %s, ", k, pyQuoted(f[k]))
			}
			fmt.Fprint(w, "\b\b}\n")
		default:
			fmt.Fprintf(w, "%s  DType: %s\n%s  Value: %s\n", in, a.Type, in, a.Value)
		}
	}
}

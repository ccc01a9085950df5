package tfgo

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/gotf/gotf/cgo"
)

// TensorSpec describes a value a function takes or returns, as
// tf.TensorSpec does: its dtype and its (possibly partial) static shape. The
// zero Shape is a scalar; UnknownShape() accepts any shape and
// MakeShape(-1, 3) any number of rows of 3.
type TensorSpec struct {
	DType DataType
	Shape Shape
}

func (t TensorSpec) String() string { return fmt.Sprintf("%s%s", t.DType, t.Shape) }

// ConcreteFunction is a function cfTrace once for fixed input specs, as
// tf.function's get_concrete_function gives: its definition (the embedded
// *Function: Name, FunctionDef, Close), its signature, and the values
// of the defining graph that the body captured.
type ConcreteFunction struct {
	*Function
	// Inputs are the explicit arguments, in order.
	Inputs []TensorSpec
	// Outputs are the results, with the shapes inferred in the body.
	Outputs []TensorSpec
	// Captures are values of the defining graph the body used (through
	// Capture); Call passes them after the arguments.
	Captures []Output
	// Stateful reports whether the body has stateful operations (random
	// numbers, variables, ...), which TensorFlow must not prune or merge.
	Stateful bool

	deps []*Function // the functions the body uses (its loops, conditionals, calls)
}

// DefineFunction traces body into a new function named name, as tf.function
// does for one input signature, and adds it to the scope's graph.
//
// body runs once, on a scope of a fresh graph, with one Placeholder per
// input spec as args; it returns the function's outputs. Values of the
// enclosing graph reach the body through Capture (using one directly is an
// error naming it). Functions the body calls, loops and conditionals it
// builds go to the scope's graph along with it.
//
// name must match [A-Za-z_][A-Za-z0-9_.\-/]* and not be the name of an op
// type or of a different function of the graph. Errors name the function
// and the op of the body at fault; they also stick to s.
func DefineFunction(s *Scope, name string, inputs []TensorSpec, body func(fs *Scope, args []Output) []Output) (*ConcreteFunction, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	fail := func(err error) (*ConcreteFunction, error) {
		s.UpdateErr("", fmt.Errorf("function %q: %w", name, err))
		return nil, s.Err()
	}
	tr, err := cfTraceFunction(s, inputs, body)
	if err != nil {
		return fail(err)
	}
	defer tr.close()
	f, err := tr.toFunction(name, false, tr.fg.captured, tr.outs)
	if err != nil {
		return fail(err)
	}
	deps, err := cfInstall(s.Graph(), tr, f)
	if err != nil {
		f.Close()
		return fail(err)
	}
	st, err := cfStateful(f)
	if err != nil {
		f.Close()
		return fail(err)
	}
	return &ConcreteFunction{
		Function: f,
		Inputs:   append([]TensorSpec(nil), inputs...),
		Outputs:  tr.outSpecs(),
		Captures: append([]Output(nil), tr.fg.captured...),
		Stateful: st,
		deps:     deps,
	}, nil
}

// Call calls fn with args, through StatefulPartitionedCall (or
// PartitionedCall when fn is stateless) as a tf.function call does, and
// returns its outputs (nil once the scope has an error). The arguments must
// have the dtypes of fn.Inputs and shapes compatible with theirs; one whose
// static shape is less specific than its spec's is checked at run time
// (EnsureShape). fn's
// captures are passed along; s may be the defining graph's scope or the
// scope of a function body built inside it (a While body, say). A function
// without outputs returns none: to depend on its call, call a function that
// returns a value.
func Call(s *Scope, fn *ConcreteFunction, args ...Output) []Output {
	if s.Err() != nil {
		return nil
	}
	if fn == nil || fn.Function == nil || fn.Name() == "" {
		s.UpdateErr(cfOpLabel(s, "PartitionedCall"), errors.New("call of a nil or closed function"))
		return nil
	}
	opType := "PartitionedCall"
	if fn.Stateful {
		opType = "StatefulPartitionedCall"
	}
	label := cfOpLabel(s, opType)
	if len(args) != len(fn.Inputs) {
		s.UpdateErr(label, fmt.Errorf("function %q takes %d arguments, got %d", fn.Name(), len(fn.Inputs), len(args)))
		return nil
	}
	ins := make([]Output, 0, len(args)+len(fn.Captures))
	tin := make([]DataType, 0, cap(ins))
	for i, a := range args {
		a = Capture(s, a)
		if a.Op == nil {
			s.UpdateErr(label, fmt.Errorf("argument %d of %q is not an operation's output", i, fn.Name()))
			return nil
		}
		want := fn.Inputs[i]
		if dt := a.DataType(); dt != want.DType {
			s.UpdateErr(label, fmt.Errorf("argument %d of %q is %s, want %s", i, fn.Name(), dt, want.DType))
			return nil
		}
		fitted, ok := cfFitShape(s, a, want.Shape)
		if !ok {
			s.UpdateErr(label, fmt.Errorf("argument %d of %q has shape %s, want %s", i, fn.Name(), cfShape(a), want.Shape))
			return nil
		}
		if a = fitted; a.Op == nil {
			return nil
		}
		ins = append(ins, a)
		tin = append(tin, want.DType)
	}
	for _, c := range fn.Captures {
		c = Capture(s, c)
		if c.Op == nil {
			return nil // Capture recorded why
		}
		ins = append(ins, c)
		tin = append(tin, c.DataType())
	}
	if err := cfAddAll(s.Graph(), append(append([]*Function(nil), fn.deps...), fn.Function)); err != nil {
		s.UpdateErr(label, err)
		return nil
	}
	tout := make([]DataType, len(fn.Outputs))
	for i, o := range fn.Outputs {
		tout[i] = o.DType
	}
	op := s.AddOperation(OpSpec{Type: opType, Input: []any{ins}, Attrs: map[string]any{
		"Tin": tin, "Tout": tout, "f": Func{Name: fn.Name()},
	}})
	if op == nil {
		return nil
	}
	outs := make([]Output, op.NumOutputs())
	for i := range outs {
		outs[i] = op.Output(i)
	}
	return outs
}

// Capture makes x, a value of an enclosing graph, usable in the function
// body that fs builds, as tf.function captures the tensors a Python body
// closes over: the body gets a placeholder for it, and the op that calls
// the body (Call, While, If) passes x in. Capturing the same value twice
// gives the same placeholder; values of fs's own graph come back as they
// are, and values of graphs further out are captured through every body in
// between. Outside a function body, or for a value of an unrelated graph,
// Capture records an error on fs and returns the zero Output.
func Capture(fs *Scope, x Output) Output {
	if x.Op == nil || x.Op.Graph() == fs.Graph() {
		return x
	}
	v, ok := cfBodies.Load(fs.Graph())
	if !ok {
		fs.UpdateErr(cfOpLabel(fs, "Capture"), fmt.Errorf("%s belongs to another graph, and this scope does not build a function body", x.Name()))
		return Output{}
	}
	return v.(*cfBody).capture(x)
}

// cfBodies maps the graph of each function body being traced to its state.
var cfBodies sync.Map // *Graph -> *cfBody

// cfBody is a function body being traced: a fresh graph whose
// placeholders stand for the arguments and for captured outer values.
type cfBody struct {
	parent *Scope // where captured values come from
	root   *Scope // the body's root scope
	args   []Output

	mu       sync.Mutex
	captured []Output          // outer values (of parent's graph), in capture order
	byOuter  map[Output]Output // outer value -> placeholder
}

// capture returns the placeholder standing for x, an outer value.
func (fg *cfBody) capture(x Output) Output {
	outer := x
	if x.Op.Graph() != fg.parent.Graph() {
		outer = Capture(fg.parent, x) // through the bodies in between
		if outer.Op == nil {
			fg.root.UpdateErr(cfOpLabel(fg.root, "Capture"), fmt.Errorf("capturing %s: %w", x.Name(), cfOrUnknown(fg.parent.Err())))
			return Output{}
		}
	}
	fg.mu.Lock()
	defer fg.mu.Unlock()
	if ph, ok := fg.byOuter[outer]; ok {
		return ph
	}
	ph := Out(fg.root.AddOperation(OpSpec{
		Type:  "Placeholder",
		Name:  fmt.Sprintf("captured_%d", len(fg.captured)),
		Attrs: map[string]any{"dtype": outer.DataType(), "shape": cfShape(outer)},
	}), 0)
	if ph.Op == nil {
		return Output{}
	}
	fg.captured = append(fg.captured, outer)
	fg.byOuter[outer] = ph
	return ph
}

func cfOrUnknown(err error) error {
	if err == nil {
		return errors.New("unknown error")
	}
	return err
}

// cfTrace is a traced body: its graph and outputs.
type cfTrace struct {
	fg   *cfBody
	outs []Output
}

// cfTraceFunction runs body on a fresh graph with placeholders for specs.
func cfTraceFunction(parent *Scope, specs []TensorSpec, body func(fs *Scope, args []Output) []Output) (*cfTrace, error) {
	g := NewGraph()
	fg := &cfBody{parent: parent, root: NewScopeWithGraph(g), byOuter: map[Output]Output{}}
	tr := &cfTrace{fg: fg}
	for i, sp := range specs {
		ph := Out(fg.root.AddOperation(OpSpec{
			Type:  "Placeholder",
			Name:  fmt.Sprintf("args_%d", i),
			Attrs: map[string]any{"dtype": sp.DType, "shape": sp.Shape},
		}), 0)
		fg.args = append(fg.args, ph)
	}
	if err := fg.root.Err(); err != nil {
		tr.close()
		return nil, err
	}
	cfBodies.Store(g, fg)
	outs := func() []Output {
		defer cfBodies.Delete(g)
		return body(fg.root, append([]Output(nil), fg.args...))
	}()
	// A value of an enclosing graph used without Capture, or a body built
	// with an enclosing scope, fails where the op is added: package cgo
	// refuses inputs from another graph.
	if err := fg.root.Err(); err != nil {
		tr.close()
		return nil, err
	}
	tr.outs = make([]Output, len(outs))
	for i, o := range outs {
		if o.Op == nil {
			tr.close()
			return nil, fmt.Errorf("output %d is not an operation's output", i)
		}
		// An outer value returned as it is: capture it.
		if tr.outs[i] = Capture(fg.root, o); tr.outs[i].Op == nil {
			tr.close()
			return nil, fg.root.Err()
		}
	}
	return tr, nil
}

// close frees the body graph.
func (tr *cfTrace) close() { tr.fg.root.Graph().Close() }

// toFunction converts the body: inputs are the arguments and then the
// placeholders of extra (outer values, captured here if the body did not).
func (tr *cfTrace) toFunction(name string, hash bool, extra []Output, outs []Output) (*Function, error) {
	inputs := append([]Output(nil), tr.fg.args...)
	for _, e := range extra {
		ph := tr.fg.capture(e)
		if ph.Op == nil {
			return nil, cfOrUnknown(tr.fg.root.Err())
		}
		inputs = append(inputs, ph)
	}
	return cgo.GraphToFunction(tr.fg.root.Graph(), name, inputs, outs, &cgo.FunctionOptions{AppendHashToName: hash})
}

// outSpecs are the dtypes and static shapes of the outputs.
func (tr *cfTrace) outSpecs() []TensorSpec {
	specs := make([]TensorSpec, len(tr.outs))
	for i, o := range tr.outs {
		specs[i] = TensorSpec{DType: o.DataType(), Shape: cfShape(o)}
	}
	return specs
}

// cfStateful reports whether f's body has stateful operations.
func cfStateful(f *Function) (bool, error) {
	def, err := f.FunctionDef()
	if err != nil {
		return true, err
	}
	return def.GetSignature().GetIsStateful(), nil
}

// cfInstall copies the functions the body's graph holds (those its calls,
// loops and conditionals use) and then f into g, and returns the former.
func cfInstall(g *Graph, tr *cfTrace, f *Function) ([]*Function, error) {
	deps, err := tr.fg.root.Graph().Functions()
	if err != nil {
		return nil, err
	}
	if err := cfAddAll(g, append(deps, f)); err != nil {
		cfCloseAll(deps)
		return nil, err
	}
	return deps, nil
}

// cfAddAll adds fs to g, in order.
func cfAddAll(g *Graph, fs []*Function) error {
	for _, f := range fs {
		if err := g.AddFunction(f, nil); err != nil {
			return err
		}
	}
	return nil
}

func cfCloseAll(fs []*Function) {
	for _, f := range fs {
		f.Close()
	}
}

// cfUnionCaptures lists the outer values any of the cfTrace bodies captured, once each.
func cfUnionCaptures(trs ...*cfTrace) []Output {
	var all []Output
	seen := map[Output]bool{}
	for _, tr := range trs {
		for _, c := range tr.fg.captured {
			if !seen[c] {
				seen[c] = true
				all = append(all, c)
			}
		}
	}
	return all
}

// cfOpLabel names what an op of type opType added to s would be called, for errors.
func cfOpLabel(s *Scope, opType string) string {
	if s.namespace == "" {
		return opType
	}
	return s.namespace + "/" + opType
}

// cfFuncPrefix turns the scope's namespace into a function-name prefix.
func cfFuncPrefix(s *Scope) string {
	if s.namespace == "" {
		return ""
	}
	return strings.NewReplacer("/", "_", "-", "_", ".", "_").Replace(s.namespace) + "_"
}

// cfShape is the inferred shape of o, unknown when it cannot be read.
func cfShape(o Output) Shape {
	sh, err := o.Shape()
	if err != nil {
		return UnknownShape()
	}
	return sh
}

// cfShapesCompatible reports whether a and b could describe the same tensor.
func cfShapesCompatible(a, b Shape) bool {
	if a.UnknownRank || b.UnknownRank {
		return true
	}
	if len(a.Dims) != len(b.Dims) {
		return false
	}
	for i := range a.Dims {
		if a.Dims[i] >= 0 && b.Dims[i] >= 0 && a.Dims[i] != b.Dims[i] {
			return false
		}
	}
	return true
}

// cfShapeFits reports whether every tensor of shape a also has shape inv (inv
// is as general as a, or more): what a loop variable's shape must be with
// respect to its shape invariant.
func cfShapeFits(a, inv Shape) bool {
	if inv.UnknownRank {
		return true
	}
	if a.UnknownRank || len(a.Dims) != len(inv.Dims) {
		return false
	}
	for i := range inv.Dims {
		if inv.Dims[i] >= 0 && a.Dims[i] != inv.Dims[i] {
			return false
		}
	}
	return true
}

// cfFitShape returns x with a static shape that fits spec: x itself when it
// already does, x through an EnsureShape op (checked at run time) when its
// static shape is merely less specific (a Placeholder of unknown shape, say),
// and ok=false when the two contradict each other.
func cfFitShape(s *Scope, x Output, spec Shape) (out Output, ok bool) {
	sh := cfShape(x)
	if cfShapeFits(sh, spec) {
		return x, true
	}
	if !cfShapesCompatible(sh, spec) {
		return x, false
	}
	return EnsureShape(s, x, spec), true
}

// cfMostSpecific is the most precise shape both a and b have: dims
// they agree on are kept, others unknown, and a rank mismatch is an unknown rank.
func cfMostSpecific(a, b Shape) Shape {
	if a.UnknownRank || b.UnknownRank || len(a.Dims) != len(b.Dims) {
		return UnknownShape()
	}
	dims := make([]int64, len(a.Dims))
	for i := range dims {
		if a.Dims[i] == b.Dims[i] {
			dims[i] = a.Dims[i]
		} else {
			dims[i] = -1
		}
	}
	if len(dims) == 0 {
		return Shape{}
	}
	return MakeShape(dims...)
}

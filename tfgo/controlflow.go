package tfgo

import (
	"fmt"
)

// WhileOptions are the optional settings of While, as tf.while_loop's
// keyword arguments.
type WhileOptions struct {
	// ShapeInvariants, when not nil, give one shape per loop variable: the
	// shape it keeps across iterations, with -1 for a dimension that may
	// change (a sequence that grows by a token per step is
	// MakeShape(-1)) or UnknownShape() for any shape. nil keeps
	// each variable's static shape. They become the op's output_shapes.
	ShapeInvariants []Shape
	// ParallelIterations is how many iterations may run at once (0: 10).
	ParallelIterations int
}

// While repeats body while cond holds, as tf.while_loop does in TF2
// (while_v2): it emits one While op (StatelessWhile when neither function
// has stateful operations) whose cond and body are functions traced from
// the Go closures, and returns the loop variables' final values (nil once
// the scope has an error).
//
// cond gets the loop variables and returns a scalar bool (one of unknown
// shape is checked at run time); body gets them and
// returns their next values, as many as there are, with the same dtypes and
// shapes that fit the shape invariants (see WhileOptions); a value whose
// static shape is only less specific than its invariant (it depends on a
// Placeholder of unknown shape, say) is checked at run time with
// EnsureShape, as is such an initial value. Both are traced
// once, each on its own graph: use Capture for values of the enclosing graph
// (weights, a step count fed at run time); they are passed to the loop as
// extra, unchanging loop variables. Loops nest: a body may build a While or
// an If of its own.
//
// Mistakes (a body returning the wrong number or dtypes of values, a shape
// that does not fit its invariant, a cond that is not a scalar bool) are
// errors naming the op and the function, recorded on s.
func While(s *Scope, loopVars []Output, cond func(s *Scope, vars []Output) Output,
	body func(s *Scope, vars []Output) []Output, opts WhileOptions) []Output {
	if s.Err() != nil {
		return nil
	}
	label := cfOpLabel(s, "While")
	pfx := cfFuncPrefix(s)
	condName, bodyName := pfx+"while_cond", pfx+"while_body"
	fail := func(format string, args ...any) []Output {
		s.UpdateErr("", fmt.Errorf("op %q: "+format, append([]any{label}, args...)...))
		return nil
	}
	n := len(loopVars)
	if n == 0 {
		return fail("no loop variables")
	}
	if cond == nil || body == nil {
		return fail("nil cond or body")
	}
	if opts.ShapeInvariants != nil && len(opts.ShapeInvariants) != n {
		return fail("%d shape invariants for %d loop variables", len(opts.ShapeInvariants), n)
	}
	if opts.ParallelIterations < 0 {
		return fail("parallel iterations %d < 0", opts.ParallelIterations)
	}
	vars := make([]Output, n)
	specs := make([]TensorSpec, n)
	for i, v := range loopVars {
		if v.Op == nil {
			return fail("loop variable %d is not an operation's output", i)
		}
		if vars[i] = Capture(s, v); vars[i].Op == nil {
			return nil
		}
		inv := cfShape(vars[i])
		if opts.ShapeInvariants != nil {
			inv = opts.ShapeInvariants[i]
			fitted, ok := cfFitShape(s, vars[i], inv)
			if !ok {
				return fail("loop variable %d enters the loop with shape %s, which does not fit its shape invariant %s", i, cfShape(vars[i]), inv)
			}
			if vars[i] = fitted; fitted.Op == nil {
				return nil
			}
		}
		specs[i] = TensorSpec{DType: vars[i].DataType(), Shape: inv}
	}

	ctr, err := cfTraceFunction(s, specs, func(fs *Scope, args []Output) []Output { return []Output{cond(fs, args)} })
	if err != nil {
		return fail("cond %q: %w", condName, err)
	}
	defer ctr.close()
	c := ctr.outs[0]
	if dt, sh := c.DataType(), cfShape(c); dt != Bool || !cfShapesCompatible(sh, Shape{}) {
		return fail("cond %q returns %s of shape %s, want a scalar bool", condName, dt, sh)
	}
	c, _ = cfFitShape(ctr.fg.root, c, Shape{})
	if ctr.outs[0] = c; c.Op == nil {
		return fail("cond %q: %w", condName, cfOrUnknown(ctr.fg.root.Err()))
	}
	btr, err := cfTraceFunction(s, specs, body)
	if err != nil {
		return fail("body %q: %w", bodyName, err)
	}
	defer btr.close()
	if len(btr.outs) != n {
		return fail("body %q returns %d values for %d loop variables", bodyName, len(btr.outs), n)
	}
	for i, o := range btr.outs {
		if dt := o.DataType(); dt != specs[i].DType {
			return fail("body %q returns %s for loop variable %d, which is %s", bodyName, dt, i, specs[i].DType)
		}
		fitted, ok := cfFitShape(btr.fg.root, o, specs[i].Shape)
		if !ok {
			return fail("body %q: loop variable %d enters the loop with shape %s but has shape %s after one iteration; "+
				"give it a less specific shape in WhileOptions.ShapeInvariants", bodyName, i, specs[i].Shape, cfShape(o))
		}
		if btr.outs[i] = fitted; fitted.Op == nil {
			return fail("body %q: %w", bodyName, cfOrUnknown(btr.fg.root.Err()))
		}
	}

	// Values either function captured become extra loop variables that the
	// body passes through unchanged.
	extra := cfUnionCaptures(ctr, btr)
	bodyOuts := append([]Output(nil), btr.outs...)
	for _, e := range extra {
		ph := btr.fg.capture(e)
		if ph.Op == nil {
			return fail("body %q: %w", bodyName, cfOrUnknown(btr.fg.root.Err()))
		}
		bodyOuts = append(bodyOuts, ph)
	}
	cf, err := ctr.toFunction(condName, true, extra, ctr.outs)
	if err != nil {
		return fail("cond %q: %w", condName, err)
	}
	defer cf.Close()
	bf, err := btr.toFunction(bodyName, true, extra, bodyOuts)
	if err != nil {
		return fail("body %q: %w", bodyName, err)
	}
	defer bf.Close()
	stateful, err := cfInstallPair(s.Graph(), [2]*cfTrace{ctr, btr}, [2]*Function{cf, bf})
	if err != nil {
		return fail("%w", err)
	}

	all := append(vars, extra...)
	types := make([]DataType, len(all))
	shapes := make([]Shape, len(all))
	for i, v := range all {
		types[i] = v.DataType()
		if i < n {
			shapes[i] = specs[i].Shape
		} else {
			shapes[i] = cfShape(v)
		}
	}
	parallel := opts.ParallelIterations
	if parallel == 0 {
		parallel = 10
	}
	opType := "StatelessWhile"
	if stateful {
		opType = "While"
	}
	op := s.AddOperation(OpSpec{Type: opType, Input: []any{all}, Attrs: map[string]any{
		"T":                   types,
		"cond":                Func{Name: cf.Name()},
		"body":                Func{Name: bf.Name()},
		"output_shapes":       shapes,
		"parallel_iterations": parallel,
		// As tf.while_loop in a graph: the runtime rewrites the loop into
		// Switch/Merge/NextIteration frames instead of calling the functions
		// once per iteration.
		"_lower_using_switch_merge": true,
	}})
	if op == nil {
		return nil
	}
	outs := make([]Output, n)
	for i := range outs {
		outs[i] = op.Output(i)
	}
	return outs
}

// If runs thenBranch when pred is true and elseBranch otherwise, as tf.cond
// does in TF2 (cond_v2): it emits one If op (StatelessIf when neither
// branch has stateful operations) whose branches are functions traced from
// the Go closures, and returns the outputs of the branch taken (nil once the
// scope has an error).
//
// pred is a scalar bool (one of unknown shape is checked at run time).
// Both branches get inputs (as placeholders of their
// own graphs) and must return as many values, of the same dtypes; an output's
// static shape is what the two branches agree on. Values of the enclosing
// graph reach a branch through Capture and are passed to the op as extra
// inputs. Mistakes are errors naming the op and the branch, recorded on s.
func If(s *Scope, pred Output, inputs []Output, thenBranch, elseBranch func(s *Scope, inputs []Output) []Output) []Output {
	if s.Err() != nil {
		return nil
	}
	label := cfOpLabel(s, "If")
	pfx := cfFuncPrefix(s)
	thenName, elseName := pfx+"cond_true", pfx+"cond_false"
	fail := func(format string, args ...any) []Output {
		s.UpdateErr("", fmt.Errorf("op %q: "+format, append([]any{label}, args...)...))
		return nil
	}
	if thenBranch == nil || elseBranch == nil {
		return fail("nil branch")
	}
	if pred.Op == nil {
		return fail("the predicate is not an operation's output")
	}
	if pred = Capture(s, pred); pred.Op == nil {
		return nil
	}
	if dt, sh := pred.DataType(), cfShape(pred); dt != Bool || !cfShapesCompatible(sh, Shape{}) {
		return fail("the predicate %s is %s of shape %s, want a scalar bool", pred.Name(), dt, sh)
	}
	if pred, _ = cfFitShape(s, pred, Shape{}); pred.Op == nil {
		return nil
	}
	ins := make([]Output, len(inputs))
	specs := make([]TensorSpec, len(inputs))
	for i, in := range inputs {
		if in.Op == nil {
			return fail("input %d is not an operation's output", i)
		}
		if ins[i] = Capture(s, in); ins[i].Op == nil {
			return nil
		}
		specs[i] = TensorSpec{DType: ins[i].DataType(), Shape: cfShape(ins[i])}
	}

	ttr, err := cfTraceFunction(s, specs, thenBranch)
	if err != nil {
		return fail("then branch %q: %w", thenName, err)
	}
	defer ttr.close()
	etr, err := cfTraceFunction(s, specs, elseBranch)
	if err != nil {
		return fail("else branch %q: %w", elseName, err)
	}
	defer etr.close()
	if len(ttr.outs) != len(etr.outs) {
		return fail("then branch %q returns %d values but else branch %q returns %d",
			thenName, len(ttr.outs), elseName, len(etr.outs))
	}
	tout := make([]DataType, len(ttr.outs))
	shapes := make([]Shape, len(ttr.outs))
	for i := range ttr.outs {
		t, e := ttr.outs[i], etr.outs[i]
		if t.DataType() != e.DataType() {
			return fail("output %d is %s in then branch %q but %s in else branch %q",
				i, t.DataType(), thenName, e.DataType(), elseName)
		}
		tout[i] = t.DataType()
		shapes[i] = cfMostSpecific(cfShape(t), cfShape(e))
	}

	extra := cfUnionCaptures(ttr, etr)
	tf, err := ttr.toFunction(thenName, true, extra, ttr.outs)
	if err != nil {
		return fail("then branch %q: %w", thenName, err)
	}
	defer tf.Close()
	ef, err := etr.toFunction(elseName, true, extra, etr.outs)
	if err != nil {
		return fail("else branch %q: %w", elseName, err)
	}
	defer ef.Close()
	stateful, err := cfInstallPair(s.Graph(), [2]*cfTrace{ttr, etr}, [2]*Function{tf, ef})
	if err != nil {
		return fail("%w", err)
	}

	all := append(ins, extra...)
	tin := make([]DataType, len(all))
	for i, v := range all {
		tin[i] = v.DataType()
	}
	opType := "StatelessIf"
	if stateful {
		opType = "If"
	}
	op := s.AddOperation(OpSpec{Type: opType, Input: []any{pred, all}, Attrs: map[string]any{
		"Tcond":                     Bool,
		"Tin":                       tin,
		"Tout":                      tout,
		"then_branch":               Func{Name: tf.Name()},
		"else_branch":               Func{Name: ef.Name()},
		"output_shapes":             shapes,
		"_lower_using_switch_merge": true,
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

// cfInstallPair adds two traced functions (cond and body, or the two
// branches) to g with the functions they call, and reports whether either
// is stateful.
func cfInstallPair(g *Graph, trs [2]*cfTrace, fs [2]*Function) (bool, error) {
	stateful := false
	for i, f := range fs {
		deps, err := cfInstall(g, trs[i], f)
		if err != nil {
			return false, fmt.Errorf("%q: %w", f.Name(), err)
		}
		cfCloseAll(deps)
		st, err := cfStateful(f)
		if err != nil {
			return false, fmt.Errorf("%q: %w", f.Name(), err)
		}
		stateful = stateful || st
	}
	return stateful, nil
}

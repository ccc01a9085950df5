package tfgo

import (
	"fmt"
)

// recomputeSegment is a set of ops whose activations Gradients recomputes
// instead of keeping them alive from the forward pass to the backward one.
type recomputeSegment struct {
	id      int
	ops     []*Operation // in creation order, which is a topological order
	dropped bool         // DropRecompute: no longer recomputed, and joined by nothing
}

// recomputeState is the graph's segment membership. It lives in scopeState
// and is guarded by scopeState.mu.
type recomputeState struct {
	n    int
	byOp map[*Operation]*recomputeSegment
}

// WithRecompute returns a scope whose operations, and those of every scope
// derived from it, form one new recomputation segment (gradient
// checkpointing, as tf.recompute_grad): Gradients does not keep the
// segment's intermediate activations for the backward pass but recomputes
// them from the segment's inputs once the gradient reaches the segment, so
// only the tensors entering and leaving the segment (and what cannot be
// recomputed) stay alive between the passes. Stateful ops (variable reads
// and updates, random ops with state), ops with resource outputs, and ops
// computed only from those (constants, a dropout's seed and key) are not
// recomputed: the recomputation reuses their forward values, so a
// stateless dropout draws the same mask again.
//
// Each call starts a new segment, except on a scope that is already in one,
// which keeps its segment: segments do not nest.
func (s *Scope) WithRecompute() *Scope {
	if !s.valid() {
		return s
	}
	c := *s
	s.state.mu.Lock()
	if c.segment == nil || c.segment.dropped {
		s.state.recompute.n++
		c.segment = &recomputeSegment{id: s.state.recompute.n}
	}
	s.state.mu.Unlock()
	return &c
}

// RecomputeSegment is the recomputation segment op belongs to, numbered
// from 1 in the order of the WithRecompute calls of the graph, or 0 when op
// was not added through a WithRecompute scope (or s is nil or zero).
func (s *Scope) RecomputeSegment(op *Operation) int {
	if seg := s.segmentOf(op); seg != nil {
		return seg.id
	}
	return 0
}

func (s *Scope) segmentOf(op *Operation) *recomputeSegment {
	if !s.valid() || op == nil {
		return nil
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	return s.state.recompute.byOp[op]
}

// DropRecompute makes the ops of the scope's recomputation segment
// ordinary ops again, kept for the backward pass like any other (and ops
// added later through the scope join no segment): for a caller that
// decides after building a segment that it is not worth recomputing, as
// Keras' RematScope(mode="larger_than") decides by the layer's output size.
// A scope in no segment is left alone.
func (s *Scope) DropRecompute() {
	if !s.valid() || s.segment == nil {
		return
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	for _, op := range s.segment.ops {
		delete(s.state.recompute.byOp, op)
	}
	s.segment.ops = nil
	s.segment.dropped = true
}

// joinSegment records a new op as a member of the scope's segment.
func (s *Scope) joinSegment(op *Operation) {
	if s.segment == nil || op == nil {
		return
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	if s.segment.dropped {
		return
	}
	if s.state.recompute.byOp == nil {
		s.state.recompute.byOp = map[*Operation]*recomputeSegment{}
	}
	s.state.recompute.byOp[op] = s.segment
	s.segment.ops = append(s.segment.ops, op)
}

// segmentOps is a copy of the segment's ops, taken under the lock because
// other goroutines may still add to the graph.
func (s *Scope) segmentOps(seg *recomputeSegment) []*Operation {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	return append([]*Operation(nil), seg.ops...)
}

// recomputable tells, for each op of a segment, whether Gradients
// recomputes it: a stateless op without resource outputs, with a data input
// (not a resource handle) that comes from outside the segment or from a
// recomputed op. The rest (constants, variable reads and updates, a
// dropout's seed arithmetic) must not run twice (a second read after the
// segment's own update would see another value) or derives only from such
// values and constants, so the clones reuse their forward outputs.
func recomputable(ops []*Operation, stateful func(*Operation) (bool, error)) (map[*Operation]bool, error) {
	member := make(map[*Operation]bool, len(ops))
	for _, op := range ops {
		member[op] = true
	}
	re := map[*Operation]bool{}
	for _, op := range ops {
		st, err := stateful(op)
		if err != nil {
			return nil, err
		}
		if st {
			continue
		}
		resOut := false
		for i := 0; i < op.NumOutputs(); i++ {
			resOut = resOut || op.OutputType(i) == Resource
		}
		if resOut {
			continue
		}
		for i, in := range op.Inputs() {
			if op.InputType(i) == Resource {
				continue
			}
			if !member[in.Op] || re[in.Op] {
				re[op] = true
				break
			}
		}
	}
	return re, nil
}

// recomputation is the clone of one segment made by one Gradients call.
type recomputation struct {
	clones map[*Operation]*Operation // original -> clone, recomputed ops only
}

// isStateful reads the OpDef's is_stateful flag, cached per op type.
func (b *backprop) isStateful(op *Operation) (bool, error) {
	t := op.Type()
	if v, ok := b.stateful[t]; ok {
		return v, nil
	}
	def, err := op.Graph().OpDef(t)
	if err != nil {
		return false, err
	}
	b.stateful[t] = def.GetIsStateful()
	return def.GetIsStateful(), nil
}

// recompute clones the recomputable ops of seg, the first time the
// backward walk reaches one of its ops; grads are the gradients flowing
// into that op. The clones without a recomputed input wait for those
// gradients (a control dependency): without it the executor, free to run
// any ready op, would recompute during the forward pass and keep the
// clones' outputs alive just as long as the originals'. The dependency also
// keeps Grappler's common-subexpression elimination from merging the clones
// back into the originals, which it does without it (same op, attrs and
// inputs; TestRecomputeSavesMemory sees no saving then): a node with other
// control inputs is not a duplicate, and the clones downstream of the roots
// differ by their inputs.
func (b *backprop) recompute(seg *recomputeSegment, grads []Output) (*recomputation, error) {
	if r, ok := b.recomputed[seg]; ok {
		return r, nil
	}
	ops := b.s.segmentOps(seg)
	re, err := recomputable(ops, b.isStateful)
	if err != nil {
		return nil, err
	}
	var trigger []*Operation
	seen := map[*Operation]bool{}
	for _, g := range grads {
		if g.Op != nil && !seen[g.Op] {
			seen[g.Op] = true
			trigger = append(trigger, g.Op)
		}
	}
	trigger = append(trigger, b.s.controlDeps...)
	rs := b.s.SubScope(fmt.Sprintf("recompute_%d", seg.id))
	r := &recomputation{clones: map[*Operation]*Operation{}}
	for _, op := range ops {
		if !re[op] {
			continue
		}
		c, err := b.cloneOp(rs, op, r.clones, trigger)
		if err != nil {
			return nil, fmt.Errorf("recomputing %q: %w", op.Name(), err)
		}
		r.clones[op] = c
	}
	b.recomputed[seg] = r
	return r, nil
}

// cloneOp adds a copy of op (type, attrs, device, control inputs) whose
// inputs come from the clones where those exist.
func (b *backprop) cloneOp(s *Scope, op *Operation, clones map[*Operation]*Operation, trigger []*Operation) (*Operation, error) {
	g := op.Graph()
	def, err := g.OpDef(op.Type())
	if err != nil {
		return nil, err
	}
	nd, err := op.NodeDef()
	if err != nil {
		return nil, err
	}
	mapped := func(o Output) (Output, bool) {
		if c, ok := clones[o.Op]; ok {
			return c.Output(o.Index), true
		}
		return o, false
	}
	builder := g.NewOperation(op.Type(), s.uniqueName(op.Name()))
	root := true
	next := 0
	for _, arg := range def.GetInputArg() {
		if arg.GetNumberAttr() == "" && arg.GetTypeListAttr() == "" {
			in, c := mapped(op.Input(next))
			root = root && !c
			builder.AddInput(in)
			next++
			continue
		}
		n, err := op.InputListLength(arg.GetName())
		if err != nil {
			return nil, err
		}
		list := make([]Output, n)
		for i := range list {
			in, c := mapped(op.Input(next + i))
			root = root && !c
			list[i] = in
		}
		builder.AddInputList(list)
		next += n
	}
	if next != op.NumInputs() {
		return nil, fmt.Errorf("grouped %d of its %d inputs by the OpDef of %s", next, op.NumInputs(), op.Type())
	}
	// Every attr, _XlaCompile/_XlaScope and _class (colocation) included,
	// as the AttrValue protos the runtime holds: no kind needs converting.
	for name, v := range nd.GetAttr() {
		builder.SetAttr(name, v)
	}
	if d := op.Device(); d != "" {
		builder.SetDevice(d)
	}
	for _, c := range op.ControlInputs() {
		if cc, ok := clones[c]; ok {
			root = false
			c = cc
		}
		builder.AddControlInput(c)
	}
	if root {
		for _, t := range trigger {
			builder.AddControlInput(t)
		}
	}
	return builder.Finish()
}

// forwardOp is the op whose inputs and outputs op's gradient function
// reads: its recomputed clone when op belongs to a segment and is
// recomputed, else op itself.
func (b *backprop) forwardOp(op *Operation, grads []Output) (*Operation, error) {
	seg := b.s.segmentOf(op)
	if seg == nil {
		return op, nil
	}
	r, err := b.recompute(seg, grads)
	if err != nil {
		return nil, err
	}
	if c, ok := r.clones[op]; ok {
		return c, nil
	}
	return op, nil
}

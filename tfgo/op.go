package tfgo

import (
	"fmt"
)

// OpSpec describes an operation for Scope.AddOperation.
type OpSpec struct {
	Type string // op type, e.g. "MatMul"
	Name string // defaults to Type; made unique within the scope
	// Input holds, in the op's order, an Output for each single input and an
	// []Output for each list input.
	Input []any
	Attrs map[string]any // values as cgo.OpBuilder.SetAttr takes them
}

// AddOperation adds an operation and returns it, or nil once the scope has
// an error (this one's or an earlier one's).
func (s *Scope) AddOperation(spec OpSpec) *Operation {
	if s.Err() != nil {
		return nil
	}
	name := s.opName(spec.Name, spec.Type)
	b := s.state.graph.NewOperation(spec.Type, name)
	for i, in := range spec.Input {
		switch v := in.(type) {
		case Output:
			if v.Op == nil {
				s.UpdateErr(name, fmt.Errorf("input %d of %s is not an operation's output", i, spec.Type))
				return nil
			}
			b.AddInput(v)
		case []Output:
			b.AddInputList(v)
		default:
			s.UpdateErr(name, fmt.Errorf("input %d of %s has type %T; want Output or []Output", i, spec.Type, in))
			return nil
		}
	}
	for k, v := range spec.Attrs {
		b.SetAttr(k, v)
	}
	if s.device != "" {
		b.SetDevice(s.device)
	}
	if s.jitScope != "" {
		b.SetAttr("_XlaCompile", true).SetAttr("_XlaScope", s.jitScope)
	}
	for _, c := range s.controlDeps {
		b.AddControlInput(c)
	}
	op, err := b.Finish()
	if err != nil {
		s.UpdateErr(name, err)
		return nil
	}
	s.joinSegment(op)
	return op
}

// Op adds an operation of type opType with inputs and attrs, named after its
// type, and returns it (nil once the scope has an error).
func Op(s *Scope, opType string, inputs []any, attrs map[string]any) *Operation {
	return s.AddOperation(OpSpec{Type: opType, Input: inputs, Attrs: attrs})
}

// Out returns the i-th output of op, or the zero Output when op is nil (an
// earlier error), so that chained construction reaches the scope's error
// instead of a nil-pointer panic.
func Out(op *Operation, i int) Output {
	if op == nil {
		return Output{}
	}
	return op.Output(i)
}

package tfgo

// Const adds a constant holding value (any Go value NewTensor accepts, or a
// *Tensor).
func Const(s *Scope, value any) Output {
	t, err := NewTensor(value)
	if err != nil {
		s.UpdateErr("Const", err)
		return Output{}
	}
	if _, given := value.(*Tensor); !given {
		defer t.Close() // the graph keeps its own copy
	}
	return Out(s.AddOperation(OpSpec{Type: "Const", Attrs: map[string]any{"dtype": t.DataType(), "value": t}}), 0)
}

// Placeholder adds a placeholder to feed at run time. With no dims its shape
// is unknown; otherwise it has the given dims (-1 for unknown ones).
func Placeholder(s *Scope, dtype DataType, dims ...int64) Output {
	shape := UnknownShape()
	if dims != nil {
		shape = MakeShape(dims...)
	}
	return Out(s.AddOperation(OpSpec{Type: "Placeholder", Attrs: map[string]any{"dtype": dtype, "shape": shape}}), 0)
}

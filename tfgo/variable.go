package tfgo

import (
	"fmt"
)

// Variable is a resource variable, built as TensorFlow's ResourceVariable
// builds one in a graph. NewVariable(s.SubScope("dense"), "kernel", ...) adds
//
//	dense/kernel                        VarHandleOp (shared_name "dense/kernel", container "")
//	dense/kernel/Initializer/...        the initial value, from the Initializer
//	dense/kernel/Assign                 AssignVariableOp: the initializer op
//	dense/kernel/Read/ReadVariableOp    the read that Value returns
//
// and records the variable in its graph's collection (Variables,
// TrainableVariables, GlobalVariablesInitializer). Run the initializer (or
// GlobalVariablesInitializer) once per session before reading.
type Variable struct {
	name      string
	dtype     DataType
	shape     []int64
	trainable bool
	handle    Output
	value     Output
	initOp    *Operation
}

// variableCollection lists the variables of one graph in creation order.
// It lives in scopeState (shared by every scope derived from one root) and
// is guarded by scopeState.mu.
type variableCollection struct {
	all []*Variable
}

// VariableOption configures NewVariable.
type VariableOption func(*variableOptions)

type variableOptions struct {
	trainable bool
}

// Trainable sets whether the variable is listed by TrainableVariables
// (default true), as tf.Variable(trainable=...) / Keras add_weight do.
func Trainable(trainable bool) VariableOption {
	return func(o *variableOptions) { o.trainable = trainable }
}

// NewVariable adds a resource variable named name in scope s (made unique
// as operation names are: a second "kernel" is "kernel_1"), of dtype and
// shape (every dim known), whose initializer assigns init's value.
//
// Errors stick to the scope: a bad shape, an initializer failing or giving
// a value of another dtype or shape (reported naming "<name>/Assign"). The
// returned Variable is never nil; after an error it is not added to the
// collection, and its methods add nothing (they return zero Outputs / nil).
func NewVariable(s *Scope, name string, dtype DataType, shape []int64, init Initializer, opts ...VariableOption) *Variable {
	o := variableOptions{trainable: true}
	for _, opt := range opts {
		opt(&o)
	}
	v := &Variable{dtype: dtype, shape: append([]int64{}, shape...), trainable: o.trainable}
	for _, d := range shape {
		if d < 0 {
			s.UpdateErr(fullOpName(s, name), fmt.Errorf("variable %q: shape %v has an unknown or negative dimension", name, shape))
			return v
		}
	}
	if init == nil {
		s.UpdateErr(fullOpName(s, name), fmt.Errorf("variable %q: nil initializer", name))
		return v
	}
	if s.Err() != nil { // a nil or zero scope too: there is nothing to copy
		return v
	}
	// Like Python's ops.init_scope: the variable's own ops do not depend on
	// the control dependencies of the scope it is created in.
	c := *s
	c.controlDeps = nil
	s = &c
	// The handle is named exactly the reserved unique name, which is also
	// its shared_name and the namespace of the variable's other ops
	// ("dense/kernel/Assign"), as with Python's name scopes.
	full := s.uniqueName(name)
	b := s.state.graph.NewOperation("VarHandleOp", full).
		SetAttr("dtype", dtype).
		SetAttr("shape", MakeShape(v.shape...)).
		SetAttr("shared_name", full).
		SetAttr("container", "")
	if s.device != "" {
		b.SetDevice(s.device)
	}
	h, err := b.Finish()
	if err != nil {
		s.UpdateErr(full, err)
		return v
	}
	v.name = full
	v.handle = Out(h, 0)
	vs := *s
	vs.namespace = full

	initial := init.Init(vs.SubScope("Initializer"), v.shape, dtype)
	if initial.Op == nil {
		s.UpdateErr(v.name+"/Initializer", fmt.Errorf("variable %q: the initializer returned no value", v.name))
		return v
	}
	if err := checkInitialValue(initial, dtype, v.shape); err != nil {
		s.UpdateErr(vs.namespace+"/Assign", fmt.Errorf("variable %q: %w", v.name, err))
		return v
	}
	v.initOp = vs.AddOperation(OpSpec{Type: "AssignVariableOp", Name: "Assign",
		Input: []any{v.handle, initial}, Attrs: map[string]any{"dtype": dtype}})
	v.value = ReadVariableOp(vs.SubScope("Read"), v.handle, dtype)
	if s.Err() != nil {
		return v
	}
	s.state.mu.Lock()
	s.state.variables.all = append(s.state.variables.all, v)
	s.state.mu.Unlock()
	return v
}

// checkInitialValue reports an initial value whose dtype or static shape
// differs from the variable's.
func checkInitialValue(initial Output, dtype DataType, shape []int64) error {
	if dt := initial.DataType(); dt != dtype {
		return fmt.Errorf("initial value %s is %s, the variable is %s", initial.Name(), dt, dtype)
	}
	if got, err := initial.Shape(); err == nil && !compatibleShape(got, shape) {
		return fmt.Errorf("initial value %s has shape %s, the variable has shape %s", initial.Name(), got, MakeShape(shape...))
	}
	return nil
}

// Name is the variable's unique full name, e.g. "dense/kernel": the name of
// its VarHandleOp and its shared_name.
func (v *Variable) Name() string { return v.name }

// DType is the variable's element type.
func (v *Variable) DType() DataType { return v.dtype }

// Shape is the variable's shape (a copy).
func (v *Variable) Shape() []int64 { return append([]int64{}, v.shape...) }

// Trainable reports whether TrainableVariables lists the variable.
func (v *Variable) Trainable() bool { return v.trainable }

// Handle is the resource handle (the VarHandleOp's output), the input of
// resource ops such as optimizers' ResourceApply* and checkpoint restores.
func (v *Variable) Handle() Output { return v.handle }

// Value is the read made at construction ("<name>/Read/ReadVariableOp").
// It has no control dependencies: in a run that also updates the variable,
// use Read in a scope with control dependencies on the update.
func (v *Variable) Value() Output { return v.value }

// Initializer is the op that assigns the initial value ("<name>/Assign").
func (v *Variable) Initializer() *Operation { return v.initOp }

// Read adds a fresh ReadVariableOp in scope s (with s's control
// dependencies), as tf.Variable.value() does.
func (v *Variable) Read(s *Scope) Output {
	if !v.usable(s, "ReadVariableOp") {
		return Output{}
	}
	return ReadVariableOp(s, v.handle, v.dtype)
}

// Assign adds an AssignVariableOp setting the variable to value in scope s.
// A value of another dtype, or of a static shape incompatible with the
// variable's, is an error naming the op (TensorFlow's own checks when the
// op is added; a shape known only at run time is not checked, as in
// TensorFlow).
func (v *Variable) Assign(s *Scope, value Output) *Operation {
	return v.update(s, "AssignVariableOp", value)
}

// AssignAdd adds an AssignAddVariableOp: variable += value.
func (v *Variable) AssignAdd(s *Scope, value Output) *Operation {
	return v.update(s, "AssignAddVariableOp", value)
}

// AssignSub adds an AssignSubVariableOp: variable -= value.
func (v *Variable) AssignSub(s *Scope, value Output) *Operation {
	return v.update(s, "AssignSubVariableOp", value)
}

func (v *Variable) update(s *Scope, opType string, value Output) *Operation {
	if !v.usable(s, opType) {
		return nil
	}
	// dtype is the variable's: TensorFlow rejects a value of another type
	// when the op is added, naming the op.
	// AssignVariableOp's shape function also rejects a value whose static
	// shape differs from the variable's, as tf.Variable.assign does.
	return Op(s, opType, []any{v.handle, value}, map[string]any{"dtype": v.dtype})
}

// compatibleShape reports whether a (possibly partly known) static shape
// can be the fully known shape want.
func compatibleShape(got Shape, want []int64) bool {
	if got.UnknownRank {
		return true
	}
	if got.Rank() != len(want) {
		return false
	}
	for i, d := range got.Dims {
		if d >= 0 && d != want[i] {
			return false
		}
	}
	return true
}

func (v *Variable) usable(s *Scope, op string) bool {
	if v == nil || v.handle.Op == nil {
		if s.Err() == nil {
			s.UpdateErr(fullOpName(s, op), fmt.Errorf("variable was not created"))
		}
		return false
	}
	return true
}

// Variables lists the variables created in s's graph (through any scope
// derived from the same root), in creation order, as
// tf.compat.v1.global_variables().
func Variables(s *Scope) []*Variable {
	if !s.valid() {
		return nil
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	return append([]*Variable{}, s.state.variables.all...)
}

// TrainableVariables lists the trainable variables of s's graph in
// creation order, as tf.compat.v1.trainable_variables().
func TrainableVariables(s *Scope) []*Variable {
	if !s.valid() {
		return nil
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	var out []*Variable
	for _, v := range s.state.variables.all {
		if v.trainable {
			out = append(out, v)
		}
	}
	return out
}

// GlobalVariablesInitializer adds a NoOp named "init" (as
// tf.compat.v1.global_variables_initializer) that runs after the
// initializer of every variable created so far in s's graph. Run it as a
// target once per session.
func GlobalVariablesInitializer(s *Scope) *Operation {
	vars := Variables(s)
	inits := make([]*Operation, 0, len(vars))
	for _, v := range vars {
		inits = append(inits, v.initOp)
	}
	return s.WithControlDependencies(inits...).AddOperation(OpSpec{Type: "NoOp", Name: "init"})
}

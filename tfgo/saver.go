package tfgo

import (
	"fmt"
)

// Saver saves and restores variables inside the session, with TensorFlow's
// SaveV2 and RestoreV2 kernels (tf.compat.v1.train.Saver): the values never
// leave the runtime, and the files are TensorFlow checkpoints keyed by the
// variables' names. Build it once; Save and Restore run one op each.
type Saver struct {
	prefix  Output // the checkpoint prefix to feed
	save    *Operation
	restore *Operation
}

// NewSaver adds save and restore ops for vars (all the graph's variables
// when vars is nil) under the scope's "save" namespace.
func NewSaver(s *Scope, vars []*Variable) *Saver {
	if vars == nil {
		vars = Variables(s)
	}
	ss := s.SubScope("save")
	sv := &Saver{prefix: Placeholder(ss.SubScope("filename"), String)}
	if len(vars) == 0 {
		ss.UpdateErr("save", fmt.Errorf("no variables to save"))
		return sv
	}
	names := make([]string, len(vars))
	slices := make([]string, len(vars))
	dtypes := make([]DataType, len(vars))
	values := make([]Output, len(vars))
	for i, v := range vars {
		names[i], dtypes[i], values[i] = v.Name(), v.DType(), v.Read(ss)
	}
	nameT := Const(ss.SubScope("tensor_names"), names)
	sliceT := Const(ss.SubScope("shape_and_slices"), slices)
	sv.save = SaveV2(ss, sv.prefix, nameT, sliceT, values)
	restored := RestoreV2(ss, sv.prefix, nameT, sliceT, dtypes)
	if len(restored) != len(vars) { // nil: the scope has the error
		return sv
	}
	var assigns []*Operation
	for i, v := range vars {
		assigns = append(assigns, v.Assign(ss, restored[i]))
	}
	sv.restore = ss.WithControlDependencies(assigns...).AddOperation(OpSpec{Type: "NoOp", Name: "restore_all"})
	return sv
}

// Save writes the variables' current values as the checkpoint prefix
// (prefix.index, prefix.data-00000-of-00001).
func (sv *Saver) Save(sess *Session, prefix string) error {
	if sv.save == nil {
		return fmt.Errorf("saver has no save op (see the scope's error)")
	}
	if _, err := sess.Run(map[Output]any{sv.prefix: prefix}, nil, sv.save); err != nil {
		return fmt.Errorf("saving %s: %w", prefix, err)
	}
	return nil
}

// Restore assigns every variable its value in the checkpoint prefix; a
// missing variable or one of another dtype or shape is an error naming it.
func (sv *Saver) Restore(sess *Session, prefix string) error {
	if sv.restore == nil {
		return fmt.Errorf("saver has no restore op (see the scope's error)")
	}
	if _, err := sess.Run(map[Output]any{sv.prefix: prefix}, nil, sv.restore); err != nil {
		return fmt.Errorf("restoring %s: %w", prefix, err)
	}
	return nil
}

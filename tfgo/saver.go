package tfgo

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/savedmodel"
)

// Saver saves and restores variables inside the session, with TensorFlow's
// SaveV2 and RestoreV2 kernels (tf.compat.v1.train.Saver): the values never
// leave the runtime, and the files are TensorFlow checkpoints keyed by the
// variables' names. Build it once; Save and Restore run a few ops each.
type Saver struct {
	prefix  Output // the checkpoint prefix to feed
	save    *Operation
	restore *Operation
	// The two-shard save: SaveV2 of each half of the variables at parts,
	// merged at merged by MergeV2Checkpoints (nil with one variable).
	parts  [2]Output
	merged Output
	save2  *Operation
	vars   []*Variable
}

// errNilSaver is what a nil Saver's methods return: the caller ignored
// NewSaver's result, or never called it.
var errNilSaver = errors.New("tfgo: nil Saver (make one with tfgo.NewSaver)")

// NewSaver adds save and restore ops for vars (all the graph's variables
// when vars is nil) under the scope's "save" namespace.
func NewSaver(s *Scope, vars []*Variable) *Saver {
	if vars == nil {
		vars = Variables(s)
	}
	ss := s.SubScope("save")
	sv := &Saver{prefix: Placeholder(ss.SubScope("filename"), String), vars: vars}
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
	if len(vars) > 1 {
		sv.addTwoShardSave(ss, names, values)
	}
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

// addTwoShardSave adds the save that writes a two-shard checkpoint, as
// TensorFlow's sharded saver does: one SaveV2 per shard into a temporary
// prefix, then MergeV2Checkpoints, which writes the merged index and
// renames the data files. The variables are split by bytes.
func (sv *Saver) addTwoShardSave(ss *Scope, names []string, values []Output) {
	var groupNames [2][]string
	var groupValues [2][]Output
	var bytes [2]int64
	for i, v := range sv.vars {
		size := int64(v.DType().Size())
		if n, err := dtypes.NumElements(v.Shape()); err == nil && n > 0 {
			size *= n
		}
		g := 0
		if bytes[1] < bytes[0] {
			g = 1
		}
		bytes[g] += size
		groupNames[g] = append(groupNames[g], names[i])
		groupValues[g] = append(groupValues[g], values[i])
	}
	var saves []*Operation
	for g := range 2 {
		gs := ss.SubScope(fmt.Sprintf("shard_%d", g))
		sv.parts[g] = Placeholder(gs.SubScope("filename"), String)
		saves = append(saves, SaveV2(gs, sv.parts[g],
			Const(gs.SubScope("tensor_names"), groupNames[g]),
			Const(gs.SubScope("shape_and_slices"), make([]string, len(groupNames[g]))),
			groupValues[g]))
	}
	sv.merged = Placeholder(ss.SubScope("merged_filename"), String)
	sv.save2 = MergeV2Checkpoints(ss.WithControlDependencies(saves...), Pack(ss, sv.parts[:]), sv.merged,
		MergeV2CheckpointsDeleteOldDirs(false))
}

// Save writes the variables' current values as the checkpoint prefix
// (prefix.index and its data files), crash-safely: a process killed at any
// instant of Save leaves at prefix either the previous checkpoint or the
// new one, complete, and the next Save removes what the killed one left.
//
// The new checkpoint is written in a temporary directory next to prefix
// and has one data shard when the previous one had two, and two
// otherwise, so that its data files are renamed into place under names the
// previous index does not reference; the index is renamed last (see
// savedmodel.ReplaceBundle). The two-shard checkpoint of a single
// variable is written through Go (SaveVariables), as SaveV2 needs at
// least one tensor per shard.
func (sv *Saver) Save(sess *Session, prefix string) error {
	if sv == nil {
		return errNilSaver
	}
	if sv.save == nil {
		return fmt.Errorf("saver has no save op (see the scope's error)")
	}
	err := savedmodel.ReplaceBundle(prefix, func(tmp string, numShards int) error {
		switch {
		case numShards == 1:
			_, err := sess.Run(map[Output]any{sv.prefix: tmp}, nil, sv.save)
			return err
		case sv.save2 != nil:
			dir := filepath.Dir(tmp)
			_, err := sess.Run(map[Output]any{
				sv.parts[0]: filepath.Join(dir, "part-00000-of-00002"),
				sv.parts[1]: filepath.Join(dir, "part-00001-of-00002"),
				sv.merged:   tmp,
			}, nil, sv.save2)
			return err
		}
		names := make([]string, len(sv.vars))
		for i, v := range sv.vars {
			names[i] = v.Name()
		}
		// Synced by ReplaceBundle before the renames: DirectIO has the bytes
		// on the device by then, where the page cache's would be written back.
		return SaveVariables(sess, tmp, names, sv.vars, savedmodel.WriteOptions{NumShards: numShards, NoSync: true, IO: savedmodel.DirectIO})
	})
	if err != nil {
		return fmt.Errorf("saving %s: %w", prefix, err)
	}
	return nil
}

// Restore assigns every variable its value in the checkpoint prefix; a
// missing variable or one of another dtype or shape is an error naming it.
func (sv *Saver) Restore(sess *Session, prefix string) error {
	if sv == nil {
		return errNilSaver
	}
	if sv.restore == nil {
		return fmt.Errorf("saver has no restore op (see the scope's error)")
	}
	if _, err := sess.Run(map[Output]any{sv.prefix: prefix}, nil, sv.restore); err != nil {
		return fmt.Errorf("restoring %s: %w", prefix, err)
	}
	return nil
}

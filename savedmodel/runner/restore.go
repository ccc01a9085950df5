package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// variableValueAttr is the attribute a variable's value is saved under in
// a TF2 checkpoint's object graph (".ATTRIBUTES/VARIABLE_VALUE" keys).
const variableValueAttr = "VARIABLE_VALUE"

// restoreCapturedVariables restores, from the SavedModel's object graph,
// the variables its signatures capture that TensorFlow's C++ loader left
// uninitialized.
//
// The C++ loader (TF_LoadSessionFromSavedModel, as TF Serving) restores a
// SavedModel's variables by running its SaverDef's restore op. Python's
// tf.saved_model.load restores them through the object graph instead:
// each variable object gets the checkpoint value of its node, and the
// functions capture the objects (SavedConcreteFunction.bound_inputs).
// Some TF2 exports differ in the two: tf.saved_model.save of a Keras 3
// model writes the restore op for copies of the variables ("Variable",
// "Variable_1", ...) while its signatures capture the layers' own
// handles ("dense/kernel"), which the restore op never writes; Python
// loads such a model, the C++ loader leaves the captured handles empty
// and every run fails with "Could not find variable". So after the C++
// loader, every handle a signature's function call captures is checked,
// and those still uninitialized get the value the object graph's
// checkpoint holds for them.
func (m *Model) restoreCapturedVariables() error {
	og := m.meta.GetObjectGraphDef()
	if len(og.GetConcreteFunctions()) == 0 {
		return nil // TF1 export: the restore op is all there is
	}
	ix := newGraphIndex(m.meta.GetGraphDef())
	// The VarHandleOps that function calls of the graph capture, each
	// with the object graph node the call's bound input names.
	handles := map[string]int32{}
	for _, n := range m.meta.GetGraphDef().GetNode() {
		if n.GetOp() != "StatefulPartitionedCall" && n.GetOp() != "PartitionedCall" {
			continue
		}
		cf, ok := og.GetConcreteFunctions()[n.GetAttr()["f"].GetFunc().GetName()]
		if !ok {
			continue
		}
		var data []string
		for _, in := range n.GetInput() {
			if !strings.HasPrefix(in, "^") {
				data = append(data, in)
			}
		}
		bound := cf.GetBoundInputs()
		if len(bound) > len(data) {
			continue
		}
		data = data[len(data)-len(bound):]
		for i, in := range data {
			op, index, _ := parseInput(in)
			id := bound[i]
			if h := ix.nodes[op]; h == nil || h.GetOp() != "VarHandleOp" || index != 0 ||
				int(id) < 0 || int(id) >= len(og.GetNodes()) || og.GetNodes()[id].GetVariable() == nil {
				continue
			}
			handles[op] = id
		}
	}
	if len(handles) == 0 {
		return nil
	}
	names := sortedKeys(handles)
	g := m.sess.Graph()
	s := tfgo.NewScopeWithGraph(g).SubScope("gotf_restore_captured")
	checks := make([]tfgo.Output, len(names))
	for i, name := range names {
		h, err := g.OutputByName(name + ":0")
		if err != nil {
			return fmt.Errorf("variable %q: %w", name, err)
		}
		checks[i] = tfgo.VarIsInitializedOp(s, h)
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("checking the captured variables: %w", err)
	}
	res, err := m.sess.Run(nil, checks)
	if err != nil {
		return fmt.Errorf("checking the captured variables: %w", err)
	}
	var todo []string
	for i, r := range res {
		if d := r.Data(); len(d) == 1 && d[0] == 0 {
			todo = append(todo, names[i])
		}
		r.Close()
	}
	if len(todo) == 0 {
		return nil
	}

	prefix := savedmodel.VariablesPrefix(m.dir)
	r, err := savedmodel.OpenBundle(prefix)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no bundle: nothing to restore from; runs reading them fail as before
	}
	if err != nil {
		return err
	}
	defer r.Close()
	keys, err := objectCheckpointKeys(og, r, prefix)
	if errors.Is(err, savedmodel.ErrNotFound) {
		return nil // no object graph: the same
	}
	if err != nil {
		return err
	}
	var (
		ckKeys  []string
		dts     []tfgo.DataType
		targets []tfgo.Output
	)
	for _, name := range todo {
		key, ok := keys[handles[name]]
		if !ok {
			continue // no value saved: a run reading it fails as before
		}
		e, err := r.EntryProto(key)
		if err != nil {
			return fmt.Errorf("variable %q: %w", name, err)
		}
		h, _ := g.OutputByName(name + ":0")
		ckKeys = append(ckKeys, key)
		dts = append(dts, tfgo.DataType(e.GetDtype()))
		targets = append(targets, h)
	}
	if len(ckKeys) == 0 {
		return nil
	}
	slices := make([]string, len(ckKeys))
	values := tfgo.RestoreV2(s, tfgo.Const(s, prefix), tfgo.Const(s, ckKeys), tfgo.Const(s, slices), dts)
	assigns := make([]*tfgo.Operation, len(values))
	for i, v := range values {
		assigns[i] = tfgo.AssignVariableOp(s, targets[i], v)
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("restoring the captured variables: %w", err)
	}
	if _, err := m.sess.Run(nil, nil, assigns...); err != nil {
		return fmt.Errorf("restoring %d captured variables (%s) from %s: %w", len(ckKeys), strings.Join(ckKeys, ", "), prefix, err)
	}
	return nil
}

// objectCheckpointKeys maps the nodes of a SavedModel's object graph to
// the checkpoint keys of their variable values, pairing the saved object
// graph with the checkpoint's (in the variables bundle) child by child
// from the root, as Python's loader does.
func objectCheckpointKeys(og *cpb.SavedObjectGraph, r *savedmodel.BundleReader, prefix string) (map[int32]string, error) {
	b, err := r.ObjectGraph()
	if err != nil {
		return nil, err
	}
	ck := new(cpb.TrackableObjectGraph)
	if err := proto.Unmarshal(b, ck); err != nil {
		return nil, fmt.Errorf("%s: the checkpoint's object graph: %w", prefix, err)
	}
	keys := map[int32]string{}
	seen := map[int32]bool{}
	type pair struct{ saved, ckpt int32 }
	queue := []pair{{0, 0}}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		// Node ids come from the files: out of range is skipped, not indexed.
		if seen[p.saved] || p.saved < 0 || p.ckpt < 0 || int(p.saved) >= len(og.GetNodes()) || int(p.ckpt) >= len(ck.GetNodes()) {
			continue
		}
		seen[p.saved] = true
		cn := ck.GetNodes()[p.ckpt]
		for _, a := range cn.GetAttributes() {
			if a.GetName() == variableValueAttr {
				keys[p.saved] = a.GetCheckpointKey()
			}
		}
		byName := map[string]int32{}
		for _, c := range cn.GetChildren() {
			byName[c.GetLocalName()] = c.GetNodeId()
		}
		for _, c := range og.GetNodes()[p.saved].GetChildren() {
			if id, ok := byName[c.GetLocalName()]; ok {
				queue = append(queue, pair{c.GetNodeId(), id})
			}
		}
	}
	return keys, nil
}

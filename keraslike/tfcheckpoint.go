package keraslike

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	fcpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// objectPath matches the variables of a Keras 3 model in an object-graph
// checkpoint written by tf.train.Checkpoint(model=model): the model's
// operations (its layers, the InputLayer being 0) by index, then the
// attribute path inside the layer.
var objectPath = regexp.MustCompile(`^(?:.*/)?_operations/(\d+)/(.+)/\.ATTRIBUTES/VARIABLE_VALUE$`)

// MapObjectCheckpoint maps the variables of a Keras 3 object-graph
// checkpoint, given by their object paths (keys such as
// "model/_operations/2/_query_dense/_kernel/.ATTRIBUTES/VARIABLE_VALUE",
// which is how Python's tf.train.Checkpoint keys them), onto the model's
// weights: it returns key -> weight. Keras numbers a model's operations
// (the input, layers and ops such as an addition); the operations that own
// variables, in that order, are matched with the model's layers that have
// weights, in order, and within a layer by the attributes Keras 3 keeps
// them in ("_kernel" for a Dense kernel, "_query_dense/bias" ...: see
// objectAttrs). Keys that are not model variables (the optimizer's, the
// object graph) are left out; a weight or key left unmatched is an error
// naming it.
func (m *Model) MapObjectCheckpoint(keys []string) (map[string]*Weight, error) {
	if err := m.Build(); err != nil {
		return nil, err
	}
	byOp := map[int][]string{}
	var ops []int
	for _, key := range keys {
		sub := objectPath.FindStringSubmatch(key)
		if sub == nil || strings.HasPrefix(key, "optimizer/") || strings.Contains(key, "/optimizer/") {
			continue
		}
		i, _ := strconv.Atoi(sub[1])
		if _, seen := byOp[i]; !seen {
			ops = append(ops, i)
		}
		byOp[i] = append(byOp[i], key)
	}
	sort.Ints(ops)
	var layers []Layer
	for _, l := range m.layers {
		if len(l.Weights()) > 0 {
			layers = append(layers, l)
		}
	}
	if len(ops) != len(layers) {
		return nil, fmt.Errorf("the checkpoint has variables for %d layers, the model has %d layers with weights", len(ops), len(layers))
	}
	out := map[string]*Weight{}
	for n, op := range ops {
		layer := layers[n]
		if len(byOp[op]) != len(layer.Weights()) {
			return nil, fmt.Errorf("checkpoint operation %d has %d variables, layer %q has %d weights", op, len(byOp[op]), layer.Name(), len(layer.Weights()))
		}
		paths := map[*Weight]string{}
		layerObjectPaths(layer, "", paths)
		byPath := make(map[string]*Weight, len(paths))
		for w, p := range paths {
			byPath[strings.TrimPrefix(p, "/")] = w
		}
		for _, key := range byOp[op] {
			sub := objectPath.FindStringSubmatch(key)
			w := byPath[sub[2]]
			if w == nil {
				return nil, fmt.Errorf("checkpoint key %q: layer %q has no weight at %q (its weights are at %s)", key, layer.Name(), sub[2], strings.Join(slices.Sorted(maps.Keys(byPath)), ", "))
			}
			out[key] = w
		}
	}
	return out, nil
}

// LoadObjectCheckpoint restores the model from an object-graph checkpoint:
// one written by Python's tf.train.Checkpoint(model=m, optimizer=o) of a
// Keras 3 model, or by SaveCheckpoint, which writes the same graph. The
// weights are found by their object paths (see MapObjectCheckpoint); the
// optimizer's state (iteration counter and slots) too when the model is
// compiled with an optimizer whose Keras twin is known (Adam, AdamW, SGD)
// and the checkpoint has an optimizer, every variable of which must then be
// there. The learning rate stays the optimizer's own. Every shape and
// dtype is checked before anything changes. A checkpoint without an object
// graph (SaveCheckpoint's before it wrote one) is read by name, as
// LoadCheckpoint reads it.
func (m *Model) LoadObjectCheckpoint(prefix string) error {
	sess, err := m.session()
	if err != nil {
		return err
	}
	r, err := savedmodel.OpenBundle(prefix)
	if err != nil {
		return err
	}
	defer r.Close()
	if !r.Has(savedmodel.ObjectGraphKey) {
		return m.loadNamed(sess, r, prefix)
	}
	return m.loadObjects(sess, r, prefix)
}

func (m *Model) loadObjects(sess *tfgo.Session, r *savedmodel.BundleReader, prefix string) error {
	objects, err := objectVariables(r)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", prefix, err)
	}
	const suffix = "/.ATTRIBUTES/" + variableValue
	var paths []string
	for p := range objects {
		if strings.HasPrefix(p, "model/") {
			paths = append(paths, p+suffix)
		}
	}
	mapping, err := m.MapObjectCheckpoint(paths)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", prefix, err)
	}
	var keys []string
	var vars []*tfgo.Variable
	for _, p := range slices.Sorted(maps.Keys(mapping)) {
		keys, vars = append(keys, objects[strings.TrimSuffix(p, suffix)]), append(vars, mapping[p].Variable)
	}
	if m.train != nil {
		objs, _, _ := optimizerObjects(m.train.opts.Optimizer, m.TrainableWeights())
		// tf.train.Checkpoint(model=m) of a compiled model has the
		// optimizer only as the model's.
		opt := ""
		for _, p := range []string{"optimizer/", "model/optimizer/"} {
			if _, ok := objects[p+"_iterations"]; ok {
				opt = p
				break
			}
		}
		for _, o := range objs {
			if opt == "" || o.v == nil {
				continue
			}
			key, ok := objects[opt+o.path]
			if !ok {
				return fmt.Errorf("checkpoint %s has no optimizer variable at %s%s (%s)", prefix, opt, o.path, o.v.Name())
			}
			keys, vars = append(keys, key), append(vars, o.v)
		}
	}
	return m.restore(sess, r, keys, vars)
}

// objectVariables reads the object graph of r: the checkpoint key of every
// variable by its object path ("model/_operations/1/_kernel"), under each
// path that reaches it (a Keras model's weights are also the optimizer's
// "_trainable_variables/<i>").
func objectVariables(r *savedmodel.BundleReader) (map[string]string, error) {
	data, err := r.ObjectGraph()
	if err != nil {
		return nil, err
	}
	var g fcpb.TrackableObjectGraph
	if err := proto.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("object graph: %w", err)
	}
	out := map[string]string{}
	err = walkObjects(g.Nodes, func(p string, child int32, _ bool) {
		for _, a := range g.Nodes[child].Attributes {
			if a.Name == variableValue {
				out[p] = a.CheckpointKey
			}
		}
	})
	return out, err
}

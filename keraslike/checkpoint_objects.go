package keraslike

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	fcpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A checkpoint's object graph is what tf.train.Checkpoint(model=m,
// optimizer=o).read(prefix) walks: from the root, the children "model" and
// "optimizer", then the attributes Keras 3's TensorFlow backend tracks (a
// layer's sublayers and variables by the attribute the Python class
// assigns them to, a functional model's layers as "_operations/<i>", an
// optimizer's variables as "_variables/<i>"). Each variable's node names
// the bundle key of its value, which TensorFlow's restore requires to be
// "<path>/.ATTRIBUTES/VARIABLE_VALUE" (it derives the key from that
// prefix); Python uses the first path a breadth-first walk reaches. Go's
// checkpoints also keep the Keras weight paths and optimizer variable names
// as keys (what tf.train.load_checkpoint readers and LoadCheckpoint look
// up): each object key is an alias of a name key (savedmodel.BundleWriter
// .AddAlias), so the data is stored once.

// variableValue is the attribute under which a variable's value is saved.
const variableValue = "VARIABLE_VALUE"

// objectAttrs maps, per Keras class, the names a layer's weights and
// sublayers have in Keras weight paths (or KerasSublayers) to the
// attributes Keras 3 assigns them to; the others are assigned to an
// attribute of their own name, as a custom layer's twin does
// (self.embeddings = self.add_weight(name="embeddings")).
var objectAttrs = map[string]map[string]string{
	"Dense":       {"kernel": "_kernel"},
	"EinsumDense": {"kernel": "_kernel"},
	"Embedding":   {"embeddings": "_embeddings"},
	"MultiHeadAttention": {"query_dense": "_query_dense", "key_dense": "_key_dense",
		"value_dense": "_value_dense", "output_dense": "_output_dense"},
}

func objectAttr(class, name string) string {
	if a, ok := objectAttrs[class][name]; ok {
		return a
	}
	return name
}

// layerObjectPaths adds to out the object path of each of l's weights,
// under prefix: its sublayers' (KerasSublayers) under their attributes,
// its own under theirs.
func layerObjectPaths(l Layer, prefix string, out map[*Weight]string) {
	owned := map[*Weight]bool{}
	if ks, ok := l.(KerasSublayers); ok {
		subs := ks.KerasSublayers()
		// In order, so that a save writes the same graph every time.
		for _, attr := range slices.Sorted(maps.Keys(subs)) {
			sub := subs[attr]
			if sub == nil {
				continue
			}
			layerObjectPaths(sub, prefix+"/"+objectAttr(l.ClassName(), attr), out)
			for _, w := range sub.Weights() {
				owned[w] = true
			}
		}
	}
	for _, w := range l.Weights() {
		if !owned[w] {
			out[w] = prefix + "/" + objectAttr(l.ClassName(), path.Base(w.Path))
		}
	}
}

// operationsPath is where a model's layers are in its twin's object
// graph: a Sequential keeps them in the functional model it wraps. Index 0
// is the InputLayer.
func (m *Model) operationsPath() string {
	if m.isSequential() {
		return "model/_functional/_operations"
	}
	return "model/_operations"
}

// weightObjectPaths is the object path of every weight in a checkpoint of
// the model's Keras twin: a Sequential of the same layers, or a functional
// model whose layers are, in order, the model's (Keras numbers a
// functional model's operations, so a twin computing with ops between its
// layers, such as x + y, numbers them differently; the reader,
// MapObjectCheckpoint, allows for that).
func (m *Model) weightObjectPaths() (map[*Weight]string, error) {
	out := map[*Weight]string{}
	ops := m.operationsPath()
	for i, l := range m.layers {
		layerObjectPaths(l, ops+"/"+strconv.Itoa(i+1), out)
	}
	seen := map[string]*Weight{}
	for w, p := range out {
		if o, ok := seen[p]; ok {
			return nil, fmt.Errorf("weights %q and %q would both be at %q in the object graph", o.Path, w.Path, p)
		}
		seen[p] = w
	}
	return out, nil
}

// optimizerObject is a variable of the optimizer's twin: its path under
// "optimizer", its other paths there, and the Go variable holding its value
// (nil for a learning rate, a constant in Go's graph: lr, of full name
// name).
type optimizerObject struct {
	path    string
	aliases []string
	v       *tfgo.Variable
	lr      float32
	name    string
}

// optimizerObjects lists the variables of o's Keras twin built for
// trainable, as Keras 3 tracks them: "_iterations" and, for a constant
// rate, "_learning_rate", which are also "_variables/0" and "/1", then the
// slots as "_variables/<i>", weight by weight (Adam's momentum then
// velocity), each also in its kind's list ("_momentums/<j>" for the j-th
// weight). lists are the attributes listing the trainable weights
// themselves ("_trainable_variables"). A LossScaleOptimizer has its own
// counter, rate (the inner one's), step counter and scale, and the inner
// optimizer's under "inner_optimizer". ok is false for an optimizer whose
// twin this does not know, or one not built yet. A weight that had no
// gradient has no slots in Go (Keras makes them all): its indices are left
// out, so the others keep theirs.
func optimizerObjects(o Optimizer, trainable []*Weight) (objs []optimizerObject, lists []string, ok bool) {
	type kind struct {
		list  string // the twin's attribute listing the slots of this kind
		slots map[*Weight]*tfgo.Variable
	}
	var base *optimizerBase
	var kinds []kind
	switch o := o.(type) {
	case *Adam:
		base, kinds = &o.optimizerBase, []kind{{"_momentums", o.m}, {"_velocities", o.v}}
	case *SGD:
		base = &o.optimizerBase
		if o.momentum != 0 {
			kinds = []kind{{"momentums", o.slots}}
		}
	case *LossScaleOptimizer:
		inner, innerLists, ok := optimizerObjects(o.inner, trainable)
		if !ok || o.scale == nil || len(inner) < 2 || inner[1].path != "_learning_rate" {
			return nil, nil, false // Keras' wrapper of a schedule is not modelled here
		}
		objs = []optimizerObject{
			{path: "_iterations", aliases: []string{"_variables/0"}, v: o.iters},
			{path: "_learning_rate", aliases: []string{"_variables/1"}, lr: inner[1].lr, name: o.name + "/learning_rate"},
			{path: "step_counter", aliases: []string{"_variables/2"}, v: o.counter},
			{path: "dynamic_scale", aliases: []string{"_variables/3"}, v: o.scale},
		}
		for _, in := range inner {
			in.path = "inner_optimizer/" + in.path
			for i, a := range in.aliases {
				in.aliases[i] = "inner_optimizer/" + a
			}
			objs = append(objs, in)
		}
		lists = []string{"_trainable_variables"}
		for _, l := range innerLists {
			lists = append(lists, "inner_optimizer/"+l)
		}
		return objs, lists, true
	default:
		return nil, nil, false
	}
	if base.iters == nil {
		return nil, nil, false
	}
	objs = append(objs, optimizerObject{path: "_iterations", aliases: []string{"_variables/0"}, v: base.iters})
	n := 1
	if base.opts.Schedule == nil {
		objs = append(objs, optimizerObject{path: "_learning_rate", aliases: []string{"_variables/1"}, lr: float32(base.opts.LearningRate), name: base.name + "/learning_rate"})
		n++
	}
	for j, w := range trainable {
		for _, k := range kinds {
			if v, ok := k.slots[w]; ok {
				objs = append(objs, optimizerObject{path: "_variables/" + strconv.Itoa(n), aliases: []string{k.list + "/" + strconv.Itoa(j)}, v: v})
			}
			n++
		}
	}
	return objs, []string{"_trainable_variables"}, true
}

// objectGraph builds a TrackableObjectGraph; node 0 is the root.
type objectGraph struct {
	nodes []*fcpb.TrackableObjectGraph_TrackableObject
}

func newObjectGraph() *objectGraph {
	return &objectGraph{nodes: []*fcpb.TrackableObjectGraph_TrackableObject{{}}}
}

// node returns the node at the slash-separated path from the root,
// adding the missing nodes on the way.
func (g *objectGraph) node(p string) int {
	id := 0
next:
	for _, name := range strings.Split(p, "/") {
		for _, c := range g.nodes[id].Children {
			if c.LocalName == name {
				id = int(c.NodeId)
				continue next
			}
		}
		child := len(g.nodes)
		g.nodes = append(g.nodes, &fcpb.TrackableObjectGraph_TrackableObject{})
		g.link(id, name, child)
		id = child
	}
	return id
}

func (g *objectGraph) link(parent int, name string, child int) {
	g.nodes[parent].Children = append(g.nodes[parent].Children,
		&fcpb.TrackableObjectGraph_TrackableObject_ObjectReference{NodeId: int32(child), LocalName: name})
}

// alias makes the node at p reachable at another path too.
func (g *objectGraph) alias(p, other string) {
	dir, name := path.Split(other)
	g.link(g.node(strings.TrimSuffix(dir, "/")), name, g.node(p))
}

// variable adds the node of a variable of full name fullName (its name
// key: the name a name-based reader looks up).
func (g *objectGraph) variable(p, fullName string) int {
	id := g.node(p)
	g.nodes[id].Attributes = append(g.nodes[id].Attributes, &fcpb.TrackableObjectGraph_TrackableObject_SerializedTensor{
		Name: variableValue, FullName: fullName})
	return id
}

// assignKeys gives every variable its checkpoint key as TensorFlow's
// saver does: the first path of a breadth-first walk from the root, then
// "/.ATTRIBUTES/VARIABLE_VALUE".
func (g *objectGraph) assignKeys() {
	// The graph built here has no child outside it: no error.
	_ = walkObjects(g.nodes, func(p string, child int32, first bool) {
		if first {
			for _, a := range g.nodes[child].Attributes {
				a.CheckpointKey = p + "/.ATTRIBUTES/" + escapeLocalName(a.Name)
			}
		}
	})
}

// walkObjects walks an object graph breadth-first from the root, as
// TensorFlow's saver does, and calls visit for every edge with the path it
// gives the child (the local names escaped, as in checkpoint keys) and
// whether the child is reached there first; only first paths are walked
// on. Every child must be a node of the graph.
func walkObjects(nodes []*fcpb.TrackableObjectGraph_TrackableObject, visit func(p string, child int32, first bool)) error {
	if len(nodes) == 0 {
		return fmt.Errorf("object graph has no nodes")
	}
	paths := map[int32]string{0: ""}
	queue := []int32{0}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, c := range nodes[id].Children {
			if c.NodeId < 0 || int(c.NodeId) >= len(nodes) {
				return fmt.Errorf("object graph: node %d has child %q at node %d of %d", id, excerpt(c.LocalName), c.NodeId, len(nodes))
			}
			p := strings.TrimPrefix(paths[id]+"/"+escapeLocalName(c.LocalName), "/")
			_, seen := paths[c.NodeId]
			if !seen {
				paths[c.NodeId] = p
				queue = append(queue, c.NodeId)
			}
			visit(p, c.NodeId, !seen)
		}
	}
	return nil
}

// escapeLocalName is trackable_utils.escape_local_name: "." and "/" in a
// name would be ambiguous in a key.
func escapeLocalName(name string) string {
	return strings.ReplaceAll(strings.ReplaceAll(name, ".", ".."), "/", ".S")
}

func (g *objectGraph) marshal() ([]byte, error) {
	for _, n := range g.nodes {
		// Every node written leads to a variable; TensorFlow's restore
		// skips the subtrees of nodes that say they do not.
		n.HasCheckpointValues = wrapperspb.Bool(true)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(&fcpb.TrackableObjectGraph{Nodes: g.nodes})
}

// checkpointObjects returns what a checkpoint adds to the variables of
// checkpointVars (keys and vars): tensors (the object graph of the model
// and, unless weightsOnly, of its optimizer when its Keras twin is known;
// the optimizer's learning rate, which the twin keeps in a variable) and
// aliases, object key -> name key.
func (m *Model) checkpointObjects(keys []string, vars []*tfgo.Variable, weightsOnly bool) (extra map[string]*savedmodel.Tensor, aliases map[string]string, err error) {
	key := make(map[*tfgo.Variable]string, len(vars))
	for i, v := range vars {
		key[v] = keys[i]
	}
	paths, err := m.weightObjectPaths()
	if err != nil {
		return nil, nil, fmt.Errorf("model %q: %w", m.name, err)
	}
	g := newObjectGraph()
	named := map[int]string{} // node -> name key
	for _, w := range m.Weights() {
		named[g.variable(paths[w], key[w.Variable])] = key[w.Variable]
	}
	values := map[int]*savedmodel.Tensor{} // node -> value saved under its object key only
	if !weightsOnly && m.train != nil {
		opt := m.train.opts.Optimizer
		trainable := m.TrainableWeights()
		if objs, lists, ok := optimizerObjects(opt, trainable); ok {
			// The twin, compiled, tracks its optimizer as model.optimizer,
			// and the optimizer the weights it updates.
			g.alias("optimizer", "model/optimizer")
			for _, l := range lists {
				for i, w := range trainable {
					g.alias(paths[w], "optimizer/"+l+"/"+strconv.Itoa(i))
				}
			}
			for _, o := range objs {
				if o.v == nil {
					id := g.variable("optimizer/"+o.path, o.name)
					values[id] = &savedmodel.Tensor{DType: tfgo.Float, Data: binary.LittleEndian.AppendUint32(nil, math.Float32bits(o.lr))}
				} else {
					k, ok := key[o.v]
					if !ok {
						return nil, nil, fmt.Errorf("model %q: optimizer variable %s is not saved", m.name, o.v.Name())
					}
					named[g.variable("optimizer/"+o.path, k)] = k
				}
				for _, a := range o.aliases {
					g.alias("optimizer/"+o.path, "optimizer/"+a)
				}
			}
		}
	}
	g.assignKeys()
	extra, aliases = map[string]*savedmodel.Tensor{}, map[string]string{}
	for id, k := range named {
		aliases[g.nodes[id].Attributes[0].CheckpointKey] = k
	}
	for id, t := range values {
		extra[g.nodes[id].Attributes[0].CheckpointKey] = t
	}
	data, err := g.marshal()
	if err != nil {
		return nil, nil, err
	}
	extra[savedmodel.ObjectGraphKey] = &savedmodel.Tensor{DType: tfgo.String, Strings: [][]byte{data}}
	for k := range extra {
		if _, dup := aliases[k]; dup || slices.Contains(keys, k) {
			return nil, nil, fmt.Errorf("model %q: a variable is saved under %q, which the object graph needs", m.name, k)
		}
	}
	for k := range aliases {
		if slices.Contains(keys, k) {
			return nil, nil, fmt.Errorf("model %q: a variable is saved under %q, which the object graph needs", m.name, k)
		}
	}
	return extra, aliases, nil
}

package keraslike

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gotf/gotf/internal/h5"
	"github.com/gotf/gotf/tfgo"
)

// Keras 3's HDF5 weight layout.
//
// Keras 3 (.weights.h5, and model.weights.h5 inside .keras) writes what
// keras.src.saving.saving_lib's _save_state walk finds: every saveable
// object gets a group "<path>/vars" (attribute "name": the object's name)
// holding its own variables as datasets "0", "1", ... in creation order,
// and its children follow at "<path>/<attribute>". A model's layers come
// first, as the container "layers": each layer at
// "layers/<snake_case(class name)>", suffixed _1, _2 ... for later layers of
// the same class (the layer's name plays no part). A functional model's
// layers include its InputLayer; a Sequential's do not. A layer's
// sublayers are found by attribute name: what its KerasSublayers says
// (MultiHeadAttention's projections at query_dense, key_dense, value_dense
// and output_dense, their vars named "query", ..., and its _dropout_layer
// and _softmax, without variables).
//
// The legacy layout is in h5weights_legacy.go.

// kerasNode is a Keras saveable: its own variables and its children.
type kerasNode struct {
	name     string
	layer    Layer // the model's layer it is part of (for errors)
	vars     []*Weight
	children []kerasChild
}

type kerasChild struct {
	attr string
	node *kerasNode
}

// layerNode is the saveable tree of a layer; top is the model's layer
// the node belongs to. A layer that implements KerasSublayers has its
// sublayers as children, under their attribute names, and keeps as its
// own variables the weights no sublayer has; any other layer's weights
// are its variables.
func layerNode(l Layer, top Layer) *kerasNode {
	n := &kerasNode{name: l.Name(), layer: top}
	ks, ok := l.(KerasSublayers)
	if !ok {
		n.vars = append(n.vars, l.Weights()...)
		return n
	}
	owned := map[*Weight]bool{}
	for attr, sub := range ks.KerasSublayers() {
		if sub == nil {
			continue
		}
		n.children = append(n.children, kerasChild{attr, layerNode(sub, top)})
		for _, w := range sub.Weights() {
			owned[w] = true
		}
	}
	sortChildren(n.children)
	for _, w := range l.Weights() {
		if !owned[w] {
			n.vars = append(n.vars, w)
		}
	}
	return n
}

// sortChildren orders attributes as Keras' walk does: by name, private
// ("_...") ones last.
func sortChildren(cs []kerasChild) {
	key := func(s string) string {
		if strings.HasPrefix(s, "_") {
			return "~" + s
		}
		return s
	}
	sort.SliceStable(cs, func(i, j int) bool { return key(cs[i].attr) < key(cs[j].attr) })
}

// isSequential reports whether m came from NewSequential (whose weight
// paths carry the model's name).
func (m *Model) isSequential() bool { return m.graph == nil && m.path != "" }

// inputLayerName is the name of the model's InputLayer in Keras files.
func (m *Model) inputLayerName() string {
	if m.input.Name != "" {
		return m.input.Name
	}
	return "input_layer"
}

// kerasTree is the model's saveable tree (the model must be built).
func (m *Model) kerasTree() *kerasNode {
	root := &kerasNode{name: m.name}
	used := map[string]int{}
	add := func(class string, n *kerasNode) {
		name := toSnakeCase(class)
		if c, ok := used[name]; ok {
			used[name] = c + 1
			name = fmt.Sprintf("%s_%d", name, c+1)
		} else {
			used[name] = 0
		}
		root.children = append(root.children, kerasChild{"layers/" + name, n})
	}
	if !m.isSequential() {
		add("InputLayer", &kerasNode{name: m.inputLayerName()})
	}
	for _, l := range m.layers {
		add(l.ClassName(), layerNode(l, l))
	}
	return root
}

// weightValues reads every weight of the model (built and initialized).
func (m *Model) weightValues() (map[*Weight]*tfgo.Tensor, func(), error) {
	vals, err := m.GetWeights()
	if err != nil {
		return nil, nil, err
	}
	byWeight := map[*Weight]*tfgo.Tensor{}
	for i, w := range m.Weights() {
		byWeight[w] = vals[i]
	}
	return byWeight, func() {
		for _, v := range vals {
			v.Close()
		}
	}, nil
}

func h5DType(dt tfgo.DataType) (h5.DType, error) {
	switch dt {
	case tfgo.Float:
		return h5.Float32, nil
	case tfgo.Double:
		return h5.Float64, nil
	case tfgo.Int32:
		return h5.Int32, nil
	case tfgo.Int64:
		return h5.Int64, nil
	case tfgo.Int8: // quantized kernels (Keras' quantize("int8"))
		return h5.Int8, nil
	}
	return h5.Invalid, fmt.Errorf("no HDF5 type for %s", dt)
}

func cgoDType(dt h5.DType) tfgo.DataType {
	switch dt {
	case h5.Float32:
		return tfgo.Float
	case h5.Float64:
		return tfgo.Double
	case h5.Int32:
		return tfgo.Int32
	case h5.Int64:
		return tfgo.Int64
	case h5.Int8:
		return tfgo.Int8
	case h5.Float16:
		return tfgo.Half
	case h5.Opaque2: // Keras saves bfloat16 weights as h5py's opaque ml_dtypes.bfloat16
		return tfgo.BFloat16
	}
	return 0
}

// walkKeras calls fn on each saveable of the tree n, parents before
// children in Keras' order, with the path of its variables group ("vars"
// for the root, "layers/dense/vars").
func walkKeras(n *kerasNode, fn func(vp string, n *kerasNode) error) error {
	var walk func(path string, n *kerasNode) error
	walk = func(path string, n *kerasNode) error {
		vp := "vars"
		if path != "" {
			vp = path + "/vars"
		}
		if err := fn(vp, n); err != nil {
			return err
		}
		for _, c := range n.children {
			p := c.attr
			if path != "" {
				p = path + "/" + c.attr
			}
			if err := walk(p, c.node); err != nil {
				return err
			}
		}
		return nil
	}
	return walk("", n)
}

// writeNode writes the saveable n's variables group vp into root.
func writeNode(root *h5.Group, vp string, n *kerasNode, vals map[*Weight]*tfgo.Tensor) error {
	g, err := root.CreateGroup(vp)
	if err != nil {
		return err
	}
	defer g.Close()
	if err := g.SetStringAttr("name", n.name); err != nil {
		return err
	}
	for i, w := range n.vars {
		t := vals[w]
		if t == nil {
			return fmt.Errorf("layer %q: weight %s has no value", n.layer.Name(), w.Path)
		}
		dt, err := h5DType(t.DataType())
		if err != nil {
			return fmt.Errorf("layer %q: weight %s: %w", n.layer.Name(), w.Path, err)
		}
		if err := g.Write(fmt.Sprint(i), dt, t.Shape(), t.Data()); err != nil {
			return err
		}
	}
	return nil
}

// writeKeras3Weights writes the model's weights in Keras 3's layout to a
// new file at path (inside a temporary directory: see SaveWeightsH5).
func (m *Model) writeKeras3Weights(path string) error {
	if _, err := m.session(); err != nil {
		return err
	}
	vals, release, err := m.weightValues()
	if err != nil {
		return err
	}
	defer release()
	f, err := h5.Create(path)
	if err != nil {
		return err
	}
	err = walkKeras(m.kerasTree(), func(vp string, n *kerasNode) error { return writeNode(f.Root(), vp, n, vals) })
	if err != nil {
		f.Abort()
		return err
	}
	return f.Close()
}

// SaveWeightsH5 writes the model's weights as Keras 3's
// model.save_weights("x.weights.h5") does; model.load_weights reads the
// file into the model's Keras twin (its layers of the same classes in the
// same order). The file appears complete or not at all: a save killed
// half-way leaves the previous file in place, and its temporary directory
// (".<name>.tmp-<random>" beside it) is removed by the next save.
// SaveWeightsH5WithOptions (h5weights_sharded.go) writes sharded files.
func (m *Model) SaveWeightsH5(path string) error {
	return m.SaveWeightsH5WithOptions(path, SaveWeightsOptions{})
}

// LoadWeightsH5 reads a Keras 3 weights file (model.save_weights
// ("x.weights.h5"), or one SaveWeightsH5 wrote) into the model. Every
// dataset is checked against its weight (count, dtype, shape) before any
// weight changes; errors name the layer and the weight. A path ending in
// ".json" is the index of sharded weights (model.save_weights
// ("x.weights.json", max_shard_size=...), or SaveWeightsH5WithOptions),
// whose shards are read one value at a time.
func (m *Model) LoadWeightsH5(path string) error {
	if err := m.usable(); err != nil {
		return err
	}
	load := m.loadKeras3Weights
	if strings.HasSuffix(path, ".json") {
		load = m.loadShardedWeights
	}
	if err := load(path); err != nil {
		return fmt.Errorf("loading weights into %q: %w", m.name, err)
	}
	return nil
}

func (m *Model) loadKeras3Weights(path string) error {
	f, err := h5.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return m.assignFromH5(f, m.readKeras3Weights)
}

// assignFromH5 reads f's weights with read, which checks each against its
// weight, and assigns them all in one run; the read tensors (also those of
// a read that failed half-way) are freed.
func (m *Model) assignFromH5(f *h5.File, read func(*h5.File) ([]*Weight, []*tfgo.Tensor, error)) error {
	sess, err := m.session()
	if err != nil {
		return err
	}
	ws, vals, err := read(f)
	defer closeTensors(vals)
	if err != nil {
		return err
	}
	return m.assign(sess, ws, vals)
}

// readKeras3Weights reads the weights of a Keras 3 weights file: layer by
// layer along the model's Keras tree, "<path>/vars/<i>".
func (m *Model) readKeras3Weights(f *h5.File) (ws []*Weight, vals []*tfgo.Tensor, err error) {
	err = walkKeras(m.kerasTree(), func(vp string, n *kerasNode) error {
		if len(n.vars) == 0 {
			return nil
		}
		if !f.Root().Has(vp) {
			return fmt.Errorf("layer %q (%s): %s has no group /%s for its %d weights (%s ...)", n.layer.Name(), n.layer.ClassName(), f.Path(), vp, len(n.vars), n.vars[0].Path)
		}
		g, err := f.Root().Group(vp)
		if err != nil {
			return err
		}
		defer g.Close()
		ms, err := g.Members()
		if err != nil {
			return err
		}
		if len(ms) != len(n.vars) {
			return fmt.Errorf("layer %q (%s): %s /%s holds %d variables, the layer has %d (%s)", n.layer.Name(), n.layer.ClassName(), f.Path(), vp, len(ms), len(n.vars), weightPaths(n.vars))
		}
		for i, w := range n.vars {
			t, err := readWeight(g, fmt.Sprint(i), w, n.layer)
			if err != nil {
				return err
			}
			ws, vals = append(ws, w), append(vals, t)
		}
		return nil
	})
	return ws, vals, err
}

func weightPaths(ws []*Weight) string {
	ps := make([]string, len(ws))
	for i, w := range ws {
		ps[i] = w.Path
	}
	return strings.Join(ps, ", ")
}

// readWeight reads dataset name of g into a tensor for w, checking dtype
// and shape before reading.
func readWeight(g *h5.Group, name string, w *Weight, layer Layer) (*tfgo.Tensor, error) {
	want := w.Shape()
	a, err := g.Read(name, func(i h5.Info) error {
		if cgoDType(i.DType) != w.DType() || !sameDims(i.Shape, want) {
			return fmt.Errorf("is %s%v, but layer %q (%s) has weight %s of %s%v", i.DType, i.Shape, layer.Name(), layer.ClassName(), w.Path, w.DType(), want)
		}
		return nil
	}, 0)
	if err != nil {
		return nil, err
	}
	return tfgo.NewTensorFromBytes(w.DType(), want, a.Data)
}

// kerasFormatVersion is the Keras version whose file layouts this package
// writes (the keras_version attributes and metadata).
const kerasFormatVersion = "3.15.1"

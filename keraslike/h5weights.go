package keraslike

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/gotf/gotf/internal/h5"
	"github.com/gotf/gotf/tfgo"
)

// Keras' HDF5 weight layouts.
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
// sublayers are found by attribute name: MultiHeadAttention's projections
// at query_dense, key_dense, value_dense and output_dense (their vars
// named "query", ...), and its _dropout_layer and _softmax (no variables).
//
// Legacy Keras (.h5; keras.src.legacy.saving.legacy_h5_format) has, under
// model_weights for a full model or at the root for a weights file, the
// attribute layer_names and one group per layer, named as the layer, with
// the attribute weight_names (the variables' paths, "dense/kernel") and a
// dataset at each of those paths; weights are matched to layers in order.

// KerasSublayers is implemented by composite layers (registered custom
// layers) whose Python twin tracks sublayers as attributes: the attribute
// names and the sublayers. Their weights are saved under
// "layers/<layer>/<attribute>/..." as Keras' saving walk does, and the
// layer's own weights that belong to no sublayer go to its vars.
type KerasSublayers interface {
	KerasSublayers() map[string]Layer
}

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

var snake1, snake2 = regexp.MustCompile(`(.)([A-Z][a-z]+)`), regexp.MustCompile(`([a-z])([A-Z])`)
var nonWord = regexp.MustCompile(`\W+`)

// snakeCase is keras.src.utils.naming.to_snake_case.
func snakeCase(s string) string {
	s = nonWord.ReplaceAllString(s, "")
	s = snake1.ReplaceAllString(s, "${1}_${2}")
	return strings.ToLower(snake2.ReplaceAllString(s, "${1}_${2}"))
}

// layerNode is the saveable tree of a layer; top is the model's layer
// the node belongs to.
func layerNode(l Layer, top Layer) *kerasNode {
	n := &kerasNode{name: l.Name(), layer: top}
	leaf := func(name string, ws ...*Weight) *kerasNode {
		k := &kerasNode{name: name, layer: top}
		for _, w := range ws {
			if w != nil {
				k.vars = append(k.vars, w)
			}
		}
		return k
	}
	switch l := l.(type) {
	case *MultiHeadAttention:
		if !l.built {
			return n
		}
		n.children = []kerasChild{
			{"key_dense", leaf("key", l.key.kernel, l.key.bias)},
			{"output_dense", leaf("attention_output", l.output.kernel, l.output.bias)},
			{"query_dense", leaf("query", l.query.kernel, l.query.bias)},
			{"value_dense", leaf("value", l.value.kernel, l.value.bias)},
			{"_dropout_layer", leaf("dropout")},
			{"_softmax", leaf("softmax")},
		}
		return n
	case *TransformerBlock:
		for _, sub := range l.Sublayers() {
			n.children = append(n.children, kerasChild{sub.Name(), layerNode(sub, top)})
		}
		sortChildren(n.children)
		return n
	case KerasSublayers:
		subs := l.KerasSublayers()
		all := l.(Layer).Weights()
		owned := map[*Weight]bool{}
		for attr, sub := range subs {
			n.children = append(n.children, kerasChild{attr, layerNode(sub, top)})
			for _, w := range sub.Weights() {
				owned[w] = true
			}
		}
		sortChildren(n.children)
		for _, w := range all {
			if !owned[w] {
				n.vars = append(n.vars, w)
			}
		}
		return n
	}
	n.vars = append(n.vars, l.Weights()...)
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
func (m *Model) isSequential() bool { return graphOf(m) == nil && m.path != "" }

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
		name := snakeCase(class)
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
	}
	return 0
}

// writeNode writes a saveable at path ("" for the root) into root.
func writeNode(root *h5.Group, path string, n *kerasNode, vals map[*Weight]*tfgo.Tensor) error {
	vp := "vars"
	if path != "" {
		vp = path + "/vars"
	}
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
	for _, c := range n.children {
		p := c.attr
		if path != "" {
			p = path + "/" + c.attr
		}
		if err := writeNode(root, p, c.node, vals); err != nil {
			return err
		}
	}
	return nil
}

// writeKeras3Weights writes the model's weights in Keras 3's layout to a new file.
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
	if err := writeNode(f.Root(), "", m.kerasTree(), vals); err != nil {
		f.Abort()
		return err
	}
	return f.Close()
}

// SaveWeightsH5 writes the model's weights as Keras 3's
// model.save_weights("x.weights.h5") does; model.load_weights reads the
// file into the model's Keras twin (its layers of the same classes in the
// same order). The file appears complete or not at all.
func (m *Model) SaveWeightsH5(path string) error {
	if err := m.writeKeras3Weights(path); err != nil {
		return fmt.Errorf("saving the weights of %q: %w", m.name, err)
	}
	return nil
}

// LoadWeightsH5 reads a Keras 3 weights file (model.save_weights
// ("x.weights.h5"), or one SaveWeightsH5 wrote) into the model. Every
// dataset is checked against its weight (count, dtype, shape) before any
// weight changes; errors name the layer and the weight.
func (m *Model) LoadWeightsH5(path string) error {
	if err := m.loadKeras3Weights(path); err != nil {
		return fmt.Errorf("loading weights into %q: %w", m.name, err)
	}
	return nil
}

func (m *Model) loadKeras3Weights(path string) error {
	sess, err := m.session()
	if err != nil {
		return err
	}
	f, err := h5.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var ws []*Weight
	var vals []*tfgo.Tensor
	defer func() { closeTensors(vals) }() // copied into the variables by assign
	defer func() {
		for _, v := range vals {
			v.Close()
		}
	}()
	var read func(path string, n *kerasNode) error
	read = func(path string, n *kerasNode) error {
		vp := "vars"
		if path != "" {
			vp = path + "/vars"
		}
		if len(n.vars) > 0 {
			if !f.Root().Has(vp) {
				return fmt.Errorf("layer %q (%s): %s has no group /%s for its %d weights (%s ...)", n.layer.Name(), n.layer.ClassName(), path0(f), vp, len(n.vars), n.vars[0].Path)
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
				return fmt.Errorf("layer %q (%s): %s /%s holds %d variables, the layer has %d (%s)", n.layer.Name(), n.layer.ClassName(), path0(f), vp, len(ms), len(n.vars), weightPaths(n.vars))
			}
			for i, w := range n.vars {
				t, err := readWeight(g, fmt.Sprint(i), w, n.layer)
				if err != nil {
					return err
				}
				ws, vals = append(ws, w), append(vals, t)
			}
		}
		for _, c := range n.children {
			p := c.attr
			if path != "" {
				p = path + "/" + c.attr
			}
			if err := read(p, c.node); err != nil {
				return err
			}
		}
		return nil
	}
	if err := read("", m.kerasTree()); err != nil {
		return err
	}
	return m.assign(sess, ws, vals)
}

func path0(f *h5.File) string { return f.Path() }

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

// legacyLayers is the model's layers as legacy Keras lists them
// (model.layers: a functional model's InputLayer included).
func (m *Model) legacyLayerNames() []string {
	var names []string
	if !m.isSequential() {
		names = append(names, m.inputLayerName())
	}
	for _, l := range m.layers {
		names = append(names, l.Name())
	}
	return names
}

// SaveWeightsLegacyH5 writes the model's weights in legacy Keras' HDF5
// layout (Keras 2's model.save_weights("x.h5"), the model_weights part of
// model.save("x.h5")) at the file's root; Keras 3's model.load_weights
// ("x.h5") reads it into the model's twin.
func (m *Model) SaveWeightsLegacyH5(path string) error {
	if err := m.saveLegacy(path); err != nil {
		return fmt.Errorf("saving the weights of %q: %w", m.name, err)
	}
	return nil
}

func (m *Model) saveLegacy(path string) error {
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
	fail := func(err error) error { f.Abort(); return err }
	root := f.Root()
	if err := root.SetStringsAttr("layer_names", m.legacyLayerNames()); err != nil {
		return fail(err)
	}
	if err := root.SetStringAttr("backend", "tensorflow"); err != nil {
		return fail(err)
	}
	if err := root.SetStringAttr("keras_version", kerasFormatVersion); err != nil {
		return fail(err)
	}
	groups := map[string][]*Weight{}
	for _, n := range m.legacyLayerNames() {
		groups[n] = nil
	}
	for _, l := range m.layers {
		groups[l.Name()] = l.Weights()
	}
	groups["top_level_model_weights"] = nil
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g, err := root.CreateGroup(n)
		if err != nil {
			return fail(err)
		}
		ws := groups[n]
		paths := make([]string, len(ws))
		for i, w := range ws {
			paths[i] = w.Path
		}
		err = g.SetStringsAttr("weight_names", paths)
		for _, w := range ws {
			if err != nil {
				break
			}
			t := vals[w]
			var dt h5.DType
			if dt, err = h5DType(t.DataType()); err == nil {
				err = g.Write(w.Path, dt, t.Shape(), t.Data())
			}
		}
		g.Close()
		if err != nil {
			return fail(err)
		}
	}
	return f.Close()
}

// LoadWeightsLegacyH5 reads legacy Keras HDF5 weights into the model: a
// full model saved with model.save("x.h5") (its model_weights group) or a
// weights file in that layout (SaveWeightsLegacyH5, Keras 2's
// save_weights). As Keras does, the file's layers that have weights are
// matched in order to the model's layers that have weights, and each
// layer's weights in order; counts, dtypes and shapes are checked before
// any weight changes, and errors name the layer and the weight.
func (m *Model) LoadWeightsLegacyH5(path string) error {
	if err := m.loadLegacy(path); err != nil {
		return fmt.Errorf("loading weights into %q: %w", m.name, err)
	}
	return nil
}

func (m *Model) loadLegacy(path string) error {
	sess, err := m.session()
	if err != nil {
		return err
	}
	f, err := h5.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ws, vals, err := m.readLegacyWeights(f)
	defer closeTensors(vals)
	if err != nil {
		return err
	}
	return m.assign(sess, ws, vals)
}

// legacyStrings reads a possibly chunked list attribute (name, or name0,
// name1 ... when Keras split it).
func legacyStrings(g *h5.Group, name string) ([]string, error) {
	if g.HasAttr(name) {
		return g.StringsAttr(name)
	}
	var out []string
	for i := 0; g.HasAttr(fmt.Sprint(name, i)); i++ {
		ss, err := g.StringsAttr(fmt.Sprint(name, i))
		if err != nil {
			return nil, err
		}
		out = append(out, ss...)
	}
	return out, nil
}

func (m *Model) readLegacyWeights(f *h5.File) ([]*Weight, []*tfgo.Tensor, error) {
	top := f.Root()
	if !top.HasAttr("layer_names") && !top.HasAttr("layer_names0") {
		if !top.Has("model_weights") {
			return nil, nil, fmt.Errorf("%s is not a legacy Keras HDF5 weights file (no layer_names attribute, no model_weights group)", f.Path())
		}
		g, err := top.Group("model_weights")
		if err != nil {
			return nil, nil, err
		}
		defer g.Close()
		top = g
	}
	names, err := legacyStrings(top, "layer_names")
	if err != nil {
		return nil, nil, err
	}
	type fileLayer struct {
		name    string
		weights []string
	}
	var fileLayers []fileLayer
	for _, n := range names {
		if n == "" || strings.Contains(n, "/") {
			return nil, nil, fmt.Errorf("%s: invalid layer name %q in layer_names", f.Path(), n)
		}
		g, err := top.Group(n)
		if err != nil {
			return nil, nil, err
		}
		wn, err := legacyStrings(g, "weight_names")
		g.Close()
		if err != nil {
			return nil, nil, err
		}
		if len(wn) > 0 {
			fileLayers = append(fileLayers, fileLayer{n, wn})
		}
	}
	var layers []Layer
	for _, l := range m.layers {
		if len(l.Weights()) > 0 {
			layers = append(layers, l)
		}
	}
	if len(layers) != len(fileLayers) {
		return nil, nil, fmt.Errorf("%s has weights for %d layers, the model has %d layers with weights", f.Path(), len(fileLayers), len(layers))
	}
	var ws []*Weight
	var vals []*tfgo.Tensor
	for i, l := range layers {
		fl := fileLayers[i]
		lw := l.Weights()
		if len(lw) != len(fl.weights) {
			return ws, vals, fmt.Errorf("layer %q (%s) has %d weights, %s has %d for its layer %q (%s)", l.Name(), l.ClassName(), len(lw), f.Path(), len(fl.weights), fl.name, strings.Join(fl.weights, ", "))
		}
		g, err := top.Group(fl.name)
		if err != nil {
			return ws, vals, err
		}
		for j, w := range lw {
			t, err := readWeight(g, fl.weights[j], w, l)
			if err != nil {
				g.Close()
				return ws, vals, err
			}
			ws, vals = append(ws, w), append(vals, t)
		}
		g.Close()
	}
	return ws, vals, nil
}

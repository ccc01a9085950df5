package keraslike

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/mixedprecision"
	"github.com/gotf/gotf/tfgo"
)

// Reading Keras model configs (config.json of a .keras archive, the
// model_config attribute of a legacy .h5): Sequential and functional
// models, each layer made by its class' from-config constructor
// (registry.go).

// modelFromJSON builds (and checks the size of) a model from Keras' config.
// The JSON's size, depth and strings are checked before it is decoded
// (config_limits.go), every layer's options by its from-config, and the
// model's weights against opts.MaxParams before anything is allocated.
func modelFromJSON(raw []byte, opts LoadOptions, legacy bool) (*Model, error) {
	if err := checkConfigJSON(raw); err != nil {
		return nil, err
	}
	top, err := decodeConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	class, _ := top["class_name"].(string)
	conf, _ := top["config"].(map[string]any)
	if conf == nil {
		return nil, fmt.Errorf("model config: no config dict for class %s", quoted(class))
	}
	if _, ok := conf["name"]; !ok {
		conf["name"] = "model"
	}
	r := &cfg{c: conf}
	name := r.name()
	if r.err != nil {
		return nil, fmt.Errorf("model config: %w", r.err)
	}
	var m *Model
	switch class {
	case "Sequential":
		m, err = sequentialFromConfig(name, r, opts)
	case "Functional", "Model":
		m, err = functionalFromConfig(name, r, opts)
	default:
		return nil, fmt.Errorf("model class %s is not supported (Sequential or Functional)", quoted(class))
	}
	if err == nil {
		r.unread()
		err = r.err
	}
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", quoted(name), err)
	}
	if r.frozen {
		// Keras' model.trainable = False freezes every layer.
		for _, l := range m.layers {
			if err := freeze(l); err != nil {
				return nil, fmt.Errorf("model %s: layer %s: %w", quoted(name), quoted(l.Name()), err)
			}
		}
	}
	if err := m.Build(); err != nil {
		return nil, err
	}
	limit := opts.MaxParams
	if limit <= 0 {
		limit = 1 << 30
	}
	var total int64
	for _, w := range m.Weights() {
		n, err := dtypes.NumElements(w.Shape())
		if err != nil || n > limit-total {
			return nil, fmt.Errorf("model %s declares more than %d weight scalars (LoadOptions.MaxParams)", quoted(name), limit)
		}
		total += n
	}
	return m, nil
}

// layerFromEntry builds one layer from a config list entry.
func layerFromEntry(e map[string]any, opts LoadOptions) (Layer, layerSpec, error) {
	spec := layerSpec{}
	spec.className, _ = e["class_name"].(string)
	spec.module, _ = e["module"].(string)
	spec.registeredName, _ = e["registered_name"].(string)
	c, _ := e["config"].(map[string]any)
	spec.name, _ = e["name"].(string)
	if spec.name == "" && c != nil {
		spec.name, _ = c["name"].(string)
	}
	for _, n := range []struct{ what, s string }{
		{"name", spec.name}, {"class name", spec.className}, {"module", spec.module}, {"registered name", spec.registeredName},
	} {
		if err := checkName("layer "+n.what, n.s); err != nil {
			return nil, spec, err
		}
	}
	if spec.className == "" || c == nil {
		return nil, spec, fmt.Errorf("%s: no class_name or config", spec)
	}
	f, err := lookupFactory(spec, opts.CustomLayers)
	if err != nil {
		return nil, spec, err
	}
	l, err := f(c)
	if err != nil {
		return nil, spec, fmt.Errorf("%s: %w", spec, err)
	}
	if l == nil {
		return nil, spec, fmt.Errorf("%s: the registered constructor returned no layer", spec)
	}
	if spec.name != "" && l.Name() != spec.name {
		return nil, spec, fmt.Errorf("%s: the constructor named the layer %s", spec, quoted(l.Name()))
	}
	// A registered constructor need not read dtype nor trainable: the
	// layer takes its policy, and is frozen, here whatever made it.
	if d, ok := c["dtype"]; ok && d != nil {
		p, err := mixedprecision.PolicyFromConfig(d)
		if err != nil {
			return nil, spec, fmt.Errorf("%s: dtype: %w", spec, err)
		}
		if sp, ok := l.(interface{ SetDTypePolicy(mixedprecision.Policy) }); ok {
			sp.SetDTypePolicy(p)
		} else if p.Name() != "float32" {
			return nil, spec, fmt.Errorf("%s: dtype %s: the layer cannot take a dtype policy (it has no SetDTypePolicy method)", spec, p.Name())
		}
	}
	if c["trainable"] == false {
		if err := freeze(l); err != nil {
			return nil, spec, fmt.Errorf("%s: %w", spec, err)
		}
	}
	return l, spec, nil
}

// inputLayerFromConfig reads an InputLayer's config, refusing options it
// does not implement.
func inputLayerFromConfig(c map[string]any) (InputSpec, error) {
	r := &cfg{c: c}
	spec, err := inputSpecFromConfig(r)
	if err == nil {
		r.mark("name")
		r.unread()
		err = r.err
	}
	if err != nil {
		return spec, fmt.Errorf("InputLayer %s: %w", quoted(spec.Name), err)
	}
	return spec, nil
}

// inputSpecFromConfig reads the input shape and dtype of an InputLayer
// config (Keras 3 batch_shape, legacy batch_input_shape).
func inputSpecFromConfig(r *cfg) (InputSpec, error) {
	spec := InputSpec{Name: r.string("name", "")}
	if err := checkName("name", spec.Name); err != nil {
		return InputSpec{}, err
	}
	shape, ok := r.raw("batch_shape").([]any)
	if !ok {
		shape, ok = r.raw("batch_input_shape").([]any)
	}
	if !ok || len(shape) < 1 {
		return spec, errors.New("no batch_shape")
	}
	if len(shape) > 8 {
		return spec, fmt.Errorf("rank %d is too large", len(shape))
	}
	elements := int64(1)
	for _, d := range shape[1:] {
		if d == nil {
			spec.Shape = append(spec.Shape, -1)
			continue
		}
		n := int64(r.intValue("batch_shape", d, 0, maxDim))
		spec.Shape = append(spec.Shape, n)
		if n > 0 && elements <= maxWeightElements {
			elements *= n
		}
	}
	if elements > maxWeightElements {
		r.fail("batch_shape %s: one example has more than %d elements", excerpt(shape), int64(maxWeightElements))
	}
	switch dt := r.string("dtype", "float32"); dt {
	case "float32":
		spec.DType = tfgo.Float
	case "float64": // keras.config.set_floatx("float64"), or an Input's dtype
		spec.DType = tfgo.Double
	case "float16":
		spec.DType = tfgo.Half
	case "bfloat16":
		spec.DType = tfgo.BFloat16
	case "int32":
		spec.DType = tfgo.Int32
	case "int64":
		spec.DType = tfgo.Int64
	default:
		r.fail("dtype %s is not supported (float32, float64, float16, bfloat16, int32, int64)", quoted(dt))
	}
	r.want("sparse", false)
	r.want("ragged", false)
	r.want("optional", false)
	return spec, r.err
}

// layerList is a model config's layer list, refused when longer than maxLayers.
func layerList(r *cfg) ([]any, error) {
	entries, _ := r.raw("layers").([]any)
	if len(entries) > maxLayers {
		return nil, fmt.Errorf("%d layers, more than the limit of %d", len(entries), maxLayers)
	}
	return entries, nil
}

func sequentialFromConfig(name string, r *cfg, opts LoadOptions) (*Model, error) {
	entries, err := layerList(r)
	if err != nil {
		return nil, err
	}
	var input *InputSpec
	var layers []Layer
	seen := map[string]bool{}
	for i, v := range entries {
		e, _ := v.(map[string]any)
		if e == nil {
			return nil, fmt.Errorf("layer %d: not a dict", i)
		}
		if cn, _ := e["class_name"].(string); cn == "InputLayer" {
			if i != 0 {
				return nil, fmt.Errorf("layer %d: an InputLayer after other layers", i)
			}
			c, _ := e["config"].(map[string]any)
			s, err := inputLayerFromConfig(c)
			if err != nil {
				return nil, err
			}
			input = &s
			continue
		}
		l, spec, err := layerFromEntry(e, opts)
		if err != nil {
			return nil, err
		}
		if seen[l.Name()] {
			return nil, fmt.Errorf("%s: two layers have this name", spec)
		}
		seen[l.Name()] = true
		layers = append(layers, l)
		if input == nil && i == 0 {
			// Legacy configs put the input shape on the first layer.
			c, _ := e["config"].(map[string]any)
			if _, ok := c["batch_input_shape"]; ok {
				s, err := inputSpecFromConfig(&cfg{c: c})
				if err != nil {
					return nil, fmt.Errorf("%s: %w", spec, err)
				}
				s.Name = ""
				input = &s
			}
		}
	}
	if bs, ok := r.raw("build_input_shape").([]any); ok && input == nil {
		s, err := inputSpecFromConfig(&cfg{c: map[string]any{"batch_shape": bs}})
		if err != nil {
			return nil, fmt.Errorf("build_input_shape: %w", err)
		}
		input = &s
	}
	if input == nil {
		return nil, errors.New("no input shape (no InputLayer, build_input_shape or batch_input_shape)")
	}
	if len(layers) == 0 {
		return nil, errors.New("no layers")
	}
	m := NewSequential(name, *input, layers...)
	if d := r.raw("dtype"); d != nil {
		p, err := mixedprecision.PolicyFromConfig(d)
		if err != nil {
			return nil, fmt.Errorf("dtype: %w", err)
		}
		m.policy = p
	}
	return m, nil
}

// history is a reference to a layer's output: keras_history [name, node, index].
func history(v any) (name string, node, index int, ok bool) {
	h, isList := v.([]any)
	if !isList || len(h) < 3 {
		return "", 0, 0, false
	}
	name, ok1 := h[0].(string)
	n, ok2 := h[1].(float64)
	i, ok3 := h[2].(float64)
	if !ok1 || !ok2 || !ok3 || n < 0 || i < 0 || n > 1<<20 || i > 1<<20 || n != math.Trunc(n) || i != math.Trunc(i) {
		return "", 0, 0, false
	}
	return name, int(n), int(i), true
}

// functionalFromConfig builds a functional model from its config, as Keras'
// functional_from_config does: the layers first, then their calls (inbound
// nodes) as the tensors they take become available, then the model from
// its input and output.
func functionalFromConfig(name string, conf *cfg, opts LoadOptions) (*Model, error) {
	r := &functionalReader{byName: map[string]*configLayer{}}
	if err := r.readLayers(conf, opts); err != nil {
		return nil, err
	}
	if err := r.callLayers(); err != nil {
		return nil, err
	}
	in, err := r.endpoint(conf, "input_layers")
	if err != nil {
		return nil, err
	}
	if in != r.input {
		return nil, errors.New("input_layers does not name the InputLayer")
	}
	out, err := r.endpoint(conf, "output_layers")
	if err != nil {
		return nil, err
	}
	m, err := NewFunctional(name, r.input, out)
	if err != nil {
		return nil, err
	}
	for _, en := range r.order {
		if en.layer != nil && len(en.nodes) == 0 {
			return nil, fmt.Errorf("%s: never called in the model", en.spec)
		}
	}
	return m, nil
}

// functionalReader holds a functional config's layers while their calls
// are rebuilt.
type functionalReader struct {
	byName map[string]*configLayer
	order  []*configLayer // as listed
	input  *KerasTensor   // the InputLayer's output
	calls  int            // inbound nodes of all layers
}

// configLayer is one entry of a functional config's layer list.
type configLayer struct {
	name    string
	layer   Layer // nil for the InputLayer
	spec    layerSpec
	nodes   []any          // the inbound nodes: the layer's calls
	outputs []*KerasTensor // by node index, as the calls are built
	// refs are, per node, the outputs the node takes (from the
	// keras_history of its tensors); refs[k][:built[k]] are known built,
	// so that checking whether a node is ready costs, over all passes,
	// one look per reference plus one per pass.
	refs  [][]tensorRef
	built []int
}

// tensorRef is a keras_history: output node of layer src.
type tensorRef struct {
	src  *configLayer
	node int
}

// readLayers makes the layers of the config's layer list.
func (r *functionalReader) readLayers(conf *cfg, opts LoadOptions) error {
	entries, err := layerList(conf)
	if err != nil {
		return err
	}
	for i, v := range entries {
		e, _ := v.(map[string]any)
		if e == nil {
			return fmt.Errorf("layer %d: not a dict", i)
		}
		if err := r.readLayer(i, e, opts); err != nil {
			return err
		}
	}
	if r.input == nil {
		return errors.New("no InputLayer")
	}
	return nil
}

// readLayer makes the layer of entry i (or the model's input).
func (r *functionalReader) readLayer(i int, e map[string]any, opts LoadOptions) error {
	en := &configLayer{}
	en.name, _ = e["name"].(string)
	c, _ := e["config"].(map[string]any)
	if en.name == "" && c != nil {
		en.name, _ = c["name"].(string)
	}
	if en.name == "" {
		return fmt.Errorf("layer %d: no name", i)
	}
	if err := checkName(fmt.Sprintf("layer %d: name", i), en.name); err != nil {
		return err
	}
	if r.byName[en.name] != nil {
		return fmt.Errorf("layer %s: two layers have this name", quoted(en.name))
	}
	if cn, _ := e["class_name"].(string); cn == "InputLayer" {
		if r.input != nil {
			return errors.New("more than one InputLayer (only single-input models are supported)")
		}
		s, err := inputLayerFromConfig(c)
		if err != nil {
			return err
		}
		r.input = Input(s)
		en.outputs = []*KerasTensor{r.input}
	} else {
		var l Layer
		var spec layerSpec
		var err error
		if isOpEntry(e) {
			l, spec, err = opEntry(e, en.name)
		} else {
			l, spec, err = layerFromEntry(e, opts)
		}
		if err != nil {
			return err
		}
		en.layer, en.spec = l, spec
		en.nodes, _ = e["inbound_nodes"].([]any)
		if r.calls += len(en.nodes); r.calls > maxCalls {
			return fmt.Errorf("%s: the layers' inbound nodes are more than the limit of %d", spec, maxCalls)
		}
	}
	r.byName[en.name] = en
	r.order = append(r.order, en)
	return nil
}

// callLayers builds the layers' calls as their inputs become available
// (Keras' functional_from_config), until none can be built.
func (r *functionalReader) callLayers() error {
	for _, en := range r.order {
		if err := r.collectRefs(en); err != nil {
			return err
		}
	}
	for progress := true; progress; {
		progress = false
		for _, en := range r.order {
			for len(en.outputs) < len(en.nodes) && en.layer != nil && r.ready(en, len(en.outputs)) {
				k := len(en.outputs)
				t, ready, err := r.node(en, en.nodes[k])
				if err != nil {
					return fmt.Errorf("%s, inbound node %d: %w", en.spec, k, err)
				}
				if !ready { // ready said otherwise: never, but never loop on it
					return fmt.Errorf("%s, inbound node %d: unreadable", en.spec, k)
				}
				en.outputs = append(en.outputs, t)
				progress = true
			}
		}
	}
	for _, en := range r.order {
		if en.layer != nil && len(en.outputs) < len(en.nodes) {
			return fmt.Errorf("%s: inbound node %d references a tensor that is never computed", en.spec, len(en.outputs))
		}
	}
	return nil
}

// collectRefs finds the tensors each inbound node of en takes, once.
func (r *functionalReader) collectRefs(en *configLayer) error {
	en.refs = make([][]tensorRef, len(en.nodes))
	en.built = make([]int, len(en.nodes))
	for k, nv := range en.nodes {
		var refs []tensorRef
		add := func(v any) error {
			name, node, index, ok := history(v)
			if !ok {
				return fmt.Errorf("unreadable keras_history %s", excerpt(v))
			}
			src := r.byName[name]
			if src == nil {
				return fmt.Errorf("keras_history names an unknown layer %s", quoted(name))
			}
			if index != 0 {
				return extraOutputError(v, name, index)
			}
			refs = append(refs, tensorRef{src, node})
			return nil
		}
		var err error
		if n, ok := nv.(map[string]any); ok {
			if err = walkTensors(n["args"], 0, add); err == nil {
				err = walkTensors(n["kwargs"], 0, add)
			}
		} else if legacy, ok := nv.([]any); ok {
			for _, ref := range legacy {
				if err = add(ref); err != nil {
					break
				}
				if rl, _ := ref.([]any); len(rl) > 3 {
					if err = walkTensors(rl[3], 0, add); err != nil {
						break
					}
				}
			}
		}
		if err != nil {
			return fmt.Errorf("%s, inbound node %d: %w", en.spec, k, err)
		}
		en.refs[k] = refs
	}
	return nil
}

// walkTensors calls f with the keras_history of every __keras_tensor__ in
// a node argument, as deserialize would meet them.
func walkTensors(v any, depth int, f func(any) error) error {
	if depth > 16 {
		return errors.New("arguments nested too deeply")
	}
	switch x := v.(type) {
	case map[string]any:
		if x["class_name"] == "__keras_tensor__" {
			c, _ := x["config"].(map[string]any)
			return f(c["keras_history"])
		}
		for _, e := range x {
			if err := walkTensors(e, depth+1, f); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := walkTensors(e, depth+1, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// ready reports whether every tensor node k of en takes is built.
func (r *functionalReader) ready(en *configLayer, k int) bool {
	refs := en.refs[k]
	for en.built[k] < len(refs) {
		ref := refs[en.built[k]]
		if ref.node >= len(ref.src.outputs) {
			return false
		}
		en.built[k]++
	}
	return true
}

// extraOutputError refuses a keras_history that reads output index of a
// layer: keraslike's layers have one output, and Keras gives a layer more
// only through call options keraslike does not implement.
func extraOutputError(v any, name string, index int) error {
	return fmt.Errorf("keras_history %s: layer %s has a single output, and the file reads its output %d "+
		"(an option that adds outputs, such as MultiHeadAttention's return_attention_scores=True, is not supported)",
		excerpt(v), quoted(name), index)
}

// tensor is the output a keras_history names; ready is false while the
// call making it is not built yet.
func (r *functionalReader) tensor(v any) (t *KerasTensor, ready bool, err error) {
	name, node, index, ok := history(v)
	if !ok {
		return nil, false, fmt.Errorf("unreadable keras_history %s", excerpt(v))
	}
	src := r.byName[name]
	if src == nil {
		return nil, false, fmt.Errorf("keras_history names an unknown layer %s", quoted(name))
	}
	if index != 0 {
		return nil, false, extraOutputError(v, name, index)
	}
	if node >= len(src.outputs) || src.outputs[node] == nil {
		return nil, false, nil // not built yet
	}
	return src.outputs[node], true, nil
}

// deserialize turns a node argument into call arguments (tensors for
// __keras_tensor__ dicts, a list of only tensors as []*KerasTensor); ready
// is false while a tensor it references is not built yet.
func (r *functionalReader) deserialize(v any, depth int) (any, bool, error) {
	if depth > 16 {
		return nil, false, errors.New("arguments nested too deeply")
	}
	switch x := v.(type) {
	case map[string]any:
		c, _ := x["config"].(map[string]any)
		switch x["class_name"] {
		case "__keras_tensor__":
			return r.tensor(c["keras_history"])
		case "__tensor__", "__numpy__":
			k, err := constantFromConfig(x["class_name"].(string), c)
			return k, err == nil, err
		case "__slice__":
			sl, err := sliceFromConfig(c)
			return sl, err == nil, err
		case "__ellipsis__":
			return Ellipsis, true, nil
		}
		out := map[string]any{}
		for k, e := range x {
			d, ready, err := r.deserialize(e, depth+1)
			if err != nil || !ready {
				return nil, ready, err
			}
			out[k] = d
		}
		return out, true, nil
	case []any:
		out := make([]any, len(x))
		all := len(x) > 0
		for i, e := range x {
			d, ready, err := r.deserialize(e, depth+1)
			if err != nil || !ready {
				return nil, ready, err
			}
			out[i] = d
			_, isT := d.(*KerasTensor)
			all = all && isT
		}
		if all {
			ts := make([]*KerasTensor, len(out))
			for i, d := range out {
				ts[i] = d.(*KerasTensor)
			}
			return ts, true, nil
		}
		return out, true, nil
	}
	return v, true, nil
}

// node builds the call of one inbound node, or reports it not ready.
func (r *functionalReader) node(en *configLayer, nv any) (*KerasTensor, bool, error) {
	if n, ok := nv.(map[string]any); ok {
		return r.kerasNode(en, n)
	}
	return r.legacyNode(en, nv)
}

// kerasNode builds a Keras 3 node: {"args": [...], "kwargs": {...}}.
func (r *functionalReader) kerasNode(en *configLayer, n map[string]any) (*KerasTensor, bool, error) {
	a, ready, err := r.deserialize(n["args"], 0)
	if err != nil || !ready {
		return nil, ready, err
	}
	var args []any
	switch x := a.(type) {
	case []any:
		args = x
	case []*KerasTensor:
		for _, t := range x {
			args = append(args, t)
		}
	case nil:
	default:
		return nil, false, fmt.Errorf("unreadable args %s", excerpt(n["args"]))
	}
	var kwargs map[string]any
	if n["kwargs"] != nil {
		k, ready, err := r.deserialize(n["kwargs"], 0)
		if err != nil || !ready {
			return nil, ready, err
		}
		kwargs, _ = k.(map[string]any)
	}
	// Keras records a call as written: layer(inputs=x) has no positional
	// argument. inputs is the first parameter of every built-in layer's
	// call (Layer.call(self, inputs, ...)), which Keras binds by name: it
	// is the positional input here.
	if _, isOp := en.layer.(*Op); !isOp && len(args) == 0 && kwargs["inputs"] != nil {
		args = []any{kwargs["inputs"]}
		delete(kwargs, "inputs")
	}
	return ApplyKw(en.layer, args, kwargs), true, nil
}

// legacyNode builds a legacy node: [[name, node, index, kwargs], ...].
func (r *functionalReader) legacyNode(en *configLayer, nv any) (*KerasTensor, bool, error) {
	refs, ok := nv.([]any)
	if !ok || len(refs) == 0 {
		return nil, false, fmt.Errorf("unreadable inbound node %s", excerpt(nv))
	}
	var ts []*KerasTensor
	var kwargs map[string]any
	for _, ref := range refs {
		t, ready, err := r.tensor(ref)
		if err != nil || !ready {
			return nil, ready, err
		}
		ts = append(ts, t)
		if rl, _ := ref.([]any); len(rl) > 3 {
			if kw, _ := rl[3].(map[string]any); len(kw) > 0 {
				k, ready, err := r.deserialize(kw, 0)
				if err != nil || !ready {
					return nil, ready, err
				}
				kwargs, _ = k.(map[string]any)
			}
		}
	}
	var args []any
	if len(ts) == 1 {
		args = []any{ts[0]}
	} else {
		args = []any{ts}
	}
	return ApplyKw(en.layer, args, kwargs), true, nil
}

// endpoint is the tensor the model's input_layers or output_layers names
// (one tensor: [name, node, index], or a list or a dict of one, as Keras
// writes keras.Model([x], [y]) and keras.Model({"a": x}, {"b": y})).
func (r *functionalReader) endpoint(conf *cfg, key string) (*KerasTensor, error) {
	v := conf.raw(key)
	if d, ok := v.(map[string]any); ok && len(d) == 1 {
		for _, e := range d {
			v = e
		}
	}
	if l, ok := v.([]any); ok && len(l) == 1 {
		if inner, ok := l[0].([]any); ok {
			v = inner
		}
	}
	t, ready, err := r.tensor(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (only single-input, single-output models are supported)", key, err)
	}
	if !ready {
		return nil, fmt.Errorf("%s: %s is never computed", key, excerpt(v))
	}
	return t, nil
}

// opEntry makes the operation (Op) of a functional config's entry.
func opEntry(e map[string]any, name string) (Layer, layerSpec, error) {
	spec := layerSpec{name: name}
	spec.className, _ = e["class_name"].(string)
	spec.module, _ = e["module"].(string)
	spec.registeredName, _ = e["registered_name"].(string)
	for _, n := range []struct{ what, s string }{
		{"class name", spec.className}, {"module", spec.module}, {"registered name", spec.registeredName},
	} {
		if err := checkName("layer "+n.what, n.s); err != nil {
			return nil, spec, err
		}
	}
	o, err := opFromEntry(e, spec)
	if err != nil {
		return nil, spec, err
	}
	return o, spec, nil
}

// decodeConfig decodes a model config with numbers as float64, as layer
// configs are read, except the Python numbers an operation is called with
// (the direct arguments of an operation's inbound node, and the lists among
// them): those keep
// whether Python wrote an int (2, a Go int) or a float (2.0, a float64),
// which Keras' type promotion tells apart (an int32 tensor times 2.0 is
// float32, times 2 int32).
func decodeConfig(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the config's JSON object")
	}
	var walk func(v any, opArgs bool) any
	walk = func(v any, opArgs bool) any {
		switch x := v.(type) {
		case json.Number:
			f, _ := x.Float64()
			if opArgs && !strings.ContainsAny(x.String(), ".eE") && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return int(f)
			}
			return f
		case []any:
			// A list argument (take's indices, GetItem's key) is Python's too.
			for i, e := range x {
				x[i] = walk(e, opArgs)
			}
		case map[string]any:
			op := isOpEntry(x)
			for k, e := range x {
				if op && k == "inbound_nodes" {
					x[k] = walkNodes(e, walk)
				} else {
					x[k] = walk(e, false)
				}
			}
		}
		return v
	}
	walk(top, false)
	return top, nil
}

// walkNodes applies walk to an operation's inbound nodes, telling it which
// values are the call's direct arguments.
func walkNodes(nodes any, walk func(any, bool) any) any {
	l, ok := nodes.([]any)
	if !ok {
		return walk(nodes, false)
	}
	for i, n := range l {
		m, ok := n.(map[string]any)
		if !ok {
			l[i] = walk(n, false)
			continue
		}
		for k, v := range m {
			switch a := v.(type) {
			case []any:
				if k == "args" {
					for j, e := range a {
						a[j] = walk(e, true)
					}
					continue
				}
			case map[string]any:
				if k == "kwargs" {
					for kk, e := range a {
						a[kk] = walk(e, true)
					}
					continue
				}
			}
			m[k] = walk(v, false)
		}
	}
	return l
}

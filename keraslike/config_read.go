package keraslike

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/tfgo"
)

// Reading Keras model configs (config.json of a .keras archive, the
// model_config attribute of a legacy .h5): Sequential and functional
// models, each layer made by its class' from-config constructor
// (registry.go).

// modelFromJSON builds (and checks the size of) a model from Keras' config.
func modelFromJSON(raw []byte, opts LoadOptions, legacy bool) (*Model, error) {
	var top map[string]any
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	class, _ := top["class_name"].(string)
	conf, _ := top["config"].(map[string]any)
	if conf == nil {
		return nil, fmt.Errorf("model config: no config dict for class %q", class)
	}
	name, _ := conf["name"].(string)
	if name == "" {
		name = "model"
	}
	var m *Model
	var err error
	switch class {
	case "Sequential":
		m, err = sequentialFromConfig(name, conf, opts)
	case "Functional", "Model":
		m, err = functionalFromConfig(name, conf, opts)
	default:
		return nil, fmt.Errorf("model class %q is not supported (Sequential or Functional)", class)
	}
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", name, err)
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
			return nil, fmt.Errorf("model %q declares more than %d weight scalars (LoadOptions.MaxParams)", name, limit)
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
		return nil, spec, fmt.Errorf("%s: the constructor named the layer %q", spec, l.Name())
	}
	return l, spec, nil
}

// inputSpecFromConfig reads an InputLayer config (Keras 3 batch_shape,
// legacy batch_input_shape).
func inputSpecFromConfig(c map[string]any) (InputSpec, error) {
	r := &cfg{c: c}
	spec := InputSpec{Name: r.string("name", "")}
	shape, ok := c["batch_shape"].([]any)
	if !ok {
		shape, ok = c["batch_input_shape"].([]any)
	}
	if !ok || len(shape) < 1 {
		return spec, fmt.Errorf("InputLayer %q: no batch_shape", spec.Name)
	}
	if len(shape) > 8 {
		return spec, fmt.Errorf("InputLayer %q: rank %d is too large", spec.Name, len(shape))
	}
	for _, d := range shape[1:] {
		if d == nil {
			spec.Shape = append(spec.Shape, -1)
			continue
		}
		spec.Shape = append(spec.Shape, int64(r.intValue("batch_shape", d, 0, maxDim)))
	}
	switch dt := r.string("dtype", "float32"); dt {
	case "float32":
		spec.DType = tfgo.Float
	case "int32":
		spec.DType = tfgo.Int32
	case "int64":
		spec.DType = tfgo.Int64
	default:
		r.fail("dtype %q is not supported (float32, int32, int64)", dt)
	}
	r.want("sparse", false)
	r.want("ragged", false)
	return spec, r.err
}

func sequentialFromConfig(name string, conf map[string]any, opts LoadOptions) (*Model, error) {
	entries, _ := conf["layers"].([]any)
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
			s, err := inputSpecFromConfig(c)
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
				s, err := inputSpecFromConfig(c)
				if err != nil {
					return nil, err
				}
				s.Name = ""
				input = &s
			}
		}
	}
	if input == nil {
		if bs, ok := conf["build_input_shape"].([]any); ok {
			s, err := inputSpecFromConfig(map[string]any{"batch_shape": bs})
			if err != nil {
				return nil, err
			}
			input = &s
		}
	}
	if input == nil {
		return nil, errors.New("no input shape (no InputLayer, build_input_shape or batch_input_shape)")
	}
	if len(layers) == 0 {
		return nil, errors.New("no layers")
	}
	return NewSequential(name, *input, layers...), nil
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
func functionalFromConfig(name string, conf map[string]any, opts LoadOptions) (*Model, error) {
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
}

// configLayer is one entry of a functional config's layer list.
type configLayer struct {
	name    string
	layer   Layer // nil for the InputLayer
	spec    layerSpec
	nodes   []any          // the inbound nodes: the layer's calls
	outputs []*KerasTensor // by node index, as the calls are built
}

// readLayers makes the layers of the config's layer list.
func (r *functionalReader) readLayers(conf map[string]any, opts LoadOptions) error {
	entries, _ := conf["layers"].([]any)
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
	if r.byName[en.name] != nil {
		return fmt.Errorf("layer %q: two layers have this name", en.name)
	}
	if cn, _ := e["class_name"].(string); cn == "InputLayer" {
		if r.input != nil {
			return errors.New("more than one InputLayer (only single-input models are supported)")
		}
		s, err := inputSpecFromConfig(c)
		if err != nil {
			return err
		}
		r.input = Input(s)
		en.outputs = []*KerasTensor{r.input}
	} else {
		l, spec, err := layerFromEntry(e, opts)
		if err != nil {
			return err
		}
		en.layer, en.spec = l, spec
		en.nodes, _ = e["inbound_nodes"].([]any)
		if len(en.nodes) > 1<<16 {
			return fmt.Errorf("%s: too many inbound nodes", spec)
		}
	}
	r.byName[en.name] = en
	r.order = append(r.order, en)
	return nil
}

// callLayers builds the layers' calls as their inputs become available
// (Keras' functional_from_config), until none can be built.
func (r *functionalReader) callLayers() error {
	for progress := true; progress; {
		progress = false
		for _, en := range r.order {
			for len(en.outputs) < len(en.nodes) && en.layer != nil {
				t, ready, err := r.node(en, en.nodes[len(en.outputs)])
				if err != nil {
					return fmt.Errorf("%s, inbound node %d: %w", en.spec, len(en.outputs), err)
				}
				if !ready {
					break
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

// tensor is the output a keras_history names; ready is false while the
// call making it is not built yet.
func (r *functionalReader) tensor(v any) (t *KerasTensor, ready bool, err error) {
	name, node, index, ok := history(v)
	if !ok {
		return nil, false, fmt.Errorf("unreadable keras_history %v", v)
	}
	src := r.byName[name]
	if src == nil {
		return nil, false, fmt.Errorf("keras_history names an unknown layer %q", name)
	}
	if index != 0 {
		return nil, false, fmt.Errorf("keras_history %v: layer %q has a single output", v, name)
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
		if x["class_name"] == "__keras_tensor__" {
			c, _ := x["config"].(map[string]any)
			return r.tensor(c["keras_history"])
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
		return nil, false, fmt.Errorf("unreadable args %v", n["args"])
	}
	var kwargs map[string]any
	if n["kwargs"] != nil {
		k, ready, err := r.deserialize(n["kwargs"], 0)
		if err != nil || !ready {
			return nil, ready, err
		}
		kwargs, _ = k.(map[string]any)
	}
	return ApplyKw(en.layer, args, kwargs), true, nil
}

// legacyNode builds a legacy node: [[name, node, index, kwargs], ...].
func (r *functionalReader) legacyNode(en *configLayer, nv any) (*KerasTensor, bool, error) {
	refs, ok := nv.([]any)
	if !ok || len(refs) == 0 {
		return nil, false, fmt.Errorf("unreadable inbound node %v", nv)
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
// (one tensor: [name, node, index], or a list of one).
func (r *functionalReader) endpoint(conf map[string]any, key string) (*KerasTensor, error) {
	v := conf[key]
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
		return nil, fmt.Errorf("%s: %v is never computed", key, v)
	}
	return t, nil
}

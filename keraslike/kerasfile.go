package keraslike

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/gotf/gotf/internal/h5"
	"github.com/gotf/gotf/tfgo"
)

// LoadOptions are LoadKerasModel's options.
type LoadOptions struct {
	// CustomLayers adds Go implementations of layer classes for this load
	// only, over RegisterLayer's (Keras' custom_objects).
	CustomLayers map[string]LayerFactory
	// MaxParams bounds the number of scalars in the model's weights that a
	// file may declare (checked once the graph is built, before any weight
	// is allocated); 0 means 1<<30.
	MaxParams int64
}

// Limits on the members of a .keras archive.
const (
	maxConfigBytes = 64 << 20
	// A member that declares more than this and more than zipMaxExpansion
	// times what it stores is refused as a decompression bomb (as Keras does).
	zipBombFloor    = 1 << 28
	zipMaxExpansion = 100
)

// LoadKerasModel builds a model from a Keras file: a Keras 3 .keras archive
// (config.json and model.weights.h5) or a legacy .h5 full model
// (model.save("x.h5"): the root attribute model_config and the
// model_weights group). The model is a Sequential or a single-input,
// single-output functional model of the classes keraslike implements
// (InputLayer, Dense, Embedding, LayerNormalization, MultiHeadAttention,
// Dropout, Activation, Add, Flatten, GlobalAveragePooling1D,
// GlobalMaxPooling1D) and of classes registered with RegisterLayer or
// opts.CustomLayers (keraslike's TransformerBlock and PositionalEmbedding
// are registered).
//
// Loading never runs code from the file: a Lambda layer, an unknown or
// custom class without a Go implementation, or a serialized function
// (e.g. a custom activation) is an error naming the layer and its class;
// an option of a known class that keraslike does not implement is an
// error too, never ignored. Sizes from the file are checked before
// allocation, and every weight's dtype and shape against its layer's.
func LoadKerasModel(path string, opts LoadOptions) (*Model, error) {
	m, err := loadKerasModel(path, opts)
	if err != nil {
		return nil, fmt.Errorf("loading Keras model %s: %w", path, err)
	}
	return m, nil
}

func loadKerasModel(path string, opts LoadOptions) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var sig [8]byte
	_, err = io.ReadFull(f, sig[:])
	f.Close()
	if err != nil {
		return nil, errors.New("too short to be a .keras or .h5 file")
	}
	switch {
	case bytes.HasPrefix(sig[:], []byte("PK\x03\x04")):
		return loadKerasZip(path, opts)
	case string(sig[:]) == "\x89HDF\r\n\x1a\n":
		return loadLegacyModel(path, opts)
	}
	return nil, errors.New("neither a .keras archive (zip) nor an HDF5 .h5 file")
}

func loadKerasZip(path string, opts LoadOptions) (*Model, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("not a readable zip archive: %w", err)
	}
	defer zr.Close()
	members := map[string]*zip.File{}
	for _, zf := range zr.File {
		if zf.UncompressedSize64 > zipBombFloor && zf.UncompressedSize64 > zipMaxExpansion*zf.CompressedSize64 {
			return nil, fmt.Errorf("archive member %q declares %d bytes but stores %d: refused as a decompression bomb", zf.Name, zf.UncompressedSize64, zf.CompressedSize64)
		}
		members[zf.Name] = zf
	}
	cf := members["config.json"]
	if cf == nil {
		return nil, errors.New("the archive has no config.json")
	}
	if cf.UncompressedSize64 > maxConfigBytes {
		return nil, fmt.Errorf("config.json declares %d bytes, more than the limit %d", cf.UncompressedSize64, maxConfigBytes)
	}
	raw, err := readMember(cf, maxConfigBytes)
	if err != nil {
		return nil, err
	}
	m, err := modelFromJSON(raw, opts, false)
	if err != nil {
		return nil, err
	}
	wf := members["model.weights.h5"]
	if wf == nil {
		if members["model.weights.json"] != nil {
			return nil, errors.New("sharded weights (model.weights.json) are not supported")
		}
		return nil, errors.New("the archive has no model.weights.h5")
	}
	tmp, err := os.CreateTemp("", "gotf-keras-*.weights.h5")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	rc, err := wf.Open()
	if err != nil {
		tmp.Close()
		return nil, fmt.Errorf("model.weights.h5: %w", err)
	}
	n, err := io.Copy(tmp, io.LimitReader(rc, int64(wf.UncompressedSize64)+1))
	rc.Close()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("extracting model.weights.h5: %w", err)
	}
	if uint64(n) != wf.UncompressedSize64 {
		return nil, fmt.Errorf("model.weights.h5 holds %d bytes, its header says %d", n, wf.UncompressedSize64)
	}
	if err := m.loadKeras3Weights(tmp.Name()); err != nil {
		m.Close()
		return nil, fmt.Errorf("model.weights.h5: %w", err)
	}
	return m, nil
}

func readMember(zf *zip.File, limit int64) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", zf.Name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than the limit of %d bytes", zf.Name, limit)
	}
	return b, nil
}

func loadLegacyModel(path string, opts LoadOptions) (*Model, error) {
	f, err := h5.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !f.Root().HasAttr("model_config") {
		return nil, errors.New("no model_config attribute: a weights-only file; build the model in Go and call LoadWeightsLegacyH5 or LoadWeightsH5")
	}
	cfgJSON, err := f.Root().StringAttr("model_config")
	if err != nil {
		return nil, err
	}
	m, err := modelFromJSON([]byte(cfgJSON), opts, true)
	if err != nil {
		return nil, err
	}
	sess, err := m.session()
	if err == nil {
		var ws []*Weight
		var vals []*tfgo.Tensor
		ws, vals, err = m.readLegacyWeights(f)
		if err == nil {
			err = m.assign(sess, ws, vals)
		}
		for _, v := range vals {
			v.Close()
		}
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

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
		n := int64(1)
		for _, d := range w.Shape() {
			if d > 0 && n > math.MaxInt64/d {
				n = math.MaxInt64
				break
			}
			n *= d
		}
		if total += n; total > limit || n == math.MaxInt64 {
			return nil, fmt.Errorf("model %q declares more than %d weight scalars (LoadOptions.MaxParams)", name, limit)
		}
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

func functionalFromConfig(name string, conf map[string]any, opts LoadOptions) (*Model, error) {
	entries, _ := conf["layers"].([]any)
	type entry struct {
		name    string
		layer   Layer
		spec    layerSpec
		nodes   []any
		outputs []*KerasTensor // by node index
	}
	byName := map[string]*entry{}
	var order []*entry
	var input *KerasTensor
	for i, v := range entries {
		e, _ := v.(map[string]any)
		if e == nil {
			return nil, fmt.Errorf("layer %d: not a dict", i)
		}
		en := &entry{}
		en.name, _ = e["name"].(string)
		c, _ := e["config"].(map[string]any)
		if en.name == "" && c != nil {
			en.name, _ = c["name"].(string)
		}
		if en.name == "" {
			return nil, fmt.Errorf("layer %d: no name", i)
		}
		if byName[en.name] != nil {
			return nil, fmt.Errorf("layer %q: two layers have this name", en.name)
		}
		if cn, _ := e["class_name"].(string); cn == "InputLayer" {
			if input != nil {
				return nil, errors.New("more than one InputLayer (only single-input models are supported)")
			}
			s, err := inputSpecFromConfig(c)
			if err != nil {
				return nil, err
			}
			input = Input(s)
			en.outputs = []*KerasTensor{input}
		} else {
			l, spec, err := layerFromEntry(e, opts)
			if err != nil {
				return nil, err
			}
			en.layer, en.spec = l, spec
			en.nodes, _ = e["inbound_nodes"].([]any)
			if len(en.nodes) > 1<<16 {
				return nil, fmt.Errorf("%s: too many inbound nodes", spec)
			}
		}
		byName[en.name] = en
		order = append(order, en)
	}
	if input == nil {
		return nil, errors.New("no InputLayer")
	}
	tensor := func(v any) (*KerasTensor, bool, error) {
		name, node, index, ok := history(v)
		if !ok {
			return nil, false, fmt.Errorf("unreadable keras_history %v", v)
		}
		src := byName[name]
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
	// deserialize turns a node argument into call arguments; ready is
	// false while a tensor it references is not built yet.
	var deserialize func(v any, depth int) (any, bool, error)
	deserialize = func(v any, depth int) (any, bool, error) {
		if depth > 16 {
			return nil, false, errors.New("arguments nested too deeply")
		}
		switch x := v.(type) {
		case map[string]any:
			if x["class_name"] == "__keras_tensor__" {
				c, _ := x["config"].(map[string]any)
				return tensor(c["keras_history"])
			}
			out := map[string]any{}
			for k, e := range x {
				d, ready, err := deserialize(e, depth+1)
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
				d, ready, err := deserialize(e, depth+1)
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
	node := func(en *entry, nv any) (*KerasTensor, bool, error) {
		if n, ok := nv.(map[string]any); ok { // Keras 3: {"args": [...], "kwargs": {...}}
			a, ready, err := deserialize(n["args"], 0)
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
				k, ready, err := deserialize(n["kwargs"], 0)
				if err != nil || !ready {
					return nil, ready, err
				}
				kwargs, _ = k.(map[string]any)
			}
			return ApplyKw(en.layer, args, kwargs), true, nil
		}
		// Legacy: [[name, node, index, kwargs], ...].
		refs, ok := nv.([]any)
		if !ok || len(refs) == 0 {
			return nil, false, fmt.Errorf("unreadable inbound node %v", nv)
		}
		var ts []*KerasTensor
		var kwargs map[string]any
		for _, r := range refs {
			t, ready, err := tensor(r)
			if err != nil || !ready {
				return nil, ready, err
			}
			ts = append(ts, t)
			if rl, _ := r.([]any); len(rl) > 3 {
				if kw, _ := rl[3].(map[string]any); len(kw) > 0 {
					k, ready, err := deserialize(kw, 0)
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
	// Build nodes as their inputs become available (Keras' functional_from_config).
	for progress := true; progress; {
		progress = false
		for _, en := range order {
			for len(en.outputs) < len(en.nodes) && en.layer != nil {
				t, ready, err := node(en, en.nodes[len(en.outputs)])
				if err != nil {
					return nil, fmt.Errorf("%s, inbound node %d: %w", en.spec, len(en.outputs), err)
				}
				if !ready {
					break
				}
				en.outputs = append(en.outputs, t)
				progress = true
			}
		}
	}
	for _, en := range order {
		if en.layer != nil && len(en.outputs) < len(en.nodes) {
			return nil, fmt.Errorf("%s: inbound node %d references a tensor that is never computed", en.spec, len(en.outputs))
		}
	}
	endpoint := func(key string) (*KerasTensor, error) {
		v := conf[key]
		if l, ok := v.([]any); ok && len(l) == 1 {
			if inner, ok := l[0].([]any); ok {
				v = inner
			}
		}
		t, ready, err := tensor(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (only single-input, single-output models are supported)", key, err)
		}
		if !ready {
			return nil, fmt.Errorf("%s: %v is never computed", key, v)
		}
		return t, nil
	}
	in, err := endpoint("input_layers")
	if err != nil {
		return nil, err
	}
	if in != input {
		return nil, errors.New("input_layers does not name the InputLayer")
	}
	out, err := endpoint("output_layers")
	if err != nil {
		return nil, err
	}
	m, err := NewFunctional(name, input, out)
	if err != nil {
		return nil, err
	}
	for _, en := range order {
		if en.layer != nil && len(en.nodes) == 0 {
			return nil, fmt.Errorf("%s: never called in the model", en.spec)
		}
	}
	return m, nil
}

// SaveKeras writes the model as a Keras 3 .keras archive (config.json,
// metadata.json, model.weights.h5) that keras.models.load_model opens: a
// Sequential model, or a functional one from NewFunctional or
// LoadKerasModel. Layers whose Keras twin is not a built-in Keras class
// (TransformerBlock, PositionalEmbedding, classes registered with
// RegisterLayer) are written with module "gotf.keraslike" and their class
// name as registered_name, so Python needs the class in custom_objects:
//
//	keras.models.load_model("m.keras", custom_objects={"TransformerBlock": TransformerBlock})
//
// A model from NewModel (a Go forward function) has no known connectivity:
// build it with Input/Apply/NewFunctional, or save its weights only
// (SaveWeightsH5). The file appears complete or not at all.
func (m *Model) SaveKeras(path string) error {
	if err := m.saveKeras(path); err != nil {
		return fmt.Errorf("saving %q as %s: %w", m.name, path, err)
	}
	return nil
}

func (m *Model) saveKeras(path string) error {
	if _, err := m.session(); err != nil {
		return err
	}
	conf, err := m.kerasConfig()
	if err != nil {
		return err
	}
	confJSON, err := json.Marshal(conf)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	meta, _ := json.Marshal(map[string]any{
		"keras_version": kerasFormatVersion,
		"date_saved":    time.Now().Format("2006-01-02@15:04:05"),
		"producer":      "gotf keraslike",
	})
	dir := filepath.Dir(path)
	wtmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".weights*.h5")
	if err != nil {
		return err
	}
	wtmp.Close()
	defer os.Remove(wtmp.Name())
	if err := m.writeKeras3Weights(wtmp.Name()); err != nil {
		return err
	}
	ztmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(ztmp.Name())
	zw := zip.NewWriter(ztmp)
	add := func(name string, method uint16, r io.Reader) error {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: time.Now()})
		if err != nil {
			return err
		}
		_, err = io.Copy(w, r)
		return err
	}
	err = add("metadata.json", zip.Deflate, bytes.NewReader(meta))
	if err == nil {
		err = add("config.json", zip.Deflate, bytes.NewReader(confJSON))
	}
	if err == nil {
		var wf *os.File
		if wf, err = os.Open(wtmp.Name()); err == nil {
			err = add("model.weights.h5", zip.Store, wf)
			wf.Close()
		}
	}
	if err == nil {
		err = zw.Close()
	}
	if cerr := ztmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	os.Chmod(ztmp.Name(), 0o644) // CreateTemp made it 0600
	return os.Rename(ztmp.Name(), path)
}

// kerasShape is a static shape as Keras writes it: unknown dims null.
func kerasShape(dims []int64) []any {
	out := make([]any, len(dims))
	for i, d := range dims {
		if d >= 0 {
			out[i] = d
		}
	}
	return out
}

func inputLayerEntry(spec InputSpec, name string) map[string]any {
	dt := spec.DType
	if dt == 0 {
		dt = tfgo.Float
	}
	dtName := map[tfgo.DataType]string{tfgo.Float: "float32", tfgo.Int32: "int32", tfgo.Int64: "int64", tfgo.Double: "float64"}[dt]
	return map[string]any{
		"module":     "keras.layers",
		"class_name": "InputLayer",
		"config": map[string]any{
			"batch_shape": kerasShape(append([]int64{-1}, spec.Shape...)),
			"dtype":       dtName,
			"sparse":      false,
			"ragged":      false,
			"name":        name,
			"optional":    false,
		},
		"registered_name": nil,
	}
}

// layerEntry is a layer's entry in a config's layer list.
func layerEntry(l Layer) map[string]any {
	e := map[string]any{
		"module":          "keras.layers",
		"class_name":      l.ClassName(),
		"config":          l.Config(),
		"registered_name": nil,
	}
	if _, builtin := builtins[l.ClassName()]; !builtin {
		e["module"] = "gotf.keraslike"
		e["registered_name"] = l.ClassName()
	}
	return e
}

// kerasConfig is the model's config.json (the model must be built).
func (m *Model) kerasConfig() (map[string]any, error) {
	if m.isSequential() {
		layers := []any{inputLayerEntry(m.input, m.inputLayerName())}
		for _, l := range m.layers {
			layers = append(layers, layerEntry(l))
		}
		shape := kerasShape(append([]int64{-1}, m.input.Shape...))
		return map[string]any{
			"module":     "keras",
			"class_name": "Sequential",
			"config": map[string]any{
				"name":              m.name,
				"trainable":         true,
				"dtype":             "float32",
				"layers":            layers,
				"build_input_shape": shape,
			},
			"registered_name": nil,
			"build_config":    map[string]any{"input_shape": shape},
		}, nil
	}
	g := graphOf(m)
	if g == nil {
		return nil, errors.New("the model was built with a Go forward function (NewModel), whose connectivity a Keras config cannot state: build it with Input, Apply and NewFunctional, or save its weights only (SaveWeightsH5)")
	}
	inName := m.inputLayerName()
	ref := func(t *KerasTensor) any {
		name, node := inName, 0
		if t.call != nil {
			name, node = t.call.layer.Name(), g.nodeIndex[t.call]
		}
		dt := t.dtype
		if dt == 0 {
			dt = tfgo.Float
		}
		return map[string]any{
			"class_name": "__keras_tensor__",
			"config": map[string]any{
				"shape":         kerasShape(t.shape),
				"dtype":         dt.String(),
				"keras_history": []any{name, node, 0},
			},
		}
	}
	var serialize func(v any) (any, error)
	serialize = func(v any) (any, error) {
		switch x := v.(type) {
		case *KerasTensor:
			if x.call == nil && x != g.input {
				return nil, errors.New("a second model input")
			}
			return ref(x), nil
		case []*KerasTensor:
			out := make([]any, len(x))
			for i, t := range x {
				r, err := serialize(t)
				if err != nil {
					return nil, err
				}
				out[i] = r
			}
			return out, nil
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				r, err := serialize(e)
				if err != nil {
					return nil, err
				}
				out[i] = r
			}
			return out, nil
		case map[string]any:
			out := map[string]any{}
			for k, e := range x {
				r, err := serialize(e)
				if err != nil {
					return nil, err
				}
				out[k] = r
			}
			return out, nil
		}
		return v, nil
	}
	nodes := map[Layer][]any{}
	for _, c := range g.calls {
		args, err := serialize(c.args)
		if err != nil {
			return nil, fmt.Errorf("layer %q: %w", c.layer.Name(), err)
		}
		if args == nil {
			args = []any{}
		}
		kwargs := map[string]any{}
		if c.kwargs != nil {
			k, err := serialize(c.kwargs)
			if err != nil {
				return nil, fmt.Errorf("layer %q: %w", c.layer.Name(), err)
			}
			kwargs = k.(map[string]any)
		}
		nodes[c.layer] = append(nodes[c.layer], map[string]any{"args": args, "kwargs": kwargs})
	}
	in := inputLayerEntry(m.input, inName)
	in["name"] = inName
	in["inbound_nodes"] = []any{}
	layers := []any{in}
	for _, l := range m.layers {
		e := layerEntry(l)
		e["name"] = l.Name()
		e["inbound_nodes"] = nodes[l]
		layers = append(layers, e)
	}
	outName := g.output.call.layer.Name()
	return map[string]any{
		"module":     "keras.src.models.functional",
		"class_name": "Functional",
		"config": map[string]any{
			"name":          m.name,
			"trainable":     true,
			"layers":        layers,
			"input_layers":  []any{inName, 0, 0},
			"output_layers": []any{outName, g.nodeIndex[g.output.call], 0},
		},
		"registered_name": "Functional",
	}, nil
}

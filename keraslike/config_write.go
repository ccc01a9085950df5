package keraslike

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gotf/gotf/tfgo"
)

// Writing Keras model configs (config.json of a .keras archive): each
// layer's entry holds its Config (get_config).

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
	if o, ok := l.(*Op); ok {
		e["module"], e["registered_name"] = o.module(), o.ClassName()
		return e
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
		return m.sequentialConfig(), nil
	}
	if m.graph == nil {
		return nil, errors.New("the model was built with a Go forward function (NewModel), whose connectivity a Keras config cannot state: build it with Input, Apply and NewFunctional, or save its weights only (SaveWeightsH5)")
	}
	return m.functionalConfig()
}

// sequentialConfig is a Sequential's config.
func (m *Model) sequentialConfig() map[string]any {
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
			"dtype":             m.policy.Config(),
			"layers":            layers,
			"build_input_shape": shape,
		},
		"registered_name": nil,
		"build_config":    map[string]any{"input_shape": shape},
	}
}

// functionalConfig is a functional model's config: its layers, each with
// its calls as inbound nodes.
func (m *Model) functionalConfig() (map[string]any, error) {
	g := m.graph
	w := configWriter{g: g, inName: m.inputLayerName()}
	nodes := map[Layer][]any{}
	for _, c := range g.calls {
		args, err := w.serialize(pyScalars(c))
		if err != nil {
			return nil, fmt.Errorf("layer %q: %w", c.layer.Name(), err)
		}
		if args == nil {
			args = []any{}
		}
		kwargs := map[string]any{}
		if c.kwargs != nil {
			k, err := w.serialize(c.kwargs)
			if err != nil {
				return nil, fmt.Errorf("layer %q: %w", c.layer.Name(), err)
			}
			kwargs = k.(map[string]any)
		}
		nodes[c.layer] = append(nodes[c.layer], map[string]any{"args": args, "kwargs": kwargs})
	}
	in := inputLayerEntry(m.input, w.inName)
	in["name"] = w.inName
	in["inbound_nodes"] = []any{}
	layers := []any{in}
	for _, l := range g.operations {
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
			"input_layers":  []any{w.inName, 0, 0},
			"output_layers": []any{outName, g.nodeIndex[g.output.call], 0},
		},
		"registered_name": "Functional",
	}, nil
}

// configWriter serializes the arguments of a functional graph's calls.
type configWriter struct {
	g      *functional
	inName string // the InputLayer's name
}

// ref is a KerasTensor as a node argument: a __keras_tensor__ naming the
// call that makes it (keras_history).
func (w configWriter) ref(t *KerasTensor) any {
	name, node := w.inName, 0
	if t.call != nil {
		name, node = t.call.layer.Name(), w.g.nodeIndex[t.call]
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

// serialize turns call arguments into JSON values, tensors as refs.
func (w configWriter) serialize(v any) (any, error) {
	switch x := v.(type) {
	case *KerasTensor:
		if x.call == nil && x != w.g.input {
			return nil, errors.New("a second model input")
		}
		return w.ref(x), nil
	case []*KerasTensor:
		out := make([]any, len(x))
		for i, t := range x {
			r, err := w.serialize(t)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := w.serialize(e)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case *Constant:
		return x.config(), nil
	case Slice:
		return x.config(), nil
	case ellipsis:
		return map[string]any{"class_name": "__ellipsis__", "config": map[string]any{}}, nil
	case newAxis:
		return nil, nil
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			r, err := w.serialize(e)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	}
	return v, nil
}

// floatArg is a float argument of an operation, written with a decimal
// point even when integral (2.0), so that Python reads a float as Go's
// caller meant, not the int 2 encoding/json would write.
type floatArg float64

func (f floatArg) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(float64(f))
	if err == nil && !bytes.ContainsAny(b, ".eE") {
		b = append(b, ".0"...)
	}
	return b, err
}

// pyScalars is a call's positional arguments with an operation's float
// scalars as floatArg.
func pyScalars(c *layerCall) []any {
	if _, ok := c.layer.(*Op); !ok {
		return c.args
	}
	out := make([]any, len(c.args))
	for i, a := range c.args {
		switch x := a.(type) {
		case float64:
			out[i] = floatArg(x)
		case float32:
			out[i] = floatArg(float64(x))
		default:
			out[i] = a
		}
	}
	return out
}

package keraslike

import (
	"fmt"
	"sort"

	"github.com/gotf/gotf/tfgo"
)

// KerasTensor is a symbolic tensor of a functional model, as in Keras: the
// model's input (Input), the output of a layer applied to KerasTensors
// (Apply), or of an operation on KerasTensors, Constants and numbers
// (ApplyOp, OpAdd, OpGetItem ...: Keras' x + y, x[:, 0], keras.ops.*). NewFunctional turns an input and an output into a Model whose
// connectivity is known, so that SaveKeras can write it as Keras'
// functional config; LoadKerasModel builds models this way.
type KerasTensor struct {
	input *InputSpec // the model input, or
	call  *layerCall // the call whose output this is

	// static shape and dtype, recorded when the model is built.
	shape []int64
	dtype tfgo.DataType
}

// layerCall is one call of a layer in a functional graph (a Keras node).
type layerCall struct {
	layer Layer
	// args are the positional arguments: *KerasTensor, []*KerasTensor, or
	// JSON values, and for an Op also *Constant, Slice and index markers;
	// kwargs likewise.
	args   []any
	kwargs map[string]any
	out    *KerasTensor
}

// listInput marks layers whose Keras call takes its inputs as one list
// (Add()([a, b])), so that functional configs say so.
type listInput interface{ takesList() }

// Input returns the input of a functional model (keras.Input(shape, dtype)).
func Input(spec InputSpec) *KerasTensor {
	s := spec
	s.Shape = append([]int64(nil), spec.Shape...)
	return &KerasTensor{input: &s}
}

// Apply calls layer on inputs in a functional graph: layer(x) for one
// input, layer(query, value) for MultiHeadAttention, Add()([a, b]) for
// merge layers.
func Apply(layer Layer, inputs ...*KerasTensor) *KerasTensor {
	var args []any
	if _, ok := layer.(listInput); ok {
		args = []any{append([]*KerasTensor(nil), inputs...)}
	} else {
		for _, x := range inputs {
			args = append(args, x)
		}
	}
	return ApplyKw(layer, args, nil)
}

// ApplyKw calls layer with Keras' positional and keyword arguments, e.g.
// ApplyKw(mha, []any{x, x}, map[string]any{"use_causal_mask": true}).
// Arguments are KerasTensors, lists of them, or plain values; which ones
// a layer accepts is checked when the model is built.
func ApplyKw(layer Layer, args []any, kwargs map[string]any) *KerasTensor {
	c := &layerCall{layer: layer, args: args, kwargs: kwargs}
	c.out = &KerasTensor{call: c}
	return c.out
}

// functional is the known connectivity of a model (from NewFunctional).
type functional struct {
	input  *KerasTensor
	output *KerasTensor
	calls  []*layerCall // in execution order
	// operations are the layers and operations (Op) in Keras' order.
	operations []Layer
	// nodeIndex is each call's index among its layer's calls.
	nodeIndex map[*layerCall]int
}

// eachArg calls fn on each KerasTensor and Constant in an argument,
// depth-first, a map's entries in key order.
func eachArg(v any, fn func(leaf any)) {
	switch x := v.(type) {
	case *KerasTensor, *Constant:
		fn(x)
	case []*KerasTensor:
		for _, t := range x {
			fn(t)
		}
	case []any:
		for _, e := range x {
			eachArg(e, fn)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			eachArg(x[k], fn)
		}
	}
}

// tensorsOf lists the KerasTensors in an argument (depth-first).
func tensorsOf(v any, out []*KerasTensor) []*KerasTensor {
	eachArg(v, func(leaf any) {
		if t, ok := leaf.(*KerasTensor); ok {
			out = append(out, t)
		}
	})
	return out
}

func (c *layerCall) inputs() []*KerasTensor {
	var ts []*KerasTensor
	for _, a := range c.args {
		ts = tensorsOf(a, ts)
	}
	return tensorsOf(c.kwargs, ts)
}

// NewFunctional returns keras.Model(input, output, name=name): a model of
// the layers between them, in Keras' order (by depth from the input, as
// keras.Model orders model.layers).
func NewFunctional(name string, input, output *KerasTensor) (*Model, error) {
	if input == nil || input.input == nil {
		return nil, fmt.Errorf("model %q: the input must come from keraslike.Input", name)
	}
	g, layers, err := mapGraph(input, output)
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", name, err)
	}
	m := NewModel(name, *input.input, layers, nil)
	m.apply = func(ctx *Context, x tfgo.Output) tfgo.Output {
		return g.forward(ctx, x, func(l Layer, y tfgo.Output) { m.shapes[l.Name()] = staticShape(y) })
	}
	m.graph = g
	return m, nil
}

// mapGraph orders a graph's calls and layers as keras.src.ops.function.map_graph does.
func mapGraph(input, output *KerasTensor) (*functional, []Layer, error) {
	g := &functional{input: input, output: output, nodeIndex: map[*layerCall]int{}}
	finished := map[*layerCall]bool{}
	inProgress := map[*layerCall]bool{}
	var order []*layerCall // inputs to outputs
	layerIndex := map[Layer]int{}
	var visit func(t *KerasTensor) error
	visit = func(t *KerasTensor) error {
		if t == nil {
			return fmt.Errorf("a nil KerasTensor")
		}
		if t.input != nil {
			if t != input {
				return fmt.Errorf("graph disconnected: a second keraslike.Input (only one input is supported)")
			}
			return nil
		}
		c := t.call
		if c == nil || c.layer == nil {
			return fmt.Errorf("a KerasTensor that is neither the input nor a layer's output")
		}
		if finished[c] {
			return nil
		}
		if inProgress[c] {
			return fmt.Errorf("layer %q is part of a cycle", c.layer.Name())
		}
		if _, ok := layerIndex[c.layer]; !ok {
			layerIndex[c.layer] = len(layerIndex)
		}
		inProgress[c] = true
		for _, x := range c.inputs() {
			if err := visit(x); err != nil {
				return err
			}
		}
		delete(inProgress, c)
		finished[c] = true
		order = append(order, c)
		return nil
	}
	if err := visit(output); err != nil {
		return nil, nil, err
	}
	if output.input != nil {
		return nil, nil, fmt.Errorf("the output is the input: no layers")
	}
	for _, c := range order {
		if o, ok := c.layer.(*Op); ok && o.err != nil {
			return nil, nil, fmt.Errorf("operation %q: %w", o.Name(), o.err)
		}
	}
	// Depths: the output's call is 0, each call's producers one more.
	depth := map[*layerCall]int{}
	layerDepth := map[Layer]int{}
	for i := len(order) - 1; i >= 0; i-- {
		c := order[i]
		d := max(depth[c], layerDepth[c.layer])
		layerDepth[c.layer], depth[c] = d, d
		for _, x := range c.inputs() {
			if x.call != nil {
				depth[x.call] = max(depth[x.call], d+1)
			}
		}
	}
	var layers []Layer
	for l := range layerDepth {
		layers = append(layers, l)
	}
	sort.SliceStable(layers, func(i, j int) bool {
		if layerDepth[layers[i]] != layerDepth[layers[j]] {
			return layerDepth[layers[i]] > layerDepth[layers[j]]
		}
		return layerIndex[layers[i]] < layerIndex[layers[j]]
	})
	seen := map[string]Layer{}
	for _, l := range layers {
		if o, ok := seen[l.Name()]; ok && o != l {
			return nil, nil, fmt.Errorf("two layers are named %q (layer names must be unique in a model)", l.Name())
		}
		seen[l.Name()] = l
	}
	// Keras' config lists operations with the layers; model.layers, and
	// so the weights files, leave them out.
	g.operations = layers
	layers = nil
	for _, l := range g.operations {
		if _, isOp := l.(*Op); !isOp {
			layers = append(layers, l)
		}
	}
	g.calls = order
	count := map[Layer]int{}
	for _, c := range order {
		g.nodeIndex[c] = count[c.layer]
		count[c.layer]++
	}
	return g, layers, nil
}

// forward runs the graph (the Model's apply function); seen, if not nil,
// sees each call's output (for Summary's shapes).
func (g *functional) forward(ctx *Context, x tfgo.Output, seen func(Layer, tfgo.Output)) tfgo.Output {
	vals := map[*KerasTensor]tfgo.Output{g.input: x}
	record := func(t *KerasTensor, o tfgo.Output) {
		vals[t] = o
		if o.Op != nil {
			t.shape, t.dtype = staticShape(o), o.DataType()
		}
	}
	record(g.input, x)
	for _, c := range g.calls {
		y := invoke(ctx, c, vals)
		if ctx.Scope.Err() != nil || y.Op == nil {
			return tfgo.Output{}
		}
		record(c.out, y)
		if seen != nil {
			seen(c.layer, y)
		}
	}
	return vals[g.output]
}

// invoke calls a layer as a functional node says.
func invoke(ctx *Context, c *layerCall, vals map[*KerasTensor]tfgo.Output) tfgo.Output {
	if o, ok := c.layer.(*Op); ok {
		// An operation takes constants, numbers and indices beside tensors.
		args := make([]any, len(c.args))
		for i, a := range c.args {
			args[i] = resolve(a, vals)
		}
		kw := map[string]any{}
		for k, v := range c.kwargs {
			kw[k] = resolve(v, vals)
		}
		return o.apply(ctx, args, kw)
	}
	// A constant argument (a NumPy array or eager tensor Keras wrote into
	// the node, e.g. a hand-made attention_mask) is a Const of its dtype.
	var cs *tfgo.Scope
	constant := func(k *Constant) tfgo.Output {
		if cs == nil {
			cs = ctx.Scope.SubScope(c.layer.Name() + "_constants")
		}
		return k.output(cs, k.dtype)
	}
	var args []tfgo.Output
	for i, a := range c.args {
		var outs []tfgo.Output
		eachArg(a, func(leaf any) {
			if t, ok := leaf.(*KerasTensor); ok {
				outs = append(outs, vals[t])
			} else {
				outs = append(outs, constant(leaf.(*Constant)))
			}
		})
		if len(outs) == 0 {
			ctx.Fail(c.layer, "positional argument %d (%s) is not a tensor", i, excerpt(a))
			return tfgo.Output{}
		}
		args = append(args, outs...)
	}
	kw := map[string]any{}
	for k, v := range c.kwargs {
		switch x := v.(type) {
		case *KerasTensor:
			kw[k] = vals[x]
		case *Constant:
			kw[k] = constant(x)
		case nil:
		default:
			kw[k] = v
		}
	}
	delete(kw, "training") // the model's pass decides
	if l, ok := c.layer.(KerasCallLayer); ok {
		return ctx.call(l, func(cc *Context) tfgo.Output { return l.CallKeras(cc, args, kw) })
	}
	if !checkKwargs(ctx, c.layer, kw) {
		return tfgo.Output{}
	}
	return callLayer(ctx, c.layer, args...)
}

// resolve is a call argument with its KerasTensors replaced by their values.
func resolve(v any, vals map[*KerasTensor]tfgo.Output) any {
	switch x := v.(type) {
	case *KerasTensor:
		return vals[x]
	case []*KerasTensor:
		out := make([]any, len(x))
		for i, t := range x {
			out[i] = vals[t]
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = resolve(e, vals)
		}
		return out
	}
	return v
}

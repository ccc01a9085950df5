package keraslike

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/gotf/gotf/tfgo"
)

// Operation nodes of functional graphs. Keras 3 records what a model's
// code does to KerasTensors besides calling layers — x + y, x * 0.5,
// keras.ops.reshape, x[:, 0], keras.ops.einsum — as operations
// (keras.src.ops classes such as Add, Multiply, GetItem) in the model's
// config, beside its layers, with constant operands inline. Op is the Go
// side of one such operation: built from the same config, computing what
// the keras.ops function computes on TensorFlow, written back as Keras
// writes it. Ops have no weights and are not among a model's Layers, as
// Keras leaves them out of model.layers and of the weights files.

// Op is a Keras operation node (a keras.src.ops class) of a functional
// model. ApplyOp and the Op helpers (OpAdd, OpGetItem ...) make and call
// one; LoadKerasModel makes them from a file's config.
type Op struct {
	Base
	def *opDef
	// config is the operation's constructor arguments as Keras'
	// get_config writes them (name excluded), checked by def.
	config map[string]any
	err    error // why the class cannot be made (ApplyOp), reported by Build
}

// opDef is one supported Keras operation class.
type opDef struct {
	module string // where Keras defines the class
	// args names the call's arguments, for keyword arguments; variadic
	// takes all positional ones as one list (einsum's operands).
	args     []string
	variadic bool
	// params are the constructor's arguments beside name, with the
	// default Keras writes, and check validates one value from a file.
	params map[string]opParam
	call   func(c *opCall) tfgo.Output
}

// opParam is one constructor argument of an operation.
type opParam struct {
	def   any
	check func(v any) bool
}

// opCall is one call of an operation while the graph is built.
type opCall struct {
	ctx  *Context
	s    *tfgo.Scope
	op   *Op
	args map[string]any // tfgo.Output, *Constant, scalars, lists
}

// NewOp returns the Keras operation className (a keras.src.ops class:
// "Add", "Reshape", "GetItem" ...) made from its constructor arguments
// (config without name: Reshape's {"newshape": [-1, 8]}), named name or,
// for "", as Keras names it ("add", "add_1" ...).
func NewOp(className, name string, config map[string]any) (*Op, error) {
	d := opTable[className]
	if d == nil {
		return nil, fmt.Errorf("operation %s is not supported (supported: %s)", quoted(className), strings.Join(opNames(), ", "))
	}
	c := map[string]any{}
	for k, p := range d.params {
		c[k] = p.def
	}
	// Go values (ints, []int) as JSON decodes them, the one form the
	// checks and the call read.
	if b, err := json.Marshal(config); err != nil {
		return nil, fmt.Errorf("operation %s: %w", className, err)
	} else if err := json.Unmarshal(b, &config); err != nil {
		return nil, fmt.Errorf("operation %s: %w", className, err)
	}
	for k, v := range config {
		p, ok := d.params[k]
		if !ok {
			return nil, fmt.Errorf("operation %s: %s=%s is not supported (keraslike does not implement this argument)", className, excerpt(k), excerpt(v))
		}
		if !p.check(v) {
			return nil, fmt.Errorf("operation %s: %s=%s is not supported", className, excerpt(k), excerpt(v))
		}
		c[k] = v
	}
	return &Op{Base: NewBase(className, name), def: d, config: c}, nil
}

// ApplyOp calls the Keras operation className on args in a functional
// graph: KerasTensors, Constants, Go numbers (Python scalars, which take
// the other operand's dtype as in Keras), and the index of a GetItem. A
// class or argument that is not supported is an error of the model's
// Build (or of NewFunctional for the class).
func ApplyOp(className string, config map[string]any, args ...any) *KerasTensor {
	o, err := NewOp(className, "", config)
	if err != nil {
		o = &Op{Base: NewBase(className, ""), err: err}
	}
	return ApplyKw(o, args, nil)
}

// OpAdd is x + y (keras.ops.add); OpSubtract, OpMultiply and OpDivide
// likewise. x and y are KerasTensors, Constants or numbers.
func OpAdd(x, y any) *KerasTensor      { return ApplyOp("Add", nil, x, y) }
func OpSubtract(x, y any) *KerasTensor { return ApplyOp("Subtract", nil, x, y) }
func OpMultiply(x, y any) *KerasTensor { return ApplyOp("Multiply", nil, x, y) }
func OpDivide(x, y any) *KerasTensor   { return ApplyOp("TrueDivide", nil, x, y) }

// OpMatmul is keras.ops.matmul(x, y).
func OpMatmul(x, y any) *KerasTensor { return ApplyOp("Matmul", nil, x, y) }

// OpReshape is keras.ops.reshape(x, shape): shape includes the batch
// dimension, -1 for the one inferred.
func OpReshape(x *KerasTensor, shape ...int) *KerasTensor {
	return ApplyOp("Reshape", map[string]any{"newshape": intsAny(shape)}, x)
}

// OpTranspose is keras.ops.transpose(x, axes); no axes reverse them.
func OpTranspose(x *KerasTensor, axes ...int) *KerasTensor {
	var a any
	if axes != nil {
		a = intsAny(axes)
	}
	return ApplyOp("Transpose", map[string]any{"axes": a}, x)
}

// OpGetItem is x[index...]: each index element an int, a Slice, Ellipsis
// or NewAxis (x[:, 0] is OpGetItem(x, Slice{}, 0)).
func OpGetItem(x *KerasTensor, index ...any) *KerasTensor {
	return ApplyOp("GetItem", nil, x, append([]any{}, index...))
}

// OpConcatenate is keras.ops.concatenate(xs, axis).
func OpConcatenate(axis int, xs ...*KerasTensor) *KerasTensor {
	return ApplyOp("Concatenate", map[string]any{"axis": axis}, append([]*KerasTensor(nil), xs...))
}

// OpEinsum is keras.ops.einsum(subscripts, operands...).
func OpEinsum(subscripts string, operands ...any) *KerasTensor {
	return ApplyOp("Einsum", map[string]any{"subscripts": subscripts}, operands...)
}

// OpWhere is keras.ops.where(condition, x, y).
func OpWhere(condition, x, y any) *KerasTensor { return ApplyOp("Where", nil, condition, x, y) }

// OpCast is keras.ops.cast(x, dtype).
func OpCast(x *KerasTensor, dtype tfgo.DataType) *KerasTensor {
	return ApplyOp("Cast", map[string]any{"dtype": dtype.String()}, x)
}

func intsAny(v []int) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

// Config is the operation's get_config: its name and constructor arguments.
func (o *Op) Config() map[string]any {
	c := map[string]any{"name": o.name}
	for k, v := range o.config {
		c[k] = v
	}
	return c
}

// module is where Keras defines the operation's class.
func (o *Op) module() string {
	if o.def == nil {
		return "keras.src.ops"
	}
	return o.def.module
}

// Call applies the operation to tensors as its positional arguments.
func (o *Op) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	args := make([]any, len(inputs))
	for i, x := range inputs {
		args[i] = x
	}
	return o.apply(ctx, args, nil)
}

// apply calls the operation with its arguments, tensors as tfgo.Output.
func (o *Op) apply(ctx *Context, args []any, kwargs map[string]any) tfgo.Output {
	if !ctx.usable() {
		return tfgo.Output{}
	}
	if o.err != nil || o.def == nil {
		err := o.err
		if err == nil {
			err = fmt.Errorf("not made by NewOp, ApplyOp or a Keras file: no operation to compute")
		}
		ctx.Fail(o, "%v", err)
		return tfgo.Output{}
	}
	c := &opCall{ctx: ctx, op: o, args: map[string]any{}}
	if o.def.variadic {
		c.args["operands"] = args
	} else {
		if len(args) > len(o.def.args) {
			ctx.Fail(o, "takes %d arguments (%s), got %d", len(o.def.args), strings.Join(o.def.args, ", "), len(args))
			return tfgo.Output{}
		}
		for i, a := range args {
			c.args[o.def.args[i]] = a
		}
	}
	for k, v := range kwargs {
		known := false
		for _, a := range o.def.args {
			known = known || a == k
		}
		if _, dup := c.args[k]; !known || dup {
			ctx.Fail(o, "keyword argument %s=%s is not supported", excerpt(k), excerpt(v))
			return tfgo.Output{}
		}
		c.args[k] = v
	}
	o.Build(ctx)
	c.s = ctx.Scope.SubScope(o.name)
	return o.def.call(c)
}

// fail records an error naming the operation.
func (c *opCall) fail(format string, args ...any) tfgo.Output {
	c.ctx.Fail(c.op, format, args...)
	return tfgo.Output{}
}

// tensor is argument name as a tensor of its own dtype (a number is a
// float32 or int32 scalar, as Keras converts a lone Python scalar).
func (c *opCall) tensor(name string) (tfgo.Output, bool) {
	xs, ok := c.operands(c.args[name])
	if !ok {
		return tfgo.Output{}, false
	}
	return xs[0], true
}

// operands converts arguments to tensors of one dtype, Keras' result_type
// of theirs: tensors and Constants keep their dtypes and promote (float32
// and float64 give float64, an integer and a float the float); a Python
// scalar (a Go int or float, as decodeConfig keeps Python's 2 and 2.0
// apart) is weak, taking the others' dtype unless it is a float among
// integers (then float32).
func (c *opCall) operands(vals ...any) ([]tfgo.Output, bool) {
	var strong []tfgo.DataType
	weakFloat, weakInt := false, false
	vals = append([]any(nil), vals...)
	for i, v := range vals {
		if l, ok := v.([]any); ok {
			k, err := listConstant(l)
			if err != nil {
				c.fail("%v", err)
				return nil, false
			}
			vals[i], v = k, k
		}
		switch x := v.(type) {
		case tfgo.Output:
			if x.Op == nil {
				return nil, false
			}
			strong = append(strong, x.DataType())
		case *Constant:
			strong = append(strong, x.dtype)
		case float64, float32:
			weakFloat = true
		case int, int32, int64:
			weakInt = true
		case bool:
			strong = append(strong, tfgo.Bool)
		case nil:
			c.fail("a missing argument")
			return nil, false
		default:
			c.fail("argument %s is not a tensor, constant or number", excerpt(v))
			return nil, false
		}
	}
	dt := tfgo.DataType(0)
	for _, d := range strong {
		dt = promote(dt, d)
	}
	switch {
	case dt == 0 && weakFloat:
		dt = tfgo.Float
	case dt == 0:
		dt = tfgo.Int32
	case weakFloat && !isFloat(dt):
		dt = tfgo.Float
	case weakInt && dt == tfgo.Bool:
		dt = tfgo.Int32
	}
	out := make([]tfgo.Output, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case tfgo.Output:
			out[i] = castTo(c.s, x, dt)
		case *Constant:
			out[i] = x.output(c.s, dt)
		case bool:
			out[i] = valuesConst(c.s, []float64{map[bool]float64{false: 0, true: 1}[x]}, nil, dt)
		default:
			out[i] = valuesConst(c.s, []float64{toFloat(x)}, nil, dt)
		}
	}
	return out, true
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	}
	return 0
}

// promote is Keras' result_type of two dtypes for the types models use:
// bool, then integers by width, then floats; float16 with bfloat16 is
// float32. 0 is no dtype yet.
func promote(a, b tfgo.DataType) tfgo.DataType {
	if a == 0 || a == b {
		return b
	}
	rank := func(d tfgo.DataType) int {
		switch d {
		case tfgo.Bool:
			return 0
		case tfgo.Uint8, tfgo.Int8:
			return 1
		case tfgo.Int16:
			return 2
		case tfgo.Int32:
			return 3
		case tfgo.Int64:
			return 4
		case tfgo.Half, tfgo.BFloat16:
			return 5
		case tfgo.Float:
			return 6
		}
		return 7
	}
	ra, rb := rank(a), rank(b)
	switch {
	case ra == rb && ra == 5:
		return tfgo.Float
	case ra == rb && ra == 1:
		return tfgo.Int16 // uint8 with int8
	case ra > rb:
		return a
	}
	return b
}

// float is x in a float dtype: integers and bool become float32, as
// Keras' float-valued ops (sqrt, exp, sigmoid, mean ...) make them.
func (c *opCall) float(x tfgo.Output) tfgo.Output {
	if isFloat(x.DataType()) {
		return x
	}
	return tfgo.Cast(c.s, x, tfgo.Float)
}

// param reads a checked constructor argument.
func (c *opCall) param(key string) any { return c.op.config[key] }

// intParam is a constructor argument checked as an integer.
func (c *opCall) intParam(key string) int { f, _ := c.param(key).(float64); return int(f) }

// axes is an axis argument (null, an int, or a list of ints) as a list;
// all is true for null.
func (c *opCall) axes(key string) (axes []int64, all bool) {
	switch v := c.param(key).(type) {
	case nil:
		return nil, true
	case float64:
		return []int64{int64(v)}, false
	case int:
		return []int64{int64(v)}, false
	case []any:
		for _, e := range v {
			axes = append(axes, int64(toFloat(e)))
		}
	}
	return axes, false
}

// rank is x's static rank, failing when unknown.
func (c *opCall) rank(x tfgo.Output) (int, bool) {
	sh := staticShape(x)
	if sh == nil {
		sh2, err := x.Shape()
		if err != nil || sh2.UnknownRank {
			c.fail("needs the static rank of its input, which is unknown")
			return 0, false
		}
	}
	return len(sh), true
}

// opNames lists the supported operation classes.
func opNames() []string {
	names := make([]string, 0, len(opTable))
	for k := range opTable {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// isOpEntry reports whether a functional config's layer entry is an
// operation: its module is one of keras.src.ops' (Keras 3 .keras files);
// legacy .h5 configs have no module, and there an operation is told from
// a layer of the same class name (Add, Concatenate, Softmax) by its config,
// which has no trainable key, as every layer's has.
func isOpEntry(e map[string]any) bool {
	module, _ := e["module"].(string)
	class, _ := e["class_name"].(string)
	if strings.HasPrefix(module, "keras.src.ops.") || module == "keras.src.ops" {
		return true
	}
	if module != "" || opTable[class] == nil {
		return false
	}
	c, _ := e["config"].(map[string]any)
	_, trainable := c["trainable"]
	return c != nil && !trainable
}

// opFromEntry makes the operation of a config's layer entry.
func opFromEntry(e map[string]any, spec layerSpec) (*Op, error) {
	c, _ := e["config"].(map[string]any)
	if c == nil {
		return nil, fmt.Errorf("%s: no config", spec)
	}
	if _, ok := opTable[spec.className]; !ok {
		return nil, fmt.Errorf("%s: operation %s is not supported (supported: %s)", spec, quoted(spec.className), strings.Join(opNames(), ", "))
	}
	args := map[string]any{}
	for k, v := range c {
		if k != "name" {
			args[k] = v
		}
	}
	o, err := NewOp(spec.className, spec.name, args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	return o, nil
}

package keraslike

import (
	"errors"
	"fmt"
	"math"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/tfgo"
)

// maxConstantElements bounds one constant operand read from a config (a
// position table of 2048 x 512 is a million): the value is counted from the
// JSON's nesting before any of it is copied.
const maxConstantElements = 1 << 20

// Constant is a tensor computed while a functional model was built, an
// operand of one of its operations: Keras writes an eager tensor (a
// position table added to token embeddings, keras.ops.convert_to_tensor)
// as a "__tensor__" argument and a NumPy array as "__numpy__", with its
// value and dtype. Unlike a Python scalar, it keeps its dtype in Keras'
// type promotion (float32 + a float64 array is float64).
type Constant struct {
	dtype  tfgo.DataType
	shape  []int64
	values []float64 // row-major; exact for float32, int32 and bool
	numpy  bool      // written back as "__numpy__"
	list   bool      // written back as a plain list
}

// NewConstant returns a constant operand of dtype (a float, integer or bool
// type) holding values in row-major order in shape ([] for a scalar), for
// the operations of a functional graph (ApplyOp, OpAdd ...). It is saved
// in .keras files as Keras' "__tensor__" argument.
func NewConstant(dtype tfgo.DataType, shape []int64, values []float64) (*Constant, error) {
	if !constantDType(dtype) {
		return nil, fmt.Errorf("constant of dtype %s: not a float, integer or bool type", dtype)
	}
	n, err := dtypes.NumElements(shape)
	if err != nil {
		return nil, fmt.Errorf("constant of shape %v: %w", shape, err)
	}
	if n != int64(len(values)) {
		return nil, fmt.Errorf("constant of shape %v has %d elements, got %d values", shape, n, len(values))
	}
	return &Constant{dtype: dtype, shape: append([]int64(nil), shape...), values: append([]float64(nil), values...)}, nil
}

// DType is the constant's dtype.
func (c *Constant) DType() tfgo.DataType { return c.dtype }

// Shape is the constant's shape.
func (c *Constant) Shape() []int64 { return append([]int64(nil), c.shape...) }

// String names the constant without its values, which errors must not
// quote in full.
func (c *Constant) String() string { return fmt.Sprintf("constant %s%v", c.dtype, c.shape) }

func constantDType(dt tfgo.DataType) bool {
	switch dt {
	case tfgo.Float, tfgo.Double, tfgo.Half, tfgo.BFloat16, tfgo.Int8, tfgo.Int16, tfgo.Int32, tfgo.Int64, tfgo.Uint8, tfgo.Bool:
		return true
	}
	return false
}

// constantFromConfig reads a "__tensor__" or "__numpy__" argument: its
// shape is taken from the nesting of the value and checked (rank, count,
// rectangular) before the values are copied.
func constantFromConfig(class string, c map[string]any) (*Constant, error) {
	dtName, _ := c["dtype"].(string)
	dt, err := dtypes.Parse(dtName)
	if err != nil || !constantDType(dt) {
		return nil, fmt.Errorf("%s argument: dtype %s is not supported (a float, integer or bool type)", class, excerpt(c["dtype"]))
	}
	v := c["value"]
	var shape []int64
	for x := v; ; {
		l, ok := x.([]any)
		if !ok {
			break
		}
		if len(shape) == 8 {
			return nil, fmt.Errorf("%s argument: rank above 8", class)
		}
		shape = append(shape, int64(len(l)))
		if len(l) == 0 {
			break
		}
		x = l[0]
	}
	n := int64(1)
	for _, d := range shape {
		if n *= d; n > maxConstantElements {
			return nil, fmt.Errorf("%s argument of dtype %s: more than %d elements", class, dt, maxConstantElements)
		}
	}
	k := &Constant{dtype: dt, shape: shape, values: make([]float64, 0, n), numpy: class == "__numpy__"}
	var walk func(x any, depth int) error
	walk = func(x any, depth int) error {
		if depth == len(shape) {
			switch e := x.(type) {
			case float64:
				k.values = append(k.values, e)
			case int:
				k.values = append(k.values, float64(e))
			case bool:
				k.values = append(k.values, map[bool]float64{false: 0, true: 1}[e])
			default:
				return fmt.Errorf("%s argument: element %s is not a number", class, excerpt(x))
			}
			return nil
		}
		l, ok := x.([]any)
		if !ok || int64(len(l)) != shape[depth] {
			return fmt.Errorf("%s argument: not a rectangular array of shape %v", class, shape)
		}
		for _, e := range l {
			if err := walk(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(v, 0); err != nil {
		return nil, err
	}
	return k, nil
}

// listConstant is a Python list argument of an operation ([0, 2]) as
// keras.ops.convert_to_tensor makes it: int32 when all its numbers are
// ints, else float32.
func listConstant(l []any) (*Constant, error) {
	dt := "int32"
	var scan func(v any, depth int)
	scan = func(v any, depth int) {
		switch x := v.(type) {
		case []any:
			if depth < 8 {
				for _, e := range x {
					scan(e, depth+1)
				}
			}
		case float64, float32:
			dt = "float32"
		}
	}
	scan(l, 0)
	k, err := constantFromConfig("list", map[string]any{"value": l, "dtype": dt})
	if err != nil {
		return nil, err
	}
	// Written back as the list it was.
	k.list = true
	return k, nil
}

// config is the constant as Keras serializes it.
func (c *Constant) config() any {
	class := "__tensor__"
	if c.numpy {
		class = "__numpy__"
	}
	if c.list {
		return c.nested()
	}
	return map[string]any{"class_name": class, "config": map[string]any{"value": c.nested(), "dtype": c.dtype.String()}}
}

// nested is the constant's values as nested lists.
func (c *Constant) nested() any {
	elem := func(f float64) any {
		switch {
		case c.dtype == tfgo.Bool:
			return f != 0
		case isFloat(c.dtype):
			return floatArg(f)
		}
		return int64(f)
	}
	var nest func(depth int, vals []float64) any
	nest = func(depth int, vals []float64) any {
		if depth == len(c.shape) {
			return elem(vals[0])
		}
		out := make([]any, c.shape[depth])
		stride := 1
		for _, d := range c.shape[depth+1:] {
			stride *= int(d)
		}
		for i := range out {
			out[i] = nest(depth+1, vals[i*stride:])
		}
		return out
	}
	return nest(0, c.values)
}

// output adds the constant to the graph in dtype dt (Keras' promotion may
// have widened it).
func (c *Constant) output(s *tfgo.Scope, dt tfgo.DataType) tfgo.Output {
	return valuesConst(s, c.values, c.shape, dt)
}

// valuesConst is a Const of values in shape and dtype dt; half types go
// through float32, which holds every value they can.
func valuesConst(s *tfgo.Scope, vals []float64, shape []int64, dt tfgo.DataType) tfgo.Output {
	var v any
	switch dt {
	case tfgo.Float, tfgo.Half, tfgo.BFloat16:
		x := make([]float32, len(vals))
		for i, f := range vals {
			x[i] = float32(f)
		}
		v = x
	case tfgo.Double:
		v = append([]float64(nil), vals...)
	case tfgo.Int32, tfgo.Int16, tfgo.Int8, tfgo.Uint8:
		x := make([]int32, len(vals))
		for i, f := range vals {
			x[i] = int32(f)
		}
		v = x
	case tfgo.Int64:
		x := make([]int64, len(vals))
		for i, f := range vals {
			x[i] = int64(f)
		}
		v = x
	case tfgo.Bool:
		x := make([]bool, len(vals))
		for i, f := range vals {
			x[i] = f != 0
		}
		v = x
	default:
		s.UpdateErr("Const", fmt.Errorf("a constant of dtype %s", dt))
		return tfgo.Output{}
	}
	out := tfgo.Const(s, v)
	out = castTo(s, out, dt)
	if len(shape) == 1 {
		return out
	}
	return tfgo.Reshape(s, out, tfgo.Const(s, append([]int64{}, shape...)))
}

// Slice is Python's start:stop:step in an index of OpGetItem (x[:, 1:3]);
// a nil bound is an omitted one. Keras writes it as a "__slice__".
type Slice struct{ Start, Stop, Step *int }

// Bound is a slice bound: Slice{Start: Bound(1), Stop: Bound(3)} is 1:3.
func Bound(i int) *int { return &i }

// ellipsis is Python's ... in an index; NewAxis (Python's None) adds a
// dimension of 1.
type ellipsis struct{}

type newAxis struct{}

var (
	// Ellipsis is ... in an index of OpGetItem (x[..., 0]).
	Ellipsis any = ellipsis{}
	// NewAxis is None in an index of OpGetItem (x[:, None]).
	NewAxis any = newAxis{}
)

// sliceFromConfig reads a "__slice__" argument.
func sliceFromConfig(c map[string]any) (Slice, error) {
	var s Slice
	for _, f := range []struct {
		key string
		p   **int
	}{{"start", &s.Start}, {"stop", &s.Stop}, {"step", &s.Step}} {
		v := c[f.key]
		if v == nil {
			continue
		}
		x, ok := v.(float64)
		if !ok || x != math.Trunc(x) || math.Abs(x) > 1<<40 {
			return s, fmt.Errorf("__slice__ %s: want an integer or null, got %s", f.key, excerpt(v))
		}
		i := int(x)
		*f.p = &i
	}
	if s.Step != nil && *s.Step == 0 {
		return s, errors.New("__slice__ step: 0")
	}
	return s, nil
}

func (s Slice) config() map[string]any {
	b := func(p *int) any {
		if p == nil {
			return nil
		}
		return *p
	}
	return map[string]any{"class_name": "__slice__", "config": map[string]any{"start": b(s.Start), "stop": b(s.Stop), "step": b(s.Step)}}
}

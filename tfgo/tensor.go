package tfgo

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/dtypes/half"
)

// Go element types and the dtypes they map to. A Go string holds any bytes,
// so string tensors are Go strings; []byte is a uint8 vector.
var goTypes = map[reflect.Type]DataType{
	reflect.TypeOf(float32(0)):       Float,
	reflect.TypeOf(float64(0)):       Double,
	reflect.TypeOf(int8(0)):          Int8,
	reflect.TypeOf(int16(0)):         Int16,
	reflect.TypeOf(int32(0)):         Int32,
	reflect.TypeOf(int64(0)):         Int64,
	reflect.TypeOf(uint8(0)):         Uint8,
	reflect.TypeOf(uint16(0)):        Uint16,
	reflect.TypeOf(uint32(0)):        Uint32,
	reflect.TypeOf(uint64(0)):        Uint64,
	reflect.TypeOf(false):            Bool,
	reflect.TypeOf(complex64(0)):     Complex64,
	reflect.TypeOf(complex128(0)):    Complex128,
	reflect.TypeOf(half.Float16(0)):  Half,
	reflect.TypeOf(half.BFloat16(0)): BFloat16,
	reflect.TypeOf(""):               String,
}

func elemType(dt DataType) (reflect.Type, bool) {
	for t, d := range goTypes {
		if d == dt {
			return t, true
		}
	}
	return nil, false
}

// NewTensor converts a Go value to a tensor: a scalar, or a (nested,
// rectangular) slice or array of float32, float64, Float16, BFloat16, the
// sized ints and uints, bool, complex64/128, or string for string tensors. Numeric data is copied once, straight into TensorFlow's buffer.
func NewTensor(value any) (*Tensor, error) {
	if t, ok := value.(*Tensor); ok {
		return t, nil
	}
	v := reflect.ValueOf(value)
	if !v.IsValid() {
		return nil, fmt.Errorf("NewTensor: nil value")
	}
	shape, et, err := shapeOf(v)
	if err != nil {
		return nil, err
	}
	dt, ok := goTypes[et]
	if !ok {
		return nil, fmt.Errorf("NewTensor: unsupported element type %s", et)
	}
	n := numElements(shape)
	if dt == String {
		strs := make([][]byte, 0, n)
		if n > 0 {
			walk(v, len(shape), func(leaf reflect.Value) { strs = append(strs, []byte(leaf.String())) })
		}
		return NewStringTensor(shape, strs)
	}
	t, err := AllocateTensor(dt, shape)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		// A slice of empty arrays may be of any length: walking its rows
		// would take as long as the length says, for nothing to copy.
		return t, nil
	}
	buf := t.Data()
	size := dt.Size()
	off := 0
	if len(shape) == 0 {
		copyElems(buf, v, 1, size)
		return t, nil
	}
	walk(v, len(shape)-1, func(row reflect.Value) {
		n := row.Len()
		copyElems(buf[off:], row, n, size)
		off += n * size
	})
	return t, nil
}

// copyElems copies n elements of v (a scalar when n == 1 and v is not a
// slice or array) into dst as raw little-endian bytes.
func copyElems(dst []byte, v reflect.Value, n, size int) {
	switch v.Kind() {
	case reflect.Slice:
		if n > 0 {
			copy(dst, unsafe.Slice((*byte)(v.UnsafePointer()), n*size))
		}
	case reflect.Array:
		for i := 0; i < n; i++ {
			copyElems(dst[i*size:], v.Index(i), 1, size)
		}
	default:
		p := reflect.New(v.Type())
		p.Elem().Set(v)
		copy(dst, unsafe.Slice((*byte)(p.UnsafePointer()), size))
	}
}

// walk calls fn on every value at the given depth of nested slices/arrays.
func walk(v reflect.Value, depth int, fn func(reflect.Value)) {
	if depth == 0 {
		fn(v)
		return
	}
	for i := 0; i < v.Len(); i++ {
		walk(v.Index(i), depth-1, fn)
	}
}

// shapeOf returns the shape and element type of a nested slice, checking
// that it is rectangular.
func shapeOf(v reflect.Value) ([]int64, reflect.Type, error) {
	var shape []int64
	t, cur := v.Type(), v
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		shape = append(shape, int64(cur.Len()))
		t = t.Elem()
		if cur.Len() > 0 {
			cur = cur.Index(0)
		} else {
			cur = reflect.Zero(t)
		}
	}
	if _, err := dtypes.NumElements(shape); err != nil {
		return nil, nil, fmt.Errorf("NewTensor: %w", err)
	}
	if err := checkRect(v, shape, 0); err != nil {
		return nil, nil, err
	}
	return shape, t, nil
}

func checkRect(v reflect.Value, shape []int64, d int) error {
	if d == len(shape) {
		return nil
	}
	if int64(v.Len()) != shape[d] {
		return fmt.Errorf("NewTensor: ragged slice: dimension %d has lengths %d and %d", d, shape[d], v.Len())
	}
	if !hasSlice(v.Type().Elem(), len(shape)-d-1) {
		// Nested arrays are rectangular by their type: not looking at
		// their elements keeps a slice of zero-size arrays, which can be
		// of any length, from taking as long as that length.
		return nil
	}
	for i := 0; i < v.Len(); i++ {
		if err := checkRect(v.Index(i), shape, d+1); err != nil {
			return err
		}
	}
	return nil
}

// hasSlice reports whether the depth levels of nesting of t hold a slice.
func hasSlice(t reflect.Type, depth int) bool {
	for ; depth > 0; depth-- {
		if t.Kind() == reflect.Slice {
			return true
		}
		t = t.Elem()
	}
	return false
}

func numElements(shape []int64) int64 {
	n, _ := dtypes.NumElements(shape) // shapes of Go values and tensors: valid
	return n
}

// maxEmptySlices bounds the nested slices Value makes for a tensor without
// elements, whose outer dimensions may be of any size: [1<<40, 0] would
// otherwise ask for 2^40 slice headers (24 TiB) to say "nothing".
const maxEmptySlices = 1 << 20

// Value converts a tensor to nested Go slices of its element type, or a
// scalar for a rank-0 tensor.
func Value(t *Tensor) (any, error) {
	if t.Closed() {
		return nil, fmt.Errorf("Value: tensor is closed")
	}
	shape := t.Shape()
	if t.NumElements() == 0 && len(shape) > 1 {
		// With elements, every nested slice holds at least one, so there
		// are fewer slices than elements; without, only the dimensions
		// before the first zero bound them.
		slices, level := int64(0), int64(1)
		for _, d := range shape[:len(shape)-1] {
			if d == 0 {
				break
			}
			if d > maxEmptySlices || level > maxEmptySlices/d {
				return nil, fmt.Errorf("Value: a %s tensor of shape %v has no elements but would need over %d nested slices", t.DataType(), shape, maxEmptySlices)
			}
			level *= d
			slices += level
		}
		if slices > maxEmptySlices {
			return nil, fmt.Errorf("Value: a %s tensor of shape %v has no elements but would need over %d nested slices", t.DataType(), shape, maxEmptySlices)
		}
	}
	if t.DataType() == String {
		strs, err := t.Strings()
		if err != nil {
			return nil, err
		}
		flat := make([]string, len(strs))
		for i, b := range strs {
			flat[i] = string(b)
		}
		return reshape(reflect.ValueOf(flat), shape), nil
	}
	et, ok := elemType(t.DataType())
	if !ok {
		return nil, fmt.Errorf("Value: unsupported dtype %s", t.DataType())
	}
	n := int(t.NumElements())
	flat := reflect.MakeSlice(reflect.SliceOf(et), n, n)
	if n > 0 {
		copy(unsafe.Slice((*byte)(flat.UnsafePointer()), n*t.DataType().Size()), t.Data())
	}
	return reshape(flat, shape), nil
}

// reshape turns a flat slice into nested slices (views of it) of the shape.
func reshape(flat reflect.Value, shape []int64) any {
	if len(shape) == 0 {
		return flat.Index(0).Interface()
	}
	// types[d] is the type of the slices at depth d; taken from the type,
	// not from a built slice, as an empty dimension builds none.
	types := make([]reflect.Type, len(shape))
	types[len(shape)-1] = flat.Type()
	for d := len(shape) - 2; d >= 0; d-- {
		types[d] = reflect.SliceOf(types[d+1])
	}
	var build func(off, d int) reflect.Value
	build = func(off, d int) reflect.Value {
		n := int(shape[d])
		if d == len(shape)-1 {
			return flat.Slice(off, off+n)
		}
		stride := int(numElements(shape[d+1:]))
		out := reflect.MakeSlice(types[d], n, n)
		for i := 0; i < n; i++ {
			out.Index(i).Set(build(off+i*stride, d+1))
		}
		return out
	}
	return build(0, 0).Interface()
}

// Float32s returns a copy of a float32 tensor's elements, flat.
func Float32s(t *Tensor) ([]float32, error) { return flatAs[float32](t, Float) }

// Float64s returns a copy of a float64 tensor's elements, flat.
func Float64s(t *Tensor) ([]float64, error) { return flatAs[float64](t, Double) }

// Int32s returns a copy of an int32 tensor's elements, flat.
func Int32s(t *Tensor) ([]int32, error) { return flatAs[int32](t, Int32) }

// Int64s returns a copy of an int64 tensor's elements, flat.
func Int64s(t *Tensor) ([]int64, error) { return flatAs[int64](t, Int64) }

func flatAs[T any](t *Tensor, want DataType) ([]T, error) {
	// A closed tensor keeps its dtype and shape but not its data: reading it
	// would return zeros, not an error.
	if t.Closed() {
		return nil, fmt.Errorf("%s tensor is nil or closed", want)
	}
	if t.DataType() != want {
		return nil, fmt.Errorf("tensor is %s, not %s", t.DataType(), want)
	}
	n := int(t.NumElements())
	out := make([]T, n)
	if n > 0 {
		var zero T
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), n*int(unsafe.Sizeof(zero))), t.Data())
	}
	return out, nil
}

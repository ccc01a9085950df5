package pyref

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Array is an n-dimensional array exchanged with Python.
//
// DType is one of "float16", "bfloat16", "float32", "float64", "int8",
// "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
// "complex64", "complex128" or "string". Shape lists the dimensions; an
// empty (or nil) Shape is a scalar.
//
// For every dtype but "string", Data holds the elements in row-major order,
// each in its little-endian byte representation (a bool is one byte, 0 or
// 1; float16 and bfloat16 are their raw 16-bit patterns), and Strings is
// nil. For "string", Strings holds the bytes of each element in row-major
// order and Data is nil. In Python a string array is a numpy object array of
// bytes.
type Array struct {
	DType   string   `json:"dtype"`
	Shape   []int64  `json:"shape"`
	Data    []byte   `json:"data,omitempty"`
	Strings [][]byte `json:"strings,omitempty"`
}

// itemSizes maps each supported non-string dtype to its element size in bytes.
var itemSizes = map[string]int{
	"float16":    2,
	"bfloat16":   2,
	"float32":    4,
	"float64":    8,
	"int8":       1,
	"int16":      2,
	"int32":      4,
	"int64":      8,
	"uint8":      1,
	"uint16":     2,
	"uint32":     4,
	"uint64":     8,
	"bool":       1,
	"complex64":  8,
	"complex128": 16,
}

// NewArray returns an array of the given dtype and shape whose elements are
// the raw little-endian row-major bytes in data. The array refers to data;
// it does not copy it.
func NewArray(dtype string, shape []int64, data []byte) *Array {
	return &Array{DType: dtype, Shape: shape, Data: data}
}

// Float32s returns a float32 array of the given shape holding v.
func Float32s(shape []int64, v []float32) *Array {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return NewArray("float32", shape, b)
}

// Float64s returns a float64 array of the given shape holding v.
func Float64s(shape []int64, v []float64) *Array {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return NewArray("float64", shape, b)
}

// Int32s returns an int32 array of the given shape holding v.
func Int32s(shape []int64, v []int32) *Array {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return NewArray("int32", shape, b)
}

// Int64s returns an int64 array of the given shape holding v.
func Int64s(shape []int64, v []int64) *Array {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return NewArray("int64", shape, b)
}

// Float32s returns the elements of a float32 array in row-major order.
func (a *Array) Float32s() ([]float32, error) {
	if err := a.check("float32"); err != nil {
		return nil, err
	}
	v := make([]float32, len(a.Data)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(a.Data[4*i:]))
	}
	return v, nil
}

// Float64s returns the elements of a float64 array in row-major order.
func (a *Array) Float64s() ([]float64, error) {
	if err := a.check("float64"); err != nil {
		return nil, err
	}
	v := make([]float64, len(a.Data)/8)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(a.Data[8*i:]))
	}
	return v, nil
}

// Int32s returns the elements of an int32 array in row-major order.
func (a *Array) Int32s() ([]int32, error) {
	if err := a.check("int32"); err != nil {
		return nil, err
	}
	v := make([]int32, len(a.Data)/4)
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(a.Data[4*i:]))
	}
	return v, nil
}

// Int64s returns the elements of an int64 array in row-major order.
func (a *Array) Int64s() ([]int64, error) {
	if err := a.check("int64"); err != nil {
		return nil, err
	}
	v := make([]int64, len(a.Data)/8)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64(a.Data[8*i:]))
	}
	return v, nil
}

// check reports an error unless a is a valid array of the given dtype.
func (a *Array) check(dtype string) error {
	if a == nil {
		return errors.New("pyref: nil array")
	}
	if a.DType != dtype {
		return fmt.Errorf("pyref: array has dtype %s, not %s", a.DType, dtype)
	}
	return a.validate()
}

// validate reports an error unless the dtype is supported and the data
// matches the shape.
func (a *Array) validate() error {
	if a == nil {
		return errors.New("pyref: nil array")
	}
	n := int64(1)
	for _, d := range a.Shape {
		if d < 0 {
			return fmt.Errorf("pyref: negative dimension in shape %v", a.Shape)
		}
		if d != 0 && n > math.MaxInt64/d {
			return fmt.Errorf("pyref: shape %v overflows", a.Shape)
		}
		n *= d
	}
	if a.DType == "string" {
		if len(a.Data) != 0 {
			return errors.New("pyref: string array has Data; use Strings")
		}
		if int64(len(a.Strings)) != n {
			return fmt.Errorf("pyref: string array of shape %v has %d elements, want %d",
				a.Shape, len(a.Strings), n)
		}
		return nil
	}
	size, ok := itemSizes[a.DType]
	if !ok {
		return fmt.Errorf("pyref: unsupported dtype %q", a.DType)
	}
	if len(a.Strings) != 0 {
		return fmt.Errorf("pyref: %s array has Strings; use Data", a.DType)
	}
	if n > math.MaxInt64/int64(size) {
		return fmt.Errorf("pyref: shape %v overflows", a.Shape)
	}
	if want := n * int64(size); int64(len(a.Data)) != want {
		return fmt.Errorf("pyref: %s array of shape %v has %d bytes of data, want %d",
			a.DType, a.Shape, len(a.Data), want)
	}
	return nil
}

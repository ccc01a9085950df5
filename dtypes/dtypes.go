// Package dtypes is TensorFlow's element types, in pure Go: the one
// DataType of the module, shared by the runtime binding (tfgo re-exports it)
// and by the pure file formats (savedmodel), so that a dtype read from a
// checkpoint is the dtype a tensor has, with no conversion between them.
// Its values are those of the DataType enum of TensorFlow's types.proto,
// which are also the C API's TF_DataType values.
//
// The Go element types of float16 and bfloat16 tensors are in package
// dtypes/half.
package dtypes

import (
	"fmt"
	"math"

	tpb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
)

// DataType is a tensor element type (tensorflow.DataType, TF_DataType).
type DataType int32

// The element types, named as TensorFlow's C API and Go binding name them;
// String gives Python's names ("float32", "bfloat16").
const (
	Float      DataType = 1
	Double     DataType = 2
	Int32      DataType = 3
	Uint8      DataType = 4
	Int16      DataType = 5
	Int8       DataType = 6
	String     DataType = 7
	Complex64  DataType = 8
	Int64      DataType = 9
	Bool       DataType = 10
	Qint8      DataType = 11
	Quint8     DataType = 12
	Qint32     DataType = 13
	BFloat16   DataType = 14
	Qint16     DataType = 15
	Quint16    DataType = 16
	Uint16     DataType = 17
	Complex128 DataType = 18
	Half       DataType = 19
	Resource   DataType = 20
	Variant    DataType = 21
	Uint32     DataType = 22
	Uint64     DataType = 23

	// Float8E5M2 and Float8E4M3FN are the 8-bit floats of ml_dtypes (no Go element type).
	Float8E5M2   DataType = 24
	Float8E4M3FN DataType = 25

	// Aliases with Python's names (float16 is Half: half.Float16 is its Go element type).
	Float32 = Float
	Float64 = Double
)

var names = map[DataType]string{
	Float: "float32", Double: "float64", Int32: "int32", Uint8: "uint8", Int16: "int16",
	Int8: "int8", String: "string", Complex64: "complex64", Int64: "int64", Bool: "bool",
	Qint8: "qint8", Quint8: "quint8", Qint32: "qint32", BFloat16: "bfloat16",
	Qint16: "qint16", Quint16: "quint16", Uint16: "uint16", Complex128: "complex128",
	Half: "float16", Resource: "resource", Variant: "variant", Uint32: "uint32", Uint64: "uint64",
	Float8E5M2: "float8_e5m2", Float8E4M3FN: "float8_e4m3fn",
}

// String returns Python's name for the type ("float32", "bfloat16", ...);
// a type without one is named as in types.proto ("DT_INT4").
func (t DataType) String() string {
	if s, ok := names[t]; ok {
		return s
	}
	if s, ok := tpb.DataType_name[int32(t)]; ok {
		return s
	}
	return fmt.Sprintf("DataType(%d)", int32(t))
}

// Parse maps Python's dtype names ("float32", "half", "bfloat16", ...) to a DataType.
func Parse(name string) (DataType, error) {
	for t, s := range names {
		if s == name {
			return t, nil
		}
	}
	switch name {
	case "float", "single":
		return Float, nil
	case "double":
		return Double, nil
	case "half":
		return Half, nil
	}
	return 0, fmt.Errorf("unknown dtype %q", name)
}

// Proto is t as the generated types.proto enum.
func (t DataType) Proto() tpb.DataType { return tpb.DataType(t) }

// FromProto is the DataType of a types.proto enum value.
func FromProto(p tpb.DataType) DataType { return DataType(p) }

// Size is the size in bytes of one element, or 0 for types without a fixed
// size in a tensor buffer (string, resource, variant, invalid values).
func (t DataType) Size() int {
	switch t {
	case Bool, Int8, Uint8, Qint8, Quint8, Float8E5M2, Float8E4M3FN:
		return 1
	case Int16, Uint16, Qint16, Quint16, Half, BFloat16:
		return 2
	case Int32, Uint32, Qint32, Float:
		return 4
	case Int64, Uint64, Double, Complex64:
		return 8
	case Complex128:
		return 16
	}
	return 0
}

// IsFloating reports whether t is a floating-point type (float16, bfloat16,
// float32, float64).
func (t DataType) IsFloating() bool {
	return t == Float || t == Double || t == Half || t == BFloat16
}

// NumElements returns the number of elements of a tensor of the given shape
// (1 for a scalar), or an error if a dimension is negative or the product
// overflows int64.
func NumElements(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("invalid shape %v: negative dimension", shape)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("invalid shape %v: too many elements", shape)
		}
		n *= d
	}
	return n, nil
}

// NumBytes returns the bytes of a tensor of t and shape in a tensor buffer,
// or an error if t has no fixed size, the shape is invalid, or the count
// overflows int64.
func NumBytes(t DataType, shape []int64) (int64, error) {
	size := t.Size()
	if size == 0 {
		return 0, fmt.Errorf("%s has no fixed element size", t)
	}
	n, err := NumElements(shape)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64/int64(size) {
		return 0, fmt.Errorf("invalid shape %v: %s tensor too large", shape, t)
	}
	return n * int64(size), nil
}

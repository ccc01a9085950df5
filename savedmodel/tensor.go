package savedmodel

import (
	"fmt"
	"math"

	"github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
)

// DataType is TensorFlow's dtype enum (tensorflow.DataType), as generated
// in graft's types_go_proto; use its constants, e.g.
// types_go_proto.DataType_DT_FLOAT.
type DataType = types_go_proto.DataType

// Tensor is a tensor held in Go memory in the layout a bundle stores it.
//
// DType is the element type and Shape the dimensions (nil or empty for a
// scalar). For every dtype but DT_STRING, Data holds the elements in
// row-major order, each in its little-endian byte representation (a bool is
// one byte, 0 or 1; DT_HALF and DT_BFLOAT16 are their raw 16-bit patterns;
// a complex number is its real part followed by its imaginary part), and
// Strings is nil. For DT_STRING, Strings holds the bytes of each element in
// row-major order (any bytes, including NUL) and Data is nil.
//
// Tensor has no dependency on the TensorFlow runtime; package cgo converts
// its own tensors to and from these bytes.
type Tensor struct {
	DType   DataType
	Shape   []int64
	Data    []byte
	Strings [][]byte
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

// DTypeSize returns the size in bytes of one element of dt and true for the
// dtypes a bundle stores as raw fixed-size elements; it returns 0 and false
// for DT_STRING and for dtypes this package does not support (DT_VARIANT,
// DT_RESOURCE, the 4-bit integer types, invalid values).
func DTypeSize(dt DataType) (int, bool) {
	switch dt {
	case types_go_proto.DataType_DT_BOOL,
		types_go_proto.DataType_DT_INT8, types_go_proto.DataType_DT_UINT8,
		types_go_proto.DataType_DT_QINT8, types_go_proto.DataType_DT_QUINT8,
		types_go_proto.DataType_DT_FLOAT8_E5M2, types_go_proto.DataType_DT_FLOAT8_E4M3FN:
		return 1, true
	case types_go_proto.DataType_DT_INT16, types_go_proto.DataType_DT_UINT16,
		types_go_proto.DataType_DT_QINT16, types_go_proto.DataType_DT_QUINT16,
		types_go_proto.DataType_DT_HALF, types_go_proto.DataType_DT_BFLOAT16:
		return 2, true
	case types_go_proto.DataType_DT_INT32, types_go_proto.DataType_DT_UINT32,
		types_go_proto.DataType_DT_QINT32, types_go_proto.DataType_DT_FLOAT:
		return 4, true
	case types_go_proto.DataType_DT_INT64, types_go_proto.DataType_DT_UINT64,
		types_go_proto.DataType_DT_DOUBLE, types_go_proto.DataType_DT_COMPLEX64:
		return 8, true
	case types_go_proto.DataType_DT_COMPLEX128:
		return 16, true
	}
	return 0, false
}

// supported reports whether a bundle entry of dtype dt can be read and
// written by this package.
func supported(dt DataType) bool {
	if dt == types_go_proto.DataType_DT_STRING {
		return true
	}
	_, ok := DTypeSize(dt)
	return ok
}

// check validates t: a supported dtype, a valid shape, and Data (or
// Strings) holding exactly the elements the shape calls for. It returns the
// number of elements.
func (t *Tensor) check() (int64, error) {
	if t == nil {
		return 0, fmt.Errorf("nil tensor")
	}
	n, err := NumElements(t.Shape)
	if err != nil {
		return 0, err
	}
	if t.DType == types_go_proto.DataType_DT_STRING {
		if t.Data != nil {
			return 0, fmt.Errorf("string tensor has Data set (its elements go in Strings)")
		}
		if int64(len(t.Strings)) != n {
			return 0, fmt.Errorf("string tensor of shape %v needs %d elements, Strings has %d", t.Shape, n, len(t.Strings))
		}
		return n, nil
	}
	size, ok := DTypeSize(t.DType)
	if !ok {
		return 0, fmt.Errorf("unsupported dtype %v", t.DType)
	}
	if t.Strings != nil {
		return 0, fmt.Errorf("%v tensor has Strings set", t.DType)
	}
	if n > math.MaxInt64/int64(size) || int64(len(t.Data)) != n*int64(size) {
		return 0, fmt.Errorf("%v tensor of shape %v needs %d bytes of Data, has %d", t.DType, t.Shape, n*int64(size), len(t.Data))
	}
	return n, nil
}

// Validate reports whether t is well formed: a supported dtype, a shape
// without negative dimensions, and exactly the Data bytes (or Strings
// elements) that its shape calls for.
func (t *Tensor) Validate() error {
	_, err := t.check()
	return err
}

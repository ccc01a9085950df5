package savedmodel

import (
	"fmt"
	"math"

	"github.com/gotf/gotf/dtypes"
)

// DataType is TensorFlow's element type: the module's one DataType (package
// dtypes), also what package tfgo's tensors use.
type DataType = dtypes.DataType

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

// supported reports whether a bundle entry of dtype dt can be read and
// written by this package.
func supported(dt DataType) bool {
	if dt == dtypes.String {
		return true
	}
	return dt.Size() > 0
}

// check validates t: a supported dtype, a valid shape, and Data (or
// Strings) holding exactly the elements the shape calls for. It returns the
// number of elements.
func (t *Tensor) check() (int64, error) {
	if t == nil {
		return 0, fmt.Errorf("nil tensor")
	}
	n, err := dtypes.NumElements(t.Shape)
	if err != nil {
		return 0, err
	}
	if t.DType == dtypes.String {
		if t.Data != nil {
			return 0, fmt.Errorf("string tensor has Data set (its elements go in Strings)")
		}
		if int64(len(t.Strings)) != n {
			return 0, fmt.Errorf("string tensor of shape %v needs %d elements, Strings has %d", t.Shape, n, len(t.Strings))
		}
		return n, nil
	}
	size := t.DType.Size()
	if size == 0 {
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

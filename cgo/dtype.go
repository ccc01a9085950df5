package cgo

// #include "tensorflow/c/c_api.h"
import "C"

import "fmt"

// DataType is a tensor element type (TF_DataType, the DataType enum of types.proto).
type DataType int

// The element types, named as in Python's tf.dtypes.
const (
	Float      DataType = C.TF_FLOAT
	Double     DataType = C.TF_DOUBLE
	Int32      DataType = C.TF_INT32
	Uint8      DataType = C.TF_UINT8
	Int16      DataType = C.TF_INT16
	Int8       DataType = C.TF_INT8
	String     DataType = C.TF_STRING
	Complex64  DataType = C.TF_COMPLEX64
	Int64      DataType = C.TF_INT64
	Bool       DataType = C.TF_BOOL
	Qint8      DataType = C.TF_QINT8
	Quint8     DataType = C.TF_QUINT8
	Qint32     DataType = C.TF_QINT32
	BFloat16   DataType = C.TF_BFLOAT16
	Qint16     DataType = C.TF_QINT16
	Quint16    DataType = C.TF_QUINT16
	Uint16     DataType = C.TF_UINT16
	Complex128 DataType = C.TF_COMPLEX128
	Half       DataType = C.TF_HALF
	Resource   DataType = C.TF_RESOURCE
	Variant    DataType = C.TF_VARIANT
	Uint32     DataType = C.TF_UINT32
	Uint64     DataType = C.TF_UINT64

	// Aliases with Python's names.
	Float32 = Float
	Float64 = Double
	Float16 = Half
)

var dtypeNames = map[DataType]string{
	Float: "float32", Double: "float64", Int32: "int32", Uint8: "uint8", Int16: "int16",
	Int8: "int8", String: "string", Complex64: "complex64", Int64: "int64", Bool: "bool",
	Qint8: "qint8", Quint8: "quint8", Qint32: "qint32", BFloat16: "bfloat16",
	Qint16: "qint16", Quint16: "quint16", Uint16: "uint16", Complex128: "complex128",
	Half: "float16", Resource: "resource", Variant: "variant", Uint32: "uint32", Uint64: "uint64",
}

// String returns Python's name for the type ("float32", "bfloat16", ...).
func (t DataType) String() string {
	if s, ok := dtypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("DataType(%d)", int(t))
}

// ParseDataType maps Python's dtype names ("float32", "half", "bfloat16"...) to a DataType.
func ParseDataType(name string) (DataType, error) {
	for t, s := range dtypeNames {
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

// Size is the size in bytes of one element, or 0 for types without a fixed
// size in a tensor buffer (string, resource, variant).
func (t DataType) Size() int {
	switch t {
	case String, Resource, Variant:
		return 0
	}
	return int(C.TF_DataTypeSize(C.TF_DataType(t)))
}

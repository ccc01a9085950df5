package cgo

import "github.com/gotf/gotf/dtypes"

// DataType is the module's one element type (package dtypes); its values
// are the C API's TF_DataType values.
type DataType = dtypes.DataType

// The element types the binding names (see package dtypes for all of them).
const (
	Float      = dtypes.Float
	Double     = dtypes.Double
	Int32      = dtypes.Int32
	Uint8      = dtypes.Uint8
	Int16      = dtypes.Int16
	Int8       = dtypes.Int8
	String     = dtypes.String
	Complex64  = dtypes.Complex64
	Int64      = dtypes.Int64
	Bool       = dtypes.Bool
	Qint8      = dtypes.Qint8
	Quint8     = dtypes.Quint8
	Qint32     = dtypes.Qint32
	BFloat16   = dtypes.BFloat16
	Qint16     = dtypes.Qint16
	Quint16    = dtypes.Quint16
	Uint16     = dtypes.Uint16
	Complex128 = dtypes.Complex128
	Half       = dtypes.Half
	Resource   = dtypes.Resource
	Variant    = dtypes.Variant
	Uint32     = dtypes.Uint32
	Uint64     = dtypes.Uint64
)

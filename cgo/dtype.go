package cgo

import "github.com/gotf/gotf/dtypes"

// DataType is the module's one element type (package dtypes); its values
// are the C API's TF_DataType values, so the binding converts with a cast.
type DataType = dtypes.DataType

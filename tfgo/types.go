package tfgo

import (
	"errors"
	"fmt"

	"github.com/gotf/gotf/cgo"
	"github.com/gotf/gotf/dtypes"
)

// The runtime's types under the names a user of tfgo writes. They are the
// binding's own types (aliases, not wrappers), so values pass between tfgo,
// keraslike and savedmodel/runner without conversion; only package cgo and
// tfgo itself import the binding.
type (
	// Tensor owns a TensorFlow tensor in host memory (TF_Tensor): Close it
	// when done; a finalizer is the safety net. NewTensor makes one from Go
	// values and Value converts it back.
	Tensor = cgo.Tensor
	// DataType is an element type: Float, Int32, BFloat16, ... (package
	// dtypes, shared with the pure file formats of package savedmodel).
	DataType = dtypes.DataType
	// Shape is a possibly partial tensor shape (-1: an unknown dimension).
	Shape = cgo.Shape
	// Operation is an operation of a graph.
	Operation = cgo.Operation
	// Graph is a TensorFlow graph (TF_Graph).
	Graph = cgo.Graph
	// Func names a graph function as a func-valued attr takes it.
	Func = cgo.Func
	// Error is an error of the runtime: its canonical Code, message and op.
	Error = cgo.Error
	// Code is a canonical error code (OK, InvalidArgument, NotFound, ...).
	Code = cgo.Code
	// Device is a device a session can place operations on.
	Device = cgo.Device
	// Function is a graph function (TF_Function), as DefineFunction makes.
	Function = cgo.Function
)

// The element types, with TensorFlow's C and Go names; DataType.String
// gives Python's ("float32", "float16", "bfloat16"). The Go element types of
// Half and BFloat16 tensors are half.Float16 and half.BFloat16.
const (
	Float      = dtypes.Float
	Double     = dtypes.Double
	Int8       = dtypes.Int8
	Int16      = dtypes.Int16
	Int32      = dtypes.Int32
	Int64      = dtypes.Int64
	Uint8      = dtypes.Uint8
	Uint16     = dtypes.Uint16
	Uint32     = dtypes.Uint32
	Uint64     = dtypes.Uint64
	Bool       = dtypes.Bool
	String     = dtypes.String
	Complex64  = dtypes.Complex64
	Complex128 = dtypes.Complex128
	Half       = dtypes.Half
	BFloat16   = dtypes.BFloat16
	Qint8      = dtypes.Qint8
	Quint8     = dtypes.Quint8
	Qint16     = dtypes.Qint16
	Quint16    = dtypes.Quint16
	Qint32     = dtypes.Qint32
	Resource   = dtypes.Resource
	Variant    = dtypes.Variant

	// Float32 and Float64 are Python's names of Float and Double.
	Float32 = dtypes.Float32
	Float64 = dtypes.Float64
)

// The canonical error codes of Error.Code.
const (
	OK                 = cgo.OK
	Cancelled          = cgo.Cancelled
	Unknown            = cgo.Unknown
	InvalidArgument    = cgo.InvalidArgument
	DeadlineExceeded   = cgo.DeadlineExceeded
	NotFound           = cgo.NotFound
	AlreadyExists      = cgo.AlreadyExists
	PermissionDenied   = cgo.PermissionDenied
	Unauthenticated    = cgo.Unauthenticated
	ResourceExhausted  = cgo.ResourceExhausted
	FailedPrecondition = cgo.FailedPrecondition
	Aborted            = cgo.Aborted
	OutOfRange         = cgo.OutOfRange
	Unimplemented      = cgo.Unimplemented
	Internal           = cgo.Internal
	Unavailable        = cgo.Unavailable
	DataLoss           = cgo.DataLoss
)

// MakeShape returns the shape with the given dimensions (-1 for unknown ones).
func MakeShape(dims ...int64) Shape { return cgo.MakeShape(dims...) }

// UnknownShape returns a shape of unknown rank.
func UnknownShape() Shape { return cgo.UnknownShape() }

// ParseDataType maps Python's dtype names ("float32", "half", "bfloat16", ...) to a DataType.
func ParseDataType(name string) (DataType, error) { return dtypes.Parse(name) }

// NewGraph returns an empty graph (NewScope makes one for you).
func NewGraph() *Graph { return cgo.NewGraph() }

// AllocateTensor returns an uninitialised tensor of a fixed-size dtype, to
// fill in place through its Data (one copy, no intermediate slice).
func AllocateTensor(dt DataType, dims []int64) (*Tensor, error) { return cgo.AllocateTensor(dt, dims) }

// NewTensorFromBytes returns a tensor of a fixed-size dtype holding a copy of
// data, the little-endian bytes of its elements in row-major order.
func NewTensorFromBytes(dt DataType, dims []int64, data []byte) (*Tensor, error) {
	return cgo.NewTensor(dt, dims, data)
}

// CloneTensor returns a new tensor equal to t. Resource and variant
// tensors are refused: their buffers hold C++ objects, which a copy of the
// bytes would not own.
func CloneTensor(t *Tensor) (*Tensor, error) {
	if t == nil {
		return nil, errors.New("tfgo: CloneTensor: nil tensor")
	}
	switch t.DataType() {
	case Resource, Variant:
		return nil, fmt.Errorf("tfgo: CloneTensor: a %s tensor holds C++ objects, not values to copy", t.DataType())
	case String:
		s, err := t.Strings()
		if err != nil {
			return nil, err
		}
		return NewStringTensor(t.Shape(), s)
	}
	return NewTensorFromBytes(t.DataType(), t.Shape(), t.Data())
}

// NewStringTensor returns a string tensor of arbitrary byte strings.
func NewStringTensor(dims []int64, values [][]byte) (*Tensor, error) {
	return cgo.NewStringTensor(dims, values)
}

// Version is the version of the linked TensorFlow runtime ("2.21.0").
func Version() string { return cgo.Version() }

// ShapeAttr is an optional argument to [ShapeOf].
type ShapeAttr func(optionalAttr)

// ShapeOutType sets the dtype of [ShapeOf]'s result (int32 or int64; default int32).
func ShapeOutType(value DataType) ShapeAttr { return genOpAttr("out_type", value) }

// ShapeOf is TensorFlow's Shape op (tf.shape): the dynamic shape of input
// as a 1-D tensor. It is not named Shape because that name is the shape type.
func ShapeOf(scope *Scope, input Output, optional ...ShapeAttr) Output {
	attrs := map[string]any{}
	for _, o := range optional {
		o(attrs)
	}
	return Out(scope.AddOperation(OpSpec{Type: "Shape", Input: []any{input}, Attrs: attrs}), 0)
}

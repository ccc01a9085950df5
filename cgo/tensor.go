package cgo

// #include <stdlib.h>
// #include <string.h>
// #include "tensorflow/c/c_api.h"
// #include "tensorflow/c/tf_tstring.h"
//
// // Frees the heap parts of a string tensor's elements, then the tensor.
// // Strings are only freed when no other tensor shares the buffer.
// static void gotf_delete_tensor(TF_Tensor* t) {
//   if (TF_TensorType(t) == TF_STRING && TF_TensorMaybeMove(t) != NULL) {
//     TF_TString* s = (TF_TString*)TF_TensorData(t);
//     int64_t n = TF_TensorElementCount(t);
//     for (int64_t i = 0; i < n; i++) TF_TString_Dealloc(&s[i]);
//   }
//   TF_DeleteTensor(t);
// }
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/gotf/gotf/dtypes"
)

// Tensor owns a TF_Tensor: a dense, host-memory n-dimensional array.
type Tensor struct {
	c     *C.TF_Tensor
	dtype DataType
	dims  []int64
}

// sizeofTString is the size of one TF_TString element in a string tensor's buffer.
const sizeofTString = C.sizeof_TF_TString

// MaxDims is the largest rank TensorFlow's TensorShape holds (kMaxDims):
// the runtime aborts the process on a higher one, so constructors refuse it.
const MaxDims = 254

// checkDims refuses, before anything reaches C, the shapes that would make
// TensorFlow abort (a negative dimension, a rank over MaxDims, an element
// count overflowing int64) and returns the element count.
func checkDims(dims []int64) (int64, error) {
	if len(dims) > MaxDims {
		return 0, fmt.Errorf("invalid shape: rank %d is over TensorFlow's maximum of %d", len(dims), MaxDims)
	}
	return dtypes.NumElements(dims)
}

// tensorBytes is the buffer size of a fixed-size dtype tensor of dims,
// overflow-checked.
func tensorBytes(dt DataType, dims []int64) (int64, error) {
	if dt.Size() == 0 {
		return 0, fmt.Errorf("%s has no fixed element size (use NewStringTensor for strings)", dt)
	}
	if _, err := checkDims(dims); err != nil {
		return 0, err
	}
	return dtypes.NumBytes(dt, dims)
}

// AllocateTensor returns an uninitialised tensor of a fixed-size dtype. Fill
// it through Data(): that is the one copy from Go values into TensorFlow's
// buffer (no intermediate slice). A shape TensorFlow cannot hold, or a
// buffer the allocator cannot provide, is an error.
func AllocateTensor(dt DataType, dims []int64) (*Tensor, error) {
	nbytes, err := tensorBytes(dt, dims)
	if err != nil {
		return nil, fmt.Errorf("AllocateTensor: %w", err)
	}
	t, err := allocate(dt, dims, nbytes)
	if err != nil {
		return nil, fmt.Errorf("AllocateTensor: %w", err)
	}
	return t, nil
}

// allocate calls TF_AllocateTensor with dims already checked. TensorFlow's
// CPU allocator answers a request it cannot meet with a tensor whose data
// pointer is NULL (logging a warning), which Data would turn into a crash:
// that is an error here.
func allocate(dt DataType, dims []int64, nbytes int64) (*Tensor, error) {
	if uint64(nbytes) > uint64(^C.size_t(0)) {
		return nil, fmt.Errorf("%s%v: %d bytes do not fit a size_t", dt, dims, nbytes)
	}
	var pdims *C.int64_t
	if len(dims) > 0 {
		pdims = (*C.int64_t)(unsafe.Pointer(&dims[0]))
	}
	c := C.TF_AllocateTensor(C.TF_DataType(dt), pdims, C.int(len(dims)), C.size_t(nbytes))
	runtime.KeepAlive(dims)
	if c == nil {
		return nil, fmt.Errorf("%s%v: TensorFlow could not create the tensor", dt, dims)
	}
	if nbytes > 0 && C.TF_TensorData(c) == nil {
		C.TF_DeleteTensor(c)
		return nil, fmt.Errorf("%s%v: cannot allocate %d bytes", dt, dims, nbytes)
	}
	return newTensor(c), nil
}

// newTensor takes ownership of c.
func newTensor(c *C.TF_Tensor) *Tensor {
	t := &Tensor{c: c, dtype: DataType(C.TF_TensorType(c))}
	nd := int(C.TF_NumDims(c))
	t.dims = make([]int64, nd)
	for i := range t.dims {
		t.dims[i] = int64(C.TF_Dim(c, C.int(i)))
	}
	runtime.SetFinalizer(t, (*Tensor).Close)
	return t
}

// NewTensor returns a tensor of a fixed-size dtype holding a copy of data,
// the little-endian bytes of its elements in row-major order. data must
// hold exactly the shape's bytes; that is checked before anything is
// allocated.
func NewTensor(dt DataType, dims []int64, data []byte) (*Tensor, error) {
	nbytes, err := tensorBytes(dt, dims)
	if err != nil {
		return nil, fmt.Errorf("NewTensor: %w", err)
	}
	if nbytes != int64(len(data)) {
		return nil, fmt.Errorf("NewTensor: %s%v needs %d bytes, got %d", dt, dims, nbytes, len(data))
	}
	t, err := allocate(dt, dims, nbytes)
	if err != nil {
		return nil, fmt.Errorf("NewTensor: %w", err)
	}
	copy(t.Data(), data)
	return t, nil
}

// NewStringTensor returns a string tensor; each element is an arbitrary byte string.
func NewStringTensor(dims []int64, values [][]byte) (*Tensor, error) {
	n, err := checkDims(dims)
	if err != nil {
		return nil, fmt.Errorf("NewStringTensor: %w", err)
	}
	if n != int64(len(values)) {
		return nil, fmt.Errorf("NewStringTensor: shape %v holds %d strings, got %d", dims, n, len(values))
	}
	// n is the length of a Go slice, so n*sizeofTString cannot overflow.
	t, err := allocate(dtypes.String, dims, n*sizeofTString)
	if err != nil {
		return nil, fmt.Errorf("NewStringTensor: %w", err)
	}
	if n == 0 {
		return t, nil
	}
	elems := unsafe.Slice((*C.TF_TString)(C.TF_TensorData(t.c)), n)
	for i, v := range values {
		C.TF_TString_Init(&elems[i])
		if len(v) > 0 {
			C.TF_TString_Copy(&elems[i], (*C.char)(unsafe.Pointer(&v[0])), C.size_t(len(v)))
		}
	}
	runtime.KeepAlive(values)
	return t, nil
}

// Close frees the tensor; it is safe to call more than once.
func (t *Tensor) Close() error {
	if t.c != nil {
		C.gotf_delete_tensor(t.c)
		t.c = nil
		runtime.SetFinalizer(t, nil)
	}
	return nil
}

// Closed reports whether Close freed the tensor (a nil tensor counts as
// closed): its data can no longer be read or fed.
func (t *Tensor) Closed() bool { return t == nil || t.c == nil }

// DataType is the element type.
func (t *Tensor) DataType() DataType { return t.dtype }

// Shape is the tensor's (fully defined) shape.
func (t *Tensor) Shape() []int64 { return append([]int64(nil), t.dims...) }

// NumElements is the number of elements.
func (t *Tensor) NumElements() int64 {
	n, _ := dtypes.NumElements(t.dims) // the runtime made the dims, so they are valid
	return n
}

// Data is the tensor's buffer, shared with TensorFlow: valid until Close,
// and written in place. For strings it holds TF_TString structs; use Strings.
func (t *Tensor) Data() []byte {
	if t.c == nil {
		return nil
	}
	n := C.TF_TensorByteSize(t.c)
	if n == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(C.TF_TensorData(t.c)), int(n))
}

// Strings returns copies of the elements of a string tensor, in row-major order.
func (t *Tensor) Strings() ([][]byte, error) {
	if t.dtype != dtypes.String {
		return nil, fmt.Errorf("Strings: tensor is %s, not string", t.dtype)
	}
	if t.c == nil {
		return nil, fmt.Errorf("Strings: tensor is closed")
	}
	n := t.NumElements()
	out := make([][]byte, n)
	if n == 0 {
		return out, nil
	}
	elems := unsafe.Slice((*C.TF_TString)(C.TF_TensorData(t.c)), n)
	for i := range elems {
		p := C.TF_TString_GetDataPointer(&elems[i])
		sz := C.TF_TString_GetSize(&elems[i])
		out[i] = C.GoBytes(unsafe.Pointer(p), C.int(sz))
	}
	runtime.KeepAlive(t)
	return out, nil
}

func (t *Tensor) String() string {
	return fmt.Sprintf("Tensor(%s, shape=%v)", t.dtype, t.dims)
}

package cgo

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"fmt"
	"unsafe"

	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
)

// Func names a function in the graph's library, the value of a "func" attr.
type Func struct {
	Name string
}

// crossGraphHint explains the usual cause of an edge between graphs.
const crossGraphHint = " (a function body must be built with the scope it is given, and reaches values of an enclosing graph by capturing them: tfgo.Capture)"

// OpBuilder describes an operation to add to a graph (TF_OperationDescription).
//
// Nothing reaches the C API before Finish: TensorFlow has no way to drop a
// half-built description, so an attribute Go cannot convert is reported by
// Finish without touching the graph.
type OpBuilder struct {
	g        *Graph
	opType   string
	name     string
	steps    []func(*C.TF_OperationDescription, status)
	keep     []any // Go values the steps read (tensors) stay alive until Finish
	err      error
	finished bool
}

// NewOperation starts describing an operation of type opType named name.
func (g *Graph) NewOperation(opType, name string) *OpBuilder {
	return &OpBuilder{g: g, opType: opType, name: name}
}

func (b *OpBuilder) step(f func(*C.TF_OperationDescription, status)) *OpBuilder {
	b.steps = append(b.steps, f)
	return b
}

func (b *OpBuilder) fail(format string, args ...any) *OpBuilder {
	if b.err == nil {
		b.err = &Error{Code: InvalidArgument, Op: b.name, Message: fmt.Sprintf(format, args...)}
	}
	return b
}

// AddInput adds the next input.
func (b *OpBuilder) AddInput(in Output) *OpBuilder {
	if in.Op == nil {
		return b.fail("input %d of %s is nil", len(b.steps), b.opType)
	}
	if in.Op.g != b.g {
		return b.fail("input %s of %s belongs to another graph%s", in.Name(), b.opType, crossGraphHint)
	}
	return b.step(func(d *C.TF_OperationDescription, _ status) { C.TF_AddInput(d, in.c()) })
}

// AddInputList adds a list input (e.g. the values of ConcatV2).
func (b *OpBuilder) AddInputList(ins []Output) *OpBuilder {
	for i, in := range ins {
		if in.Op == nil {
			return b.fail("element %d of an input list of %s is nil", i, b.opType)
		}
		if in.Op.g != b.g {
			return b.fail("element %d (%s) of an input list of %s belongs to another graph%s", i, in.Name(), b.opType, crossGraphHint)
		}
	}
	return b.step(func(d *C.TF_OperationDescription, _ status) {
		cs := make([]C.TF_Output, len(ins))
		for i, in := range ins {
			cs[i] = in.c()
		}
		var p *C.TF_Output
		if len(cs) > 0 {
			p = (*C.TF_Output)(C.malloc(C.size_t(len(cs)) * C.sizeof_TF_Output))
			defer C.free(unsafe.Pointer(p))
			copy(unsafe.Slice(p, len(cs)), cs)
		}
		C.TF_AddInputList(d, p, C.int(len(cs)))
	})
}

// AddControlInput makes the operation run after op.
func (b *OpBuilder) AddControlInput(op *Operation) *OpBuilder {
	if op == nil {
		return b.fail("nil control input")
	}
	if op.g != b.g {
		return b.fail("control input %s belongs to another graph", op.Name())
	}
	return b.step(func(d *C.TF_OperationDescription, _ status) { C.TF_AddControlInput(d, op.c) })
}

// SetDevice requests a device, e.g. "/device:CPU:1" or "/job:worker/task:0/device:GPU:0".
func (b *OpBuilder) SetDevice(device string) *OpBuilder {
	return b.step(func(d *C.TF_OperationDescription, _ status) {
		cs := C.CString(device)
		defer C.free(unsafe.Pointer(cs))
		C.TF_SetDevice(d, cs)
	})
}

// ColocateWith places the operation on the same device as op.
func (b *OpBuilder) ColocateWith(op *Operation) *OpBuilder {
	return b.step(func(d *C.TF_OperationDescription, _ status) { C.TF_ColocateWith(d, op.c) })
}

// SetAttr sets an attribute. The Go type of value picks the attr kind:
//
//	int, int32, int64                 int         []int, []int32, []int64   list(int)
//	float32, float64                  float       []float32, []float64      list(float)
//	bool                              bool        []bool                    list(bool)
//	string, []byte                    string      []string                  list(string)
//	DataType                          type        []DataType                list(type)
//	Shape                             shape       []Shape                   list(shape)
//	*Tensor                           tensor      []*Tensor                 list(tensor)
//	Func                              func        []Func                    list(func)
//	*AttrValue (proto)                any kind
func (b *OpBuilder) SetAttr(name string, value any) *OpBuilder {
	cname := func() *C.char { return C.CString(name) }
	switch v := value.(type) {
	case int:
		return b.SetAttr(name, int64(v))
	case int32:
		return b.SetAttr(name, int64(v))
	case int64:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			C.TF_SetAttrInt(d, n, C.int64_t(v))
		})
	case []int:
		return b.SetAttr(name, convertSlice[int, int64](v))
	case []int32:
		return b.SetAttr(name, convertSlice[int32, int64](v))
	case []int64:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			p := cArray[int64, C.int64_t](v)
			defer C.free(unsafe.Pointer(p))
			C.TF_SetAttrIntList(d, n, p, C.int(len(v)))
		})
	case float64:
		return b.SetAttr(name, float32(v))
	case float32:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			C.TF_SetAttrFloat(d, n, C.float(v))
		})
	case []float64:
		return b.SetAttr(name, convertSlice[float64, float32](v))
	case []float32:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			p := cArray[float32, C.float](v)
			defer C.free(unsafe.Pointer(p))
			C.TF_SetAttrFloatList(d, n, p, C.int(len(v)))
		})
	case bool:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			C.TF_SetAttrBool(d, n, cBool(v))
		})
	case []bool:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			bs := make([]C.uchar, len(v))
			for i, x := range v {
				bs[i] = cBool(x)
			}
			p := cArray[C.uchar, C.uchar](bs)
			defer C.free(unsafe.Pointer(p))
			C.TF_SetAttrBoolList(d, n, p, C.int(len(v)))
		})
	case string:
		return b.SetAttr(name, []byte(v))
	case []byte:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			p := C.CBytes(v)
			defer C.free(p)
			C.TF_SetAttrString(d, n, p, C.size_t(len(v)))
		})
	case []string:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			ptrs := make([]unsafe.Pointer, len(v))
			lens := make([]C.size_t, len(v))
			for i, s := range v {
				ptrs[i] = C.CBytes([]byte(s))
				defer C.free(ptrs[i])
				lens[i] = C.size_t(len(s))
			}
			pp := cArray[unsafe.Pointer, unsafe.Pointer](ptrs)
			defer C.free(unsafe.Pointer(pp))
			pl := cArray[C.size_t, C.size_t](lens)
			defer C.free(unsafe.Pointer(pl))
			C.TF_SetAttrStringList(d, n, pp, pl, C.int(len(v)))
		})
	case DataType:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			C.TF_SetAttrType(d, n, C.TF_DataType(v))
		})
	case []DataType:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			ts := make([]C.TF_DataType, len(v))
			for i, t := range v {
				ts[i] = C.TF_DataType(t)
			}
			p := cArray[C.TF_DataType, C.TF_DataType](ts)
			defer C.free(unsafe.Pointer(p))
			C.TF_SetAttrTypeList(d, n, p, C.int(len(v)))
		})
	case Shape:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			p := cArray[int64, C.int64_t](v.Dims)
			defer C.free(unsafe.Pointer(p))
			C.TF_SetAttrShape(d, n, p, C.int(v.Rank()))
		})
	case []Shape:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			dims := make([]*C.int64_t, len(v))
			ranks := make([]C.int, len(v))
			for i, s := range v {
				dims[i] = cArray[int64, C.int64_t](s.Dims)
				defer C.free(unsafe.Pointer(dims[i]))
				ranks[i] = C.int(s.Rank())
			}
			pd := cArray[*C.int64_t, *C.int64_t](dims)
			defer C.free(unsafe.Pointer(pd))
			pr := cArray[C.int, C.int](ranks)
			defer C.free(unsafe.Pointer(pr))
			C.TF_SetAttrShapeList(d, n, pd, pr, C.int(len(v)))
		})
	case *Tensor:
		if v == nil || v.c == nil {
			return b.fail("attr %q: nil or closed tensor", name)
		}
		b.keep = append(b.keep, v)
		return b.step(func(d *C.TF_OperationDescription, st status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			C.TF_SetAttrTensor(d, n, v.c, st.c)
		})
	case []*Tensor:
		for _, t := range v {
			if t == nil || t.c == nil {
				return b.fail("attr %q: nil or closed tensor in list", name)
			}
		}
		b.keep = append(b.keep, v)
		return b.step(func(d *C.TF_OperationDescription, st status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			ts := make([]*C.TF_Tensor, len(v))
			for i, t := range v {
				ts[i] = t.c
			}
			p := cArray[*C.TF_Tensor, *C.TF_Tensor](ts)
			defer C.free(unsafe.Pointer(p))
			C.TF_SetAttrTensorList(d, n, p, C.int(len(v)), st.c)
		})
	case Func:
		return b.step(func(d *C.TF_OperationDescription, _ status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			f := C.CString(v.Name)
			defer C.free(unsafe.Pointer(f))
			C.TF_SetAttrFuncName(d, n, f, C.size_t(len(v.Name)))
		})
	case []Func:
		fs := make([]*attrpb.NameAttrList, len(v))
		for i, f := range v {
			fs[i] = &attrpb.NameAttrList{Name: f.Name}
		}
		return b.SetAttr(name, &attrpb.AttrValue{Value: &attrpb.AttrValue_List{List: &attrpb.AttrValue_ListValue{Func: fs}}})
	case *attrpb.AttrValue:
		return b.step(func(d *C.TF_OperationDescription, st status) {
			n := cname()
			defer C.free(unsafe.Pointer(n))
			_ = withProto(v, func(buf *C.TF_Buffer) {
				C.TF_SetAttrValueProto(d, n, buf.data, buf.length, st.c)
			})
		})
	}
	return b.fail("attr %q: unsupported Go type %T", name, value)
}

// Finish adds the operation to the graph. Errors name the operation and
// carry TensorFlow's message (unknown op type, missing or bad attr, shape
// inference failures such as a MatMul of incompatible shapes).
func (b *OpBuilder) Finish() (*Operation, error) {
	if b.finished {
		return nil, &Error{Code: FailedPrecondition, Op: b.name, Message: "operation already finished"}
	}
	b.finished = true
	if b.err != nil {
		return nil, b.err
	}
	if b.g == nil || b.g.c == nil {
		return nil, &Error{Code: FailedPrecondition, Op: b.name, Message: "graph is closed"}
	}
	ctype, cname := C.CString(b.opType), C.CString(b.name)
	defer C.free(unsafe.Pointer(ctype))
	defer C.free(unsafe.Pointer(cname))
	st := newStatus()
	defer st.close()
	d := C.TF_NewOperation(b.g.c, ctype, cname)
	var stepErr error
	for _, s := range b.steps {
		s(d, st)
		if stepErr == nil {
			stepErr = st.err(b.name)
		}
	}
	// The description is freed only by finishing it, so finish even after an error.
	c := C.TF_FinishOperation(d, st.c)
	b.keep = nil
	if stepErr != nil {
		return nil, stepErr
	}
	if err := st.err(b.name); err != nil {
		return nil, err
	}
	return b.g.op(c), nil
}

func cBool(v bool) C.uchar {
	if v {
		return 1
	}
	return 0
}

// cArray copies s into a malloc'ed C array (nil for an empty slice); free it.
func cArray[T any, E any](s []T) *E {
	if len(s) == 0 {
		return nil
	}
	var zero T
	p := mallocBytes(uintptr(len(s)) * unsafe.Sizeof(zero))
	copy(unsafe.Slice((*T)(p), len(s)), s)
	return (*E)(p)
}

func convertSlice[F, T int | int32 | int64 | float32 | float64](s []F) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[i] = T(v)
	}
	return out
}

package cgo

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"fmt"
	"unsafe"

	attrpb "github.com/wamuir/graft/tensorflow/core/framework/attr_value_go_proto"
	tspb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	"google.golang.org/protobuf/proto"
)

// AttrNames lists the names of the operation's attributes.
func (op *Operation) AttrNames() []string {
	st := newStatus()
	defer st.close()
	n := int(C.TF_OperationGetNumAttrs(op.c))
	names := make([]string, 0, n)
	for i := 0; i < n; i++ {
		l := C.TF_OperationGetAttrNameLength(op.c, C.int(i))
		buf := (*C.char)(C.malloc(C.size_t(l) + 1))
		C.TF_OperationGetAttrName(op.c, C.int(i), buf, st.c)
		if st.err("") == nil {
			names = append(names, C.GoStringN(buf, C.int(l)))
		}
		C.free(unsafe.Pointer(buf))
	}
	return names
}

// Attr returns an attribute's value with the Go types SetAttr takes: int64,
// float32, bool, string, DataType, Shape, *Tensor (owned by the caller), Func,
// or a slice of one of them for list attrs.
func (op *Operation) Attr(name string) (any, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	st := newStatus()
	defer st.close()
	meta := C.TF_OperationGetAttrMetadata(op.c, cname, st.c)
	if err := st.err(op.Name()); err != nil {
		return nil, err
	}
	isList := meta.is_list != 0
	if meta._type == C.TF_ATTR_TENSOR {
		return op.tensorAttr(cname, isList, int(meta.list_size))
	}
	buf := C.TF_NewBuffer()
	defer C.TF_DeleteBuffer(buf)
	C.TF_OperationGetAttrValueProto(op.c, cname, buf, st.c)
	if err := st.err(op.Name()); err != nil {
		return nil, err
	}
	av := new(attrpb.AttrValue)
	if err := proto.Unmarshal(bufferBytes(buf), av); err != nil {
		return nil, fmt.Errorf("op %q: decoding attr %q: %w", op.Name(), name, err)
	}
	if isList {
		return listAttr(meta._type, av.GetList())
	}
	switch meta._type {
	case C.TF_ATTR_STRING:
		return string(av.GetS()), nil
	case C.TF_ATTR_INT:
		return av.GetI(), nil
	case C.TF_ATTR_FLOAT:
		return av.GetF(), nil
	case C.TF_ATTR_BOOL:
		return av.GetB(), nil
	case C.TF_ATTR_TYPE:
		return DataType(av.GetType()), nil
	case C.TF_ATTR_SHAPE:
		return shapeFromProto(av.GetShape()), nil
	case C.TF_ATTR_FUNC:
		return Func{Name: av.GetFunc().GetName()}, nil
	}
	return nil, fmt.Errorf("op %q: attr %q has unsupported kind %d", op.Name(), name, int(meta._type))
}

func listAttr(kind C.TF_AttrType, l *attrpb.AttrValue_ListValue) (any, error) {
	switch kind {
	case C.TF_ATTR_STRING:
		out := make([]string, len(l.GetS()))
		for i, s := range l.GetS() {
			out[i] = string(s)
		}
		return out, nil
	case C.TF_ATTR_INT:
		return append([]int64{}, l.GetI()...), nil
	case C.TF_ATTR_FLOAT:
		return append([]float32{}, l.GetF()...), nil
	case C.TF_ATTR_BOOL:
		return append([]bool{}, l.GetB()...), nil
	case C.TF_ATTR_TYPE:
		out := make([]DataType, len(l.GetType()))
		for i, t := range l.GetType() {
			out[i] = DataType(t)
		}
		return out, nil
	case C.TF_ATTR_SHAPE:
		out := make([]Shape, len(l.GetShape()))
		for i, s := range l.GetShape() {
			out[i] = shapeFromProto(s)
		}
		return out, nil
	case C.TF_ATTR_FUNC:
		out := make([]Func, len(l.GetFunc()))
		for i, f := range l.GetFunc() {
			out[i] = Func{Name: f.GetName()}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported list attr kind %d", int(kind))
}

func (op *Operation) tensorAttr(cname *C.char, isList bool, n int) (any, error) {
	st := newStatus()
	defer st.close()
	if !isList {
		var t *C.TF_Tensor
		C.TF_OperationGetAttrTensor(op.c, cname, &t, st.c)
		if err := st.err(op.Name()); err != nil {
			return nil, err
		}
		return newTensor(t), nil
	}
	out := make([]*Tensor, n)
	if n == 0 {
		return out, nil
	}
	cs := make([]*C.TF_Tensor, n)
	C.TF_OperationGetAttrTensorList(op.c, cname, &cs[0], C.int(n), st.c)
	if err := st.err(op.Name()); err != nil {
		return nil, err
	}
	for i, c := range cs {
		out[i] = newTensor(c)
	}
	return out, nil
}

// shapeFromProto converts a TensorShapeProto.
func shapeFromProto(p *tspb.TensorShapeProto) Shape {
	if p.GetUnknownRank() {
		return UnknownShape()
	}
	var dims []int64 // nil for a scalar, as MakeShape() gives
	for _, d := range p.GetDim() {
		dims = append(dims, d.GetSize())
	}
	return Shape{Dims: dims}
}

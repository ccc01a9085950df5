package cgo

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	ndpb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	"google.golang.org/protobuf/proto"
)

// Operation is a node of a Graph. It belongs to the graph, which it keeps alive.
type Operation struct {
	c *C.TF_Operation
	g *Graph
}

// Output is the index-th output of an operation (a TF_Output: a tensor in the graph).
type Output struct {
	Op    *Operation
	Index int
}

// Input is the index-th input of an operation (a TF_Input).
type Input struct {
	Op    *Operation
	Index int
}

func (o Output) c() C.TF_Output { return C.TF_Output{oper: o.Op.c, index: C.int(o.Index)} }

// valid reports whether o is an existing output of an operation: the C
// API indexes its outputs without a bounds check, so a zero Output or an
// index out of range would read outside them.
func (o Output) valid() bool {
	return o.Op != nil && o.Index >= 0 && o.Index < o.Op.NumOutputs()
}

// Name is the tensor's name in TensorFlow's "op:index" form ("" for the
// zero Output).
func (o Output) Name() string {
	if o.Op == nil {
		return ""
	}
	return fmt.Sprintf("%s:%d", o.Op.Name(), o.Index)
}

// DataType is the output's element type (0 for the zero Output).
func (o Output) DataType() DataType { return o.Op.OutputType(o.Index) }

// Shape is the output's shape as inferred when the graph was built.
func (o Output) Shape() (Shape, error) {
	if o.Op == nil {
		return Shape{}, fmt.Errorf("shape of the zero Output")
	}
	return o.Op.g.TensorShape(o)
}

// Graph is the graph the operation belongs to.
func (op *Operation) Graph() *Graph { return op.g }

// Name is the operation's unique name in its graph.
func (op *Operation) Name() string { return C.GoString(C.TF_OperationName(op.c)) }

// Type is the op type, e.g. "MatMul".
func (op *Operation) Type() string { return C.GoString(C.TF_OperationOpType(op.c)) }

// Device is the requested device, e.g. "/device:CPU:0", or "".
func (op *Operation) Device() string { return C.GoString(C.TF_OperationDevice(op.c)) }

// NumOutputs is the number of outputs.
func (op *Operation) NumOutputs() int { return int(C.TF_OperationNumOutputs(op.c)) }

// NumInputs is the number of (data) inputs.
func (op *Operation) NumInputs() int { return int(C.TF_OperationNumInputs(op.c)) }

// Output returns the i-th output.
func (op *Operation) Output(i int) Output { return Output{Op: op, Index: i} }

// OutputType is the element type of the i-th output (0 if there is none).
func (op *Operation) OutputType(i int) DataType {
	if !op.Output(i).valid() {
		return 0
	}
	return DataType(C.TF_OperationOutputType(op.Output(i).c()))
}

// hasInput reports whether op has an i-th input (see Output.valid).
func (op *Operation) hasInput(i int) bool { return op != nil && i >= 0 && i < op.NumInputs() }

// InputType is the element type expected by the i-th input (0 if there is none).
func (op *Operation) InputType(i int) DataType {
	if !op.hasInput(i) {
		return 0
	}
	return DataType(C.TF_OperationInputType(C.TF_Input{oper: op.c, index: C.int(i)}))
}

// Input returns the output that feeds the i-th input (the zero Output if
// there is no such input).
func (op *Operation) Input(i int) Output {
	if !op.hasInput(i) {
		return Output{}
	}
	o := C.TF_OperationInput(C.TF_Input{oper: op.c, index: C.int(i)})
	return Output{Op: op.g.op(o.oper), Index: int(o.index)}
}

// Inputs returns the outputs feeding every input, in order.
func (op *Operation) Inputs() []Output {
	ins := make([]Output, op.NumInputs())
	for i := range ins {
		ins[i] = op.Input(i)
	}
	return ins
}

// ControlInputs are the operations that must run before this one.
func (op *Operation) ControlInputs() []*Operation {
	n := int(C.TF_OperationNumControlInputs(op.c))
	if n == 0 {
		return nil
	}
	cs := make([]*C.TF_Operation, n)
	n = int(C.TF_OperationGetControlInputs(op.c, &cs[0], C.int(n)))
	ops := make([]*Operation, n)
	for i := range ops {
		ops[i] = op.g.op(cs[i])
	}
	return ops
}

// Consumers are the inputs of other operations that the i-th output feeds.
func (op *Operation) Consumers(i int) []Input {
	if !op.Output(i).valid() {
		return nil
	}
	o := op.Output(i).c()
	n := int(C.TF_OperationOutputNumConsumers(o))
	if n == 0 {
		return nil
	}
	cs := make([]C.TF_Input, n)
	n = int(C.TF_OperationOutputConsumers(o, &cs[0], C.int(n)))
	ins := make([]Input, n)
	for j := range ins {
		ins[j] = Input{Op: op.g.op(cs[j].oper), Index: int(cs[j].index)}
	}
	return ins
}

// OutputListLength is the number of outputs in the named output list (e.g. "output" of Split).
func (op *Operation) OutputListLength(arg string) (int, error) {
	carg := C.CString(arg)
	defer C.free(unsafe.Pointer(carg))
	st := newStatus()
	defer st.close()
	n := C.TF_OperationOutputListLength(op.c, carg, st.c)
	return int(n), st.err(op.Name())
}

// InputListLength is the number of inputs in the named input list (e.g. "values" of ConcatV2).
func (op *Operation) InputListLength(arg string) (int, error) {
	carg := C.CString(arg)
	defer C.free(unsafe.Pointer(carg))
	st := newStatus()
	defer st.close()
	n := C.TF_OperationInputListLength(op.c, carg, st.c)
	return int(n), st.err(op.Name())
}

// NodeDef returns the operation's NodeDef (name, op, inputs, device, every attr).
func (op *Operation) NodeDef() (*ndpb.NodeDef, error) {
	st := newStatus()
	defer st.close()
	buf := C.TF_NewBuffer()
	defer C.TF_DeleteBuffer(buf)
	C.TF_OperationToNodeDef(op.c, buf, st.c)
	if err := st.err(op.Name()); err != nil {
		return nil, err
	}
	nd := new(ndpb.NodeDef)
	if err := proto.Unmarshal(bufferBytes(buf), nd); err != nil {
		return nil, fmt.Errorf("decoding NodeDef of %s: %w", op.Name(), err)
	}
	runtime.KeepAlive(op.g)
	return nd, nil
}

func (op *Operation) String() string { return fmt.Sprintf("%s (%s)", op.Name(), op.Type()) }

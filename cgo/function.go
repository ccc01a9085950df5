package cgo

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"fmt"
	"regexp"
	"runtime"
	"unsafe"

	fnpb "github.com/wamuir/graft/tensorflow/core/framework/function_go_proto"
	"google.golang.org/protobuf/proto"
)

// Function owns a TF_Function: a graph function (a FunctionDef) with typed
// inputs and outputs, as tf.function traces them. A graph calls a function
// once it holds a copy (Graph.AddFunction), through ops such as
// PartitionedCall, While or If that name it in a func attr.
type Function struct {
	c *C.TF_Function
}

func newFunction(c *C.TF_Function) *Function {
	f := &Function{c: c}
	runtime.SetFinalizer(f, (*Function).Close)
	return f
}

// Close frees the function. Graphs that hold a copy keep it.
func (f *Function) Close() error {
	if f.c != nil {
		C.TF_DeleteFunction(f.c)
		f.c = nil
		runtime.SetFinalizer(f, nil)
	}
	return nil
}

// Name is the function's name, the value func attrs refer to it by.
func (f *Function) Name() string {
	if f.c == nil {
		return ""
	}
	name := C.GoString(C.TF_FunctionName(f.c))
	runtime.KeepAlive(f)
	return name
}

// FunctionDef serialises the function.
func (f *Function) FunctionDef() (*fnpb.FunctionDef, error) {
	if f.c == nil {
		return nil, &Error{Code: FailedPrecondition, Message: "function is closed"}
	}
	st := newStatus()
	defer st.close()
	buf := C.TF_NewBuffer()
	defer C.TF_DeleteBuffer(buf)
	C.TF_FunctionToFunctionDef(f.c, buf, st.c)
	runtime.KeepAlive(f)
	if err := st.err(f.Name()); err != nil {
		return nil, err
	}
	def := new(fnpb.FunctionDef)
	if err := proto.Unmarshal(bufferBytes(buf), def); err != nil {
		return nil, fmt.Errorf("decoding FunctionDef of %s: %w", f.Name(), err)
	}
	return def, nil
}

// FunctionFromDef builds a function from its FunctionDef (e.g. one read from
// a SavedModel's library or another graph's).
func FunctionFromDef(def *fnpb.FunctionDef) (*Function, error) {
	name := def.GetSignature().GetName()
	b, err := proto.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("encoding FunctionDef of %s: %w", name, err)
	}
	st := newStatus()
	defer st.close()
	var p unsafe.Pointer
	if len(b) > 0 {
		p = C.CBytes(b)
		defer C.free(p)
	}
	c := C.TF_FunctionImportFunctionDef(p, C.size_t(len(b)), st.c)
	if err := st.err(name); err != nil {
		C.TF_DeleteFunction(c) // a no-op on nil
		return nil, err
	}
	return newFunction(c), nil
}

// FunctionOptions are the optional parts of GraphToFunction.
type FunctionOptions struct {
	// Operations are the operations that become the body. nil takes every
	// operation of the graph except the ones producing the inputs (which must
	// then have a single output, typically Placeholders); a non-nil empty
	// slice makes a function with no body (outputs taken from inputs).
	Operations []*Operation
	// OutputNames name the outputs ([a-z][a-z0-9_]*), one per output; nil
	// lets TensorFlow name them.
	OutputNames []string
	// Description is a human-readable description stored in the OpDef.
	Description string
	// AppendHashToName makes the name fnName + "_" + a hash of the
	// definition, so that different bodies never share a name.
	AppendHashToName bool
}

var (
	// functionName is what GraphToFunction accepts as a name: TensorFlow's
	// op-name pattern, also allowing a lower-case or '_' start as
	// tf.function's "__inference_f_12" names have. TensorFlow itself checks
	// nothing (even "" or "a b" pass) but refuses a function named like an
	// op type when the function is added to a graph.
	functionName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-/]*$`)
	// argName is the pattern of OpDef argument names.
	argName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// GraphToFunction turns the graph g (or the operations opts selects) into a
// function named name, with inputs and outputs in the given order
// (TF_GraphToFunction).
//
// name must match [A-Za-z_][A-Za-z0-9_.\-/]* and, unless
// opts.AppendHashToName, differ from the functions and op types of the
// graphs the function goes to. The argument names are the names of the
// operations producing inputs, lower-cased with other characters turned to
// '_' (and "_N" added to repeats); output names, when given, must match
// [a-z][a-z0-9_]* and be distinct (TensorFlow does not check either).
// Every operation of the body must get its inputs from inputs or from the
// body. Errors name the function.
func GraphToFunction(g *Graph, name string, inputs, outputs []Output, opts *FunctionOptions) (*Function, error) {
	if opts == nil {
		opts = &FunctionOptions{}
	}
	bad := func(format string, args ...any) (*Function, error) {
		return nil, &Error{Code: InvalidArgument, Op: name, Message: fmt.Sprintf(format, args...)}
	}
	if g == nil || g.c == nil {
		return nil, &Error{Code: FailedPrecondition, Op: name, Message: "graph is nil or closed"}
	}
	if !functionName.MatchString(name) {
		return bad("function name %q does not match %s", name, functionName)
	}
	for i, o := range inputs {
		if o.Op == nil {
			return bad("input %d is not an operation's output", i)
		}
		if o.Op.g != g {
			return bad("input %d (%s) belongs to another graph", i, o.Name())
		}
	}
	for i, o := range outputs {
		if o.Op == nil {
			return bad("output %d is not an operation's output", i)
		}
		if o.Op.g != g {
			return bad("output %d (%s) belongs to another graph", i, o.Name())
		}
	}
	if opts.OutputNames != nil {
		if len(opts.OutputNames) != len(outputs) {
			return bad("%d output names for %d outputs", len(opts.OutputNames), len(outputs))
		}
		seen := map[string]bool{}
		for _, n := range opts.OutputNames {
			if !argName.MatchString(n) {
				return bad("output name %q does not match %s", n, argName)
			}
			if seen[n] {
				return bad("output name %q is used twice", n)
			}
			seen[n] = true
		}
	}

	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	numOpers := C.int(-1)
	var opers **C.TF_Operation
	if opts.Operations != nil {
		numOpers = C.int(len(opts.Operations))
		cs := make([]*C.TF_Operation, len(opts.Operations))
		for i, op := range opts.Operations {
			if op == nil {
				return nil, &Error{Code: InvalidArgument, Op: name, Message: fmt.Sprintf("operation %d of the body is nil", i)}
			}
			cs[i] = op.c
		}
		opers = cArray[*C.TF_Operation, *C.TF_Operation](cs)
		defer C.free(unsafe.Pointer(opers))
	}
	cin := cOutputs(inputs)
	defer C.free(unsafe.Pointer(cin))
	cout := cOutputs(outputs)
	defer C.free(unsafe.Pointer(cout))
	var cnames **C.char
	if opts.OutputNames != nil {
		ns := make([]*C.char, len(opts.OutputNames))
		for i, n := range opts.OutputNames {
			ns[i] = C.CString(n)
			defer C.free(unsafe.Pointer(ns[i]))
		}
		cnames = cArray[*C.char, *C.char](ns)
		defer C.free(unsafe.Pointer(cnames))
	}
	var cdesc *C.char
	if opts.Description != "" {
		cdesc = C.CString(opts.Description)
		defer C.free(unsafe.Pointer(cdesc))
	}
	st := newStatus()
	defer st.close()
	c := C.TF_GraphToFunction(g.c, cname, cBool(opts.AppendHashToName), numOpers, opers,
		C.int(len(inputs)), cin, C.int(len(outputs)), cout, cnames, nil, cdesc, st.c)
	runtime.KeepAlive(g)
	if err := st.err(name); err != nil {
		C.TF_DeleteFunction(c)
		return nil, err
	}
	return newFunction(c), nil
}

// cOutputs copies outs into a malloc'ed TF_Output array (nil when empty); free it.
func cOutputs(outs []Output) *C.TF_Output {
	cs := make([]C.TF_Output, len(outs))
	for i, o := range outs {
		cs[i] = o.c()
	}
	return cArray[C.TF_Output, C.TF_Output](cs)
}

// AddFunction copies f, and grad as its gradient when not nil, into the
// graph's function library (TF_GraphCopyFunction). Adding a function the
// graph already holds changes nothing; a different function of the same
// name is an error naming it. Later changes to f do not affect the copy.
func (g *Graph) AddFunction(f, grad *Function) error {
	if f == nil || f.c == nil {
		return &Error{Code: InvalidArgument, Message: "AddFunction: nil or closed function"}
	}
	if g == nil || g.c == nil {
		return &Error{Code: FailedPrecondition, Op: f.Name(), Message: "graph is nil or closed"}
	}
	var cgrad *C.TF_Function
	if grad != nil {
		if grad.c == nil {
			return &Error{Code: InvalidArgument, Op: f.Name(), Message: "gradient function is closed"}
		}
		cgrad = grad.c
	}
	st := newStatus()
	defer st.close()
	C.TF_GraphCopyFunction(g.c, f.c, cgrad, st.c)
	runtime.KeepAlive(g)
	runtime.KeepAlive(f)
	runtime.KeepAlive(grad)
	return st.err(f.Name())
}

// Functions returns copies of the functions in the graph's library; each
// belongs to the caller (Close it, or let the finalizer do it).
func (g *Graph) Functions() ([]*Function, error) {
	n := C.TF_GraphNumFunctions(g.c)
	if n <= 0 {
		return nil, nil
	}
	cs := make([]*C.TF_Function, int(n))
	st := newStatus()
	defer st.close()
	got := C.TF_GraphGetFunctions(g.c, &cs[0], n, st.c)
	runtime.KeepAlive(g)
	if err := st.err(""); err != nil {
		return nil, err
	}
	fs := make([]*Function, int(got))
	for i := range fs {
		fs[i] = newFunction(cs[i])
	}
	return fs, nil
}

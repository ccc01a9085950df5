package cgo

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"
	"weak"

	fpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	oppb "github.com/wamuir/graft/tensorflow/core/framework/op_def_go_proto"
	"google.golang.org/protobuf/proto"
)

// Graph owns a TF_Graph. Adding operations is safe from several goroutines
// (TensorFlow locks the graph); operations live as long as their graph.
type Graph struct {
	c *C.TF_Graph

	// ops gives each C operation one Go *Operation, so that Operations and
	// Outputs compare equal (and work as map keys) however they were reached.
	// The pointers are weak: an Operation keeps its graph alive, and a
	// strong map back to the operations would make a cycle through the
	// graph's finalizer, which the collector never frees (every graph with
	// an operation leaked its TF_Graph). Equality only matters between live
	// Operations, so a collected one is simply made again when reached.
	mu  sync.Mutex
	ops map[*C.TF_Operation]weak.Pointer[Operation]
}

// NewGraph returns an empty graph.
func NewGraph() *Graph {
	g := &Graph{c: C.TF_NewGraph(), ops: map[*C.TF_Operation]weak.Pointer[Operation]{}}
	runtime.SetFinalizer(g, (*Graph).Close)
	return g
}

// Close frees the graph. TensorFlow keeps it alive until the sessions using
// it are closed; its operations must not be used afterwards.
func (g *Graph) Close() error {
	if g.c != nil {
		C.TF_DeleteGraph(g.c)
		g.c = nil
		runtime.SetFinalizer(g, nil)
	}
	return nil
}

// Operation returns the operation named name, or nil if there is none.
func (g *Graph) Operation(name string) *Operation {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	return g.op(C.TF_GraphOperationByName(g.c, cname))
}

func (g *Graph) op(c *C.TF_Operation) *Operation {
	if c == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if op := g.ops[c].Value(); op != nil {
		return op
	}
	op := &Operation{c: c, g: g}
	g.ops[c] = weak.Make(op)
	runtime.AddCleanup(op, g.forget, c)
	return op
}

// forget drops the map entry of a collected Operation, unless the entry
// already points to a newer one.
func (g *Graph) forget(c *C.TF_Operation) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ops[c].Value() == nil {
		delete(g.ops, c)
	}
}

// Operations lists the graph's operations in the order they were added.
func (g *Graph) Operations() []*Operation {
	var ops []*Operation
	var pos C.size_t
	for {
		c := C.TF_GraphNextOperation(g.c, &pos)
		if c == nil {
			return ops
		}
		ops = append(ops, g.op(c))
	}
}

// NumOperations is the number of operations in the graph.
func (g *Graph) NumOperations() int {
	var n int
	var pos C.size_t
	for C.TF_GraphNextOperation(g.c, &pos) != nil {
		n++
	}
	return n
}

// GraphDef serialises the graph.
func (g *Graph) GraphDef() (*fpb.GraphDef, error) {
	st := newStatus()
	defer st.close()
	buf := C.TF_NewBuffer()
	defer C.TF_DeleteBuffer(buf)
	C.TF_GraphToGraphDef(g.c, buf, st.c)
	if err := st.err(""); err != nil {
		return nil, err
	}
	gd := new(fpb.GraphDef)
	if err := proto.Unmarshal(bufferBytes(buf), gd); err != nil {
		return nil, fmt.Errorf("decoding GraphDef: %w", err)
	}
	return gd, nil
}

// Import adds the nodes of gd to the graph, their names prefixed with
// prefix + "/" when prefix is not empty.
func (g *Graph) Import(gd *fpb.GraphDef, prefix string) error {
	opts := C.TF_NewImportGraphDefOptions()
	defer C.TF_DeleteImportGraphDefOptions(opts)
	cprefix := C.CString(prefix)
	defer C.free(unsafe.Pointer(cprefix))
	C.TF_ImportGraphDefOptionsSetPrefix(opts, cprefix)
	st := newStatus()
	defer st.close()
	err := withProto(gd, func(b *C.TF_Buffer) { C.TF_GraphImportGraphDef(g.c, b, opts, st.c) })
	if err != nil {
		return err
	}
	return st.err("")
}

// OpDef returns the registered definition of an op type, with a NotFound
// error naming it when the runtime has no such op.
func (g *Graph) OpDef(opType string) (*oppb.OpDef, error) {
	ctype := C.CString(opType)
	defer C.free(unsafe.Pointer(ctype))
	st := newStatus()
	defer st.close()
	buf := C.TF_NewBuffer()
	defer C.TF_DeleteBuffer(buf)
	C.TF_GraphGetOpDef(g.c, ctype, buf, st.c)
	if err := st.err(opType); err != nil {
		return nil, err
	}
	def := new(oppb.OpDef)
	if err := proto.Unmarshal(bufferBytes(buf), def); err != nil {
		return nil, fmt.Errorf("decoding OpDef of %s: %w", opType, err)
	}
	return def, nil
}

// TensorShape is the shape inferred for an output at graph construction.
func (g *Graph) TensorShape(o Output) (Shape, error) {
	if !o.valid() || o.Op.g != g {
		return Shape{}, fmt.Errorf("shape of %q: not an output of an operation of this graph", o.Name())
	}
	st := newStatus()
	defer st.close()
	co := o.c()
	n := C.TF_GraphGetTensorNumDims(g.c, co, st.c)
	if err := st.err(o.Op.Name()); err != nil {
		return Shape{}, err
	}
	if n < 0 {
		return UnknownShape(), nil
	}
	var dims []int64 // nil for a scalar, as MakeShape() gives
	if n > 0 {
		dims = make([]int64, int(n))
		C.TF_GraphGetTensorShape(g.c, co, (*C.int64_t)(unsafe.Pointer(&dims[0])), n, st.c)
		if err := st.err(o.Op.Name()); err != nil {
			return Shape{}, err
		}
	}
	return Shape{Dims: dims}, nil
}

// OutputByName finds a tensor by TensorFlow's name for it, "op" (output 0)
// or "op:i"; the error names what is missing.
func (g *Graph) OutputByName(name string) (Output, error) {
	opName, idx := name, 0
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		n, err := strconv.Atoi(name[i+1:])
		if err != nil {
			return Output{}, &Error{Code: InvalidArgument, Op: name, Message: fmt.Sprintf("bad tensor name %q: want op or op:index", name)}
		}
		opName, idx = name[:i], n
	}
	op := g.Operation(opName)
	if op == nil {
		return Output{}, &Error{Code: NotFound, Op: opName, Message: fmt.Sprintf("no operation named %q in the graph", opName)}
	}
	if idx < 0 || idx >= op.NumOutputs() {
		return Output{}, &Error{Code: OutOfRange, Op: opName, Message: fmt.Sprintf("%s has %d outputs, not %d", opName, op.NumOutputs(), idx+1)}
	}
	return op.Output(idx), nil
}

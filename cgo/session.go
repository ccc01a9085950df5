package cgo

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
// #include "tensorflow/c/c_api_experimental.h"
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// SessionOptions configure NewSession.
type SessionOptions struct {
	// Target is the execution engine: "" for in-process, or a
	// "grpc://host:port" address of a TensorFlow server.
	Target string
	// Config is TensorFlow's ConfigProto: intra/inter-op threads,
	// device_count (e.g. {"CPU": 4} for four logical CPU devices),
	// graph_options (Grappler rewrites, XLA global_jit_level) ...
	Config *cpb.ConfigProto
	// XLA turns on XLA auto-clustering for the session (TF_EnableXLACompilation:
	// global_jit_level ON_1). GPUs then cluster; CPUs only cluster ops marked
	// for compilation (tfgo's Scope.WithXLA, TF1's jit_scope) unless the
	// process started with TF_XLA_FLAGS=--tf_xla_cpu_global_jit, which
	// TensorFlow reads when the library loads.
	XLA bool
}

// Session owns a TF_Session running one Graph.
type Session struct {
	mu sync.RWMutex // Close waits for running Runs
	c  *C.TF_Session
	g  *Graph
}

// NewSession creates a session for g.
func NewSession(g *Graph, opts *SessionOptions) (*Session, error) {
	copts, err := opts.c()
	if err != nil {
		return nil, err
	}
	defer C.TF_DeleteSessionOptions(copts)
	st := newStatus()
	defer st.close()
	c := C.TF_NewSession(g.c, copts, st.c)
	if err := st.err(""); err != nil {
		return nil, err
	}
	s := &Session{c: c, g: g}
	runtime.SetFinalizer(s, (*Session).Close)
	return s, nil
}

// c builds the TF_SessionOptions of o (nil: the defaults); the caller deletes them.
func (o *SessionOptions) c() (*C.TF_SessionOptions, error) {
	if o == nil {
		o = &SessionOptions{}
	}
	copts := C.TF_NewSessionOptions()
	if o.Target != "" {
		t := C.CString(o.Target)
		C.TF_SetTarget(copts, t) // copies the string
		C.free(unsafe.Pointer(t))
	}
	if o.Config != nil {
		b, err := proto.Marshal(o.Config)
		if err != nil {
			C.TF_DeleteSessionOptions(copts)
			return nil, fmt.Errorf("encoding ConfigProto: %w", err)
		}
		st := newStatus()
		defer st.close()
		withBuffer(b, func(buf *C.TF_Buffer) { C.TF_SetConfig(copts, buf.data, buf.length, st.c) })
		if err := st.err(""); err != nil {
			C.TF_DeleteSessionOptions(copts)
			return nil, err
		}
	}
	if o.XLA {
		C.TF_EnableXLACompilation(copts, 1)
	}
	return copts, nil
}

// Graph is the graph the session runs.
func (s *Session) Graph() *Graph { return s.g }

// Run feeds tensors, evaluates fetches and runs targets (TF_SessionRun).
// The returned tensors belong to the caller.
func (s *Session) Run(feeds map[Output]*Tensor, fetches []Output, targets []*Operation) ([]*Tensor, error) {
	outs, _, err := s.RunWithOptions(nil, feeds, fetches, targets)
	return outs, err
}

// RunWithOptions is Run with RunOptions (trace level, timeout ...). When
// options asks for a trace (trace_level FULL_TRACE, or SOFTWARE_TRACE for
// step stats: time and memory per op), the RunMetadata is returned too.
func (s *Session) RunWithOptions(options *cpb.RunOptions, feeds map[Output]*Tensor, fetches []Output, targets []*Operation) ([]*Tensor, *cpb.RunMetadata, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.c == nil {
		return nil, nil, &Error{Code: FailedPrecondition, Message: "session is closed"}
	}
	// The arrays live in C memory so that TensorFlow may keep pointers into
	// them for the whole call whatever the Go runtime does meanwhile.
	nf := len(feeds)
	inputs := cArrayOf[C.TF_Output](nf)
	defer C.free(unsafe.Pointer(inputs))
	inputValues := cArrayOf[*C.TF_Tensor](nf)
	defer C.free(unsafe.Pointer(inputValues))
	i := 0
	for o, t := range feeds {
		if t == nil || t.c == nil {
			return nil, nil, &Error{Code: InvalidArgument, Op: o.Op.Name(), Message: fmt.Sprintf("feed for %s is nil or closed", o.Name())}
		}
		unsafe.Slice(inputs, nf)[i] = o.c()
		unsafe.Slice(inputValues, nf)[i] = t.c
		i++
	}
	outputs := cArrayOf[C.TF_Output](len(fetches))
	defer C.free(unsafe.Pointer(outputs))
	for j, o := range fetches {
		if o.Op == nil {
			return nil, nil, &Error{Code: InvalidArgument, Message: fmt.Sprintf("fetch %d is a nil operation", j)}
		}
		unsafe.Slice(outputs, len(fetches))[j] = o.c()
	}
	outputValues := cArrayOf[*C.TF_Tensor](len(fetches))
	defer C.free(unsafe.Pointer(outputValues))
	ctargets := cArrayOf[*C.TF_Operation](len(targets))
	defer C.free(unsafe.Pointer(ctargets))
	for j, t := range targets {
		if t == nil {
			return nil, nil, &Error{Code: InvalidArgument, Message: fmt.Sprintf("target %d is a nil operation", j)}
		}
		unsafe.Slice(ctargets, len(targets))[j] = t.c
	}

	var runOpts *C.TF_Buffer
	if options != nil {
		b, err := proto.Marshal(options)
		if err != nil {
			return nil, nil, fmt.Errorf("encoding RunOptions: %w", err)
		}
		runOpts = C.TF_NewBuffer() // TF_NewBufferFromString would copy b
		defer C.TF_DeleteBuffer(runOpts)
		if len(b) > 0 {
			p := C.CBytes(b)
			defer C.free(p)
			runOpts.data, runOpts.length = p, C.size_t(len(b))
		}
	}
	var meta *C.TF_Buffer
	if options != nil {
		meta = C.TF_NewBuffer()
		defer C.TF_DeleteBuffer(meta)
	}
	st := newStatus()
	defer st.close()
	C.TF_SessionRun(s.c, runOpts,
		inputs, inputValues, C.int(nf),
		outputs, outputValues, C.int(len(fetches)),
		ctargets, C.int(len(targets)),
		meta, st.c)
	runtime.KeepAlive(feeds)
	if err := st.err(""); err != nil {
		return nil, nil, err
	}
	outs := make([]*Tensor, len(fetches))
	for j, c := range unsafe.Slice(outputValues, len(fetches)) {
		outs[j] = newTensor(c)
	}
	var md *cpb.RunMetadata
	if meta != nil {
		md = new(cpb.RunMetadata)
		if err := proto.Unmarshal(bufferBytes(meta), md); err != nil {
			return outs, nil, fmt.Errorf("decoding RunMetadata: %w", err)
		}
	}
	return outs, md, nil
}

// Device is a device a session can place operations on.
type Device struct {
	Name        string // e.g. "/job:localhost/replica:0/task:0/device:CPU:0"
	Type        string // "CPU", "GPU"
	MemoryBytes int64
}

// ListDevices lists the devices available to the session.
func (s *Session) ListDevices() ([]Device, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.c == nil {
		return nil, &Error{Code: FailedPrecondition, Message: "session is closed"}
	}
	st := newStatus()
	defer st.close()
	l := C.TF_SessionListDevices(s.c, st.c)
	if err := st.err(""); err != nil {
		return nil, err
	}
	defer C.TF_DeleteDeviceList(l)
	n := int(C.TF_DeviceListCount(l))
	devs := make([]Device, n)
	for i := range devs {
		devs[i].Name = C.GoString(C.TF_DeviceListName(l, C.int(i), st.c))
		devs[i].Type = C.GoString(C.TF_DeviceListType(l, C.int(i), st.c))
		devs[i].MemoryBytes = int64(C.TF_DeviceListMemoryBytes(l, C.int(i), st.c))
		if err := st.err(""); err != nil {
			return nil, err
		}
	}
	return devs, nil
}

// Close closes and frees the session after any running Run returns; it is
// safe to call more than once.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return nil
	}
	runtime.SetFinalizer(s, nil)
	st := newStatus()
	defer st.close()
	C.TF_CloseSession(s.c, st.c)
	err := st.err("")
	C.TF_DeleteSession(s.c, st.c)
	if err == nil {
		err = st.err("")
	}
	s.c = nil
	return err
}

// cArrayOf mallocs a C array of n zeroed elements (nil when n is 0); free it.
func cArrayOf[T any](n int) *T {
	if n == 0 {
		return nil
	}
	var zero T
	return (*T)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(zero))))
}

package cgo

// #include <stdlib.h>
// #include "tensorflow/c/c_api.h"
import "C"

import (
	"runtime"
	"sync"
)

// Server owns an in-process TensorFlow server (TF_Server): one task of a
// cluster, serving its devices to the cluster over gRPC and accepting
// sessions on Target.
//
// TensorFlow cannot shut a started gRPC server down: TF_ServerStop returns
// UNIMPLEMENTED and TF_DeleteServer of a started server aborts the process
// (its destructor checks that Stop succeeded). Close therefore deletes a
// server that was never started and leaks a started one, as Python's
// tf.distribute.Server does; a started server lives until its process exits,
// so tests that need servers to go away run them in child processes.
type Server struct {
	mu      sync.Mutex
	c       *C.TF_Server
	started bool
	target  string
}

// NewServer creates a server from a serialized ServerDef
// (tensorflow/core/protobuf/tensorflow_server.proto). It serves nothing
// until Start.
func NewServer(serverDef []byte) (*Server, error) {
	st := newStatus()
	defer st.close()
	var c *C.TF_Server
	withBuffer(serverDef, func(buf *C.TF_Buffer) { c = C.TF_NewServer(buf.data, buf.length, st.c) })
	if err := st.err(""); err != nil {
		return nil, err
	}
	// Copied now: the C string is only valid while the server exists.
	s := &Server{c: c, target: C.GoString(C.TF_ServerTarget(c))}
	runtime.SetFinalizer(s, (*Server).Close)
	return s, nil
}

func closedServer() error {
	return &Error{Code: FailedPrecondition, Message: "server is closed"}
}

// Start starts serving (TF_ServerStart).
func (s *Server) Start() error {
	return s.transition(true, func(c *C.TF_Server, st *C.TF_Status) { C.TF_ServerStart(c, st) })
}

// Stop stops the server (TF_ServerStop). For a started gRPC server
// TensorFlow returns an Unimplemented error (see Server).
func (s *Server) Stop() error {
	return s.transition(false, func(c *C.TF_Server, st *C.TF_Status) { C.TF_ServerStop(c, st) })
}

// transition runs a start or stop call on the live server and records
// whether it is started when the call succeeds.
func (s *Server) transition(started bool, call func(*C.TF_Server, *C.TF_Status)) error {
	if s == nil {
		return closedServer()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return closedServer()
	}
	st := newStatus()
	defer st.close()
	call(s.c, st.c)
	if err := st.err(""); err != nil {
		return err
	}
	s.started = started
	return nil
}

// Target is the address sessions use to run on this server
// ("grpc://host:port"); "" once closed.
func (s *Server) Target() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return ""
	}
	return s.target
}

// Close releases the server: a server never started (or stopped) is
// deleted; a started one is stopped if TensorFlow can, else left running
// until the process exits (see Server). Calling it again does nothing.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return nil
	}
	runtime.SetFinalizer(s, nil)
	if s.started {
		st := newStatus()
		C.TF_ServerStop(s.c, st.c)
		err := st.err("")
		st.close()
		if err != nil {
			// Deleting it would abort the process.
			s.c = nil
			return nil
		}
	}
	C.TF_DeleteServer(s.c)
	s.c = nil
	return nil
}

package tfgo

import (
	"errors"
	"fmt"

	"github.com/gotf/gotf/cgo"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// Server is an in-process TensorFlow server (tf.distribute.Server): one task
// of a cluster, whose devices the other tasks' sessions can place ops on
// (/job:worker/replica:0/task:1/device:CPU:0) and on whose Target sessions
// run (SessionOptions.Target).
//
// TensorFlow cannot shut a started gRPC server down: Stop returns an
// Unimplemented error, and Close leaves a started server serving until the
// process exits, as Python's Server does. Close still deletes a server that
// was never started. Package distribute builds servers from TF_CONFIG.
type Server struct {
	s *cgo.Server
}

// NewServer creates a server for the task def names (job_name, task_index)
// of def's cluster. It serves nothing until Start.
func NewServer(def *cpb.ServerDef) (*Server, error) {
	if def == nil {
		return nil, errors.New("tfgo: NewServer: nil ServerDef")
	}
	b, err := proto.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("tfgo: encoding ServerDef: %w", err)
	}
	if err := claimPools(def.GetDefaultSessionConfig(), "ServerDef.default_session_config.intra_op_parallelism_threads", ""); err != nil {
		return nil, err
	}
	s, err := cgo.NewServer(b)
	if err != nil {
		return nil, fmt.Errorf("tfgo: creating server for /job:%s/task:%d: %w", def.GetJobName(), def.GetTaskIndex(), err)
	}
	return &Server{s: s}, nil
}

func (s *Server) binding() *cgo.Server {
	if s == nil {
		return nil
	}
	return s.s
}

// Start starts serving.
func (s *Server) Start() error { return s.binding().Start() }

// Stop stops the server; for a started gRPC server TensorFlow reports
// Unimplemented (see Server).
func (s *Server) Stop() error { return s.binding().Stop() }

// Target is the "grpc://host:port" address for SessionOptions.Target; ""
// once closed.
func (s *Server) Target() string { return s.binding().Target() }

// Close releases the server (see Server for what happens to a started one).
// Calling it again does nothing.
func (s *Server) Close() error { return s.binding().Close() }

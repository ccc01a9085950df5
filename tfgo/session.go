package tfgo

import (
	"fmt"
	"sync/atomic"

	"github.com/gotf/gotf/cgo"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// SessionOptions configure a session. The zero value is TensorFlow's default.
type SessionOptions struct {
	// Target: "" runs in process; "grpc://host:port" uses a TensorFlow server.
	Target string
	// IntraOpThreads and InterOpThreads size the thread pools (0: TensorFlow picks).
	IntraOpThreads, InterOpThreads int
	// DeviceCount limits or multiplies devices per type, e.g. {"CPU": 4}
	// gives /device:CPU:0..3 (logical devices on one host).
	DeviceCount map[string]int32
	// XLA turns on XLA auto-clustering: TensorFlow compiles clusters of ops
	// into fused kernels (see cgo.SessionOptions.XLA for its process-wide part).
	XLA bool
	// Config, when set, is the starting ConfigProto the fields above amend.
	Config *cpb.ConfigProto
}

func (o SessionOptions) configProto() *cpb.ConfigProto {
	c := &cpb.ConfigProto{}
	if o.Config != nil {
		c = o.Config
	}
	if o.IntraOpThreads > 0 {
		c.IntraOpParallelismThreads = int32(o.IntraOpThreads)
	}
	if o.InterOpThreads > 0 {
		c.InterOpParallelismThreads = int32(o.InterOpThreads)
	}
	if len(o.DeviceCount) > 0 {
		if c.DeviceCount == nil {
			c.DeviceCount = map[string]int32{}
		}
		for k, v := range o.DeviceCount {
			c.DeviceCount[k] = v
		}
	}
	return c
}

// Session runs the graph of a scope. It owns a TF_Session: Close it when
// done (a finalizer is the safety net).
type Session struct {
	sess      *cgo.Session
	ownsGraph bool // a loaded SavedModel's graph, made by the loader
	// closed is set by Close: the runtime lists no devices for a closed
	// session instead of failing, so ListDevices checks it.
	closed atomic.Bool
}

// NewSession finalizes the scope and opens a session on its graph; the
// scope's first error, if any, is returned instead.
func NewSession(s *Scope, opts SessionOptions) (*Session, error) {
	g, err := s.Finalize()
	if err != nil {
		return nil, err
	}
	cs, err := cgo.NewSession(g, opts.binding())
	if err != nil {
		return nil, err
	}
	return &Session{sess: cs}, nil
}

// binding is o as the binding's options (nil o: TensorFlow's defaults).
func (o SessionOptions) binding() *cgo.SessionOptions {
	return &cgo.SessionOptions{Target: o.Target, Config: o.configProto(), XLA: o.XLA}
}

// LoadSavedModel loads the meta graph tagged with every one of tags (e.g.
// "serve") of the SavedModel in dir with TensorFlow's C++ loader
// (TF_LoadSessionFromSavedModel, as TensorFlow Serving does): it imports the
// graph into a new Graph, restores the variables, runs the init op, and
// returns the session with the MetaGraphDef it loaded. Closing the session
// also frees its graph. Package savedmodel/runner builds signatures on it.
func LoadSavedModel(dir string, tags []string, opts SessionOptions) (*Session, *cpb.MetaGraphDef, error) {
	cs, meta, err := cgo.LoadSavedModel(dir, tags, opts.binding())
	if err != nil {
		return nil, nil, err
	}
	return &Session{sess: cs, ownsGraph: true}, meta, nil
}

// Graph is the graph the session runs.
func (s *Session) Graph() *Graph {
	if s == nil || s.sess == nil {
		return nil
	}
	return s.sess.Graph()
}

// ListDevices lists the devices the session can place operations on.
func (s *Session) ListDevices() ([]Device, error) {
	if s == nil || s.sess == nil {
		return nil, fmt.Errorf("list devices: not a session from NewSession or LoadSavedModel")
	}
	if s.closed.Load() {
		return nil, fmt.Errorf("list devices: the session is closed")
	}
	return s.sess.ListDevices()
}

// Close frees the session (and the graph of a loaded SavedModel); it is
// safe to call more than once.
func (s *Session) Close() error {
	if s == nil || s.sess == nil {
		return nil
	}
	s.closed.Store(true)
	err := s.sess.Close()
	if s.ownsGraph {
		s.sess.Graph().Close()
	}
	return err
}

// Run feeds Go values or *Tensor values, evaluates fetches and runs
// targets. The tensors it returns belong to the caller (Close them, or let
// the finalizer do it); tensors it made from Go feeds are freed before it returns.
func (s *Session) Run(feeds map[Output]any, fetches []Output, targets ...*Operation) ([]*Tensor, error) {
	outs, _, err := s.run(nil, feeds, fetches, targets)
	return outs, err
}

// RunWithOptions is Run with TensorFlow's RunOptions (a timeout, tracing,
// partition graphs) and the RunMetadata they asked for. opts may be nil.
func (s *Session) RunWithOptions(opts *cpb.RunOptions, feeds map[Output]any, fetches []Output, targets ...*Operation) ([]*Tensor, *cpb.RunMetadata, error) {
	return s.run(opts, feeds, fetches, targets)
}

func (s *Session) run(opts *cpb.RunOptions, feeds map[Output]any, fetches []Output, targets []*Operation) ([]*Tensor, *cpb.RunMetadata, error) {
	if s == nil || s.sess == nil {
		return nil, nil, fmt.Errorf("run: not a session from NewSession or LoadSavedModel")
	}
	tfeeds := make(map[Output]*Tensor, len(feeds))
	for o, v := range feeds {
		if o.Op == nil {
			return nil, nil, fmt.Errorf("feed: not an operation's output")
		}
		t, err := NewTensor(v)
		if err != nil {
			return nil, nil, fmt.Errorf("feed %s: %w", o.Name(), err)
		}
		if t != v {
			defer t.Close()
		}
		tfeeds[o] = t
	}
	return s.sess.RunWithOptions(opts, tfeeds, fetches, targets)
}

package tfgo

import (
	"fmt"

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

// Session runs the graph of a scope.
type Session struct {
	*cgo.Session
}

// NewSession finalizes the scope and opens a session on its graph; the
// scope's first error, if any, is returned instead.
func NewSession(s *Scope, opts *SessionOptions) (*Session, error) {
	g, err := s.Finalize()
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &SessionOptions{}
	}
	cs, err := cgo.NewSession(g, &cgo.SessionOptions{Target: opts.Target, Config: opts.configProto(), XLA: opts.XLA})
	if err != nil {
		return nil, err
	}
	return &Session{cs}, nil
}

// Run feeds Go values or *cgo.Tensor values, evaluates fetches and runs
// targets. The tensors it returns belong to the caller (Close them, or let
// the finalizer do it); tensors it made from Go feeds are freed before it returns.
func (s *Session) Run(feeds map[Output]any, fetches []Output, targets ...*cgo.Operation) ([]*cgo.Tensor, error) {
	outs, _, err := s.run(nil, feeds, fetches, targets)
	return outs, err
}

func (s *Session) run(opts *cpb.RunOptions, feeds map[Output]any, fetches []Output, targets []*cgo.Operation) ([]*cgo.Tensor, *cpb.RunMetadata, error) {
	tfeeds := make(map[Output]*cgo.Tensor, len(feeds))
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
	return s.Session.RunWithOptions(opts, tfeeds, fetches, targets)
}

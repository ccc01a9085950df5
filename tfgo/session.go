package tfgo

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gotf/gotf/cgo"
	cpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// SessionOptions configure a session. The zero value is TensorFlow's default.
type SessionOptions struct {
	// Target: "" runs in process; "grpc://host:port" uses a TensorFlow server.
	Target string
	// IntraOpThreads and InterOpThreads size the thread pools (0: TensorFlow
	// picks, one thread per CPU). The pools belong to the process and the
	// first session makes them: a later session may ask for 0 or for the
	// same sizes, and NewSession refuses any other (threadpools.go).
	IntraOpThreads, InterOpThreads int
	// DeviceCount limits or multiplies devices per type, e.g. {"CPU": 4}
	// gives /device:CPU:0..3 (logical devices on one host).
	DeviceCount map[string]int32
	// XLA turns on XLA auto-clustering: TensorFlow compiles clusters of ops
	// into fused kernels (see cgo.SessionOptions.XLA for its process-wide part).
	XLA bool

	// The GPU fields below are ConfigProto.gpu_options, what users of
	// tf.compat.v1.ConfigProto set most. The runtime reads them when it
	// first creates the process's GPU devices (the first session on a GPU
	// host): later sessions of the process keep the devices, and their
	// memory settings, that it made. On a machine without a GPU (or a
	// runtime built without CUDA) they are accepted, checked as below, and
	// have no effect. Errors name the field and come from NewSession.

	// VisibleDevices is visible_device_list: which physical GPUs the
	// process uses and in what order they become /device:GPU:0, 1, ...
	// ("1,0" makes physical GPU 1 the process's GPU 0), like
	// CUDA_VISIBLE_DEVICES but for TensorFlow only. A comma-separated list
	// of distinct non-negative integers; "" is every GPU.
	VisibleDevices string
	// AllowGrowth is allow_growth: the GPU allocator starts small and
	// grows as needed instead of reserving (almost) all of each GPU's
	// memory at start, so that other processes can share the GPU; memory
	// is not given back once allocated.
	AllowGrowth bool
	// MemoryFraction is per_process_gpu_memory_fraction: the share of
	// each visible GPU's total memory the process may allocate, in [0, 1]
	// (0: TensorFlow's default, nearly all of it). TensorFlow's values
	// above 1 (oversubscription through CUDA unified memory) are only
	// available through Config.
	MemoryFraction float64
	// VirtualGPUMemoryMB splits physical GPUs into logical ones
	// (gpu_options.experimental.virtual_devices, what
	// tf.config.set_logical_device_configuration does in TF2): entry i is
	// for the i-th visible GPU and lists the memory limit, in MB, of each
	// logical GPU made on it, e.g. {{2048, 2048}} turns GPU 0 into
	// /device:GPU:0 and /device:GPU:1 with 2 GB each; an empty entry
	// keeps a GPU whole. With VisibleDevices set, it needs one entry per
	// GPU listed there. Limits must be finite and non-negative.
	VirtualGPUMemoryMB [][]float32

	// Config, when set, is the starting ConfigProto the fields above amend
	// (a copy: the caller's proto is left as it is).
	Config *cpb.ConfigProto
}

// check refuses GPU options TensorFlow would refuse, or misread, once it
// creates the GPU devices, so that they fail on every machine, a
// CPU-only one included, and name the field.
func (o SessionOptions) check() error {
	if !(o.MemoryFraction >= 0 && o.MemoryFraction <= 1) {
		return fmt.Errorf("tfgo: SessionOptions.MemoryFraction must be in [0, 1], got %v", o.MemoryFraction)
	}
	visible := 0
	if o.VisibleDevices != "" {
		seen := map[uint64]bool{}
		for _, f := range strings.Split(o.VisibleDevices, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 31)
			if err != nil {
				return fmt.Errorf("tfgo: SessionOptions.VisibleDevices must be a comma-separated list of GPU indices like \"0,1\", got %q", o.VisibleDevices)
			}
			if seen[n] {
				return fmt.Errorf("tfgo: SessionOptions.VisibleDevices %q lists GPU %d twice", o.VisibleDevices, n)
			}
			seen[n] = true
			visible++
		}
	}
	for i, limits := range o.VirtualGPUMemoryMB {
		for j, mb := range limits {
			if !(mb >= 0) || math.IsInf(float64(mb), 1) {
				return fmt.Errorf("tfgo: SessionOptions.VirtualGPUMemoryMB[%d][%d] must be a non-negative number of MB, got %v", i, j, mb)
			}
		}
	}
	if n := len(o.VirtualGPUMemoryMB); n > 0 && visible > 0 && n != visible {
		return fmt.Errorf("tfgo: SessionOptions.VirtualGPUMemoryMB has %d entries for the %d GPUs of VisibleDevices %q (one per visible GPU)", n, visible, o.VisibleDevices)
	}
	return nil
}

func (o SessionOptions) configProto() *cpb.ConfigProto {
	c := &cpb.ConfigProto{}
	if o.Config != nil {
		c = proto.Clone(o.Config).(*cpb.ConfigProto)
	}
	if o.VisibleDevices != "" || o.AllowGrowth || o.MemoryFraction > 0 || len(o.VirtualGPUMemoryMB) > 0 {
		if c.GpuOptions == nil {
			c.GpuOptions = &cpb.GPUOptions{}
		}
		g := c.GpuOptions
		if o.VisibleDevices != "" {
			g.VisibleDeviceList = strings.ReplaceAll(o.VisibleDevices, " ", "")
		}
		if o.AllowGrowth {
			g.AllowGrowth = true
		}
		if o.MemoryFraction > 0 {
			g.PerProcessGpuMemoryFraction = o.MemoryFraction
		}
		if len(o.VirtualGPUMemoryMB) > 0 {
			if g.Experimental == nil {
				g.Experimental = &cpb.GPUOptions_Experimental{}
			}
			g.Experimental.VirtualDevices = nil
			for _, limits := range o.VirtualGPUMemoryMB {
				g.Experimental.VirtualDevices = append(g.Experimental.VirtualDevices,
					&cpb.GPUOptions_Experimental_VirtualDevices{MemoryLimitMb: append([]float32(nil), limits...)})
			}
		}
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
	if err := opts.check(); err != nil {
		return nil, err
	}
	b := opts.binding()
	if err := claimThreadPools(opts, b.Config); err != nil {
		return nil, err
	}
	cs, err := cgo.NewSession(g, b)
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
	if err := opts.check(); err != nil {
		return nil, nil, err
	}
	b := opts.binding()
	if err := claimThreadPools(opts, b.Config); err != nil {
		return nil, nil, err
	}
	cs, meta, err := cgo.LoadSavedModel(dir, tags, b)
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

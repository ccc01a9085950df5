package tfgo

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/gotf/gotf/cgo"
)

// Output is a tensor in the graph: an output of an operation.
type Output = cgo.Output

// Scope is where operations are added: a graph, a name prefix, a device and
// control dependencies. Scopes derived from one root share the graph, the
// set of used names and the first error; once an error happened, later
// operations are not added and Err / Finalize report it.
type Scope struct {
	state       *scopeState
	namespace   string
	device      string
	controlDeps []*Operation
	jitScope    string
	// segment is the recomputation segment the scope's ops join (WithRecompute).
	segment *recomputeSegment
}

type scopeState struct {
	graph *Graph
	mu    sync.Mutex
	names map[string]int
	err   error
	// variables is the graph's variable collection (variable.go).
	variables variableCollection
	// recompute maps ops to their recomputation segments (recompute.go),
	// here because Gradients is usually called with another scope.
	recompute recomputeState
}

// NewScope returns a root scope on a new, empty graph.
func NewScope() *Scope { return NewScopeWithGraph(NewGraph()) }

// NewScopeWithGraph returns a root scope that adds to an existing graph.
func NewScopeWithGraph(g *Graph) *Scope {
	return &Scope{state: &scopeState{graph: g, names: map[string]int{}}}
}

// ErrInvalidScope is the error of a nil or zero Scope: every method works
// on one, builds nothing and reports this error.
var ErrInvalidScope = errors.New("tfgo: a nil or zero Scope (make one with tfgo.NewScope)")

// valid reports whether s was made by NewScope (or derived from one).
func (s *Scope) valid() bool { return s != nil && s.state != nil }

// Graph is the scope's graph (nil for a nil or zero Scope).
func (s *Scope) Graph() *Graph {
	if !s.valid() {
		return nil
	}
	return s.state.graph
}

// SubScope returns a scope whose operation names are prefixed with
// namespace ("block_0/attention/..."); a namespace used twice gets a suffix
// ("dense_1"), as TensorFlow's name scopes do.
func (s *Scope) SubScope(namespace string) *Scope {
	if !s.valid() {
		return s
	}
	c := *s
	c.namespace = s.uniqueName(namespace)
	return &c
}

// WithDevice returns a scope that places its operations on device, e.g.
// "/device:CPU:1", "/device:GPU:0" or "/job:worker/task:1/device:CPU:0".
func (s *Scope) WithDevice(device string) *Scope {
	if !s.valid() {
		return s
	}
	c := *s
	c.device = device
	return &c
}

// WithControlDependencies returns a scope whose operations run after ops.
func (s *Scope) WithControlDependencies(ops ...*Operation) *Scope {
	if !s.valid() {
		return s
	}
	c := *s
	c.controlDeps = append(append([]*Operation(nil), s.controlDeps...), ops...)
	return &c
}

// WithoutControlDependencies returns s without its control dependencies,
// as tf.control_dependencies(None) clears them: for state that must not
// wait for the ops s waits for (a variable created while building an
// update that runs after the forward pass is initialised on its own).
func (s *Scope) WithoutControlDependencies() *Scope {
	if !s.valid() {
		return s
	}
	c := *s
	c.controlDeps = nil
	return &c
}

// WithXLA returns a scope whose operations XLA compiles into one cluster
// where it can (the ops are marked _XlaCompile, as TF1's
// tf.xla.experimental.jit_scope marks them). This is how XLA fuses ops on
// CPUs, where auto-clustering of unmarked ops is off unless the process
// starts with TF_XLA_FLAGS=--tf_xla_cpu_global_jit.
func (s *Scope) WithXLA() *Scope {
	if !s.valid() {
		return s
	}
	c := *s
	c.jitScope = s.uniqueName("jit_scope")
	return &c
}

// Err is the first error of any operation added through this scope's tree.
func (s *Scope) Err() error {
	if !s.valid() {
		return ErrInvalidScope
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	return s.state.err
}

// Finalize returns the graph, or the first error met while building it.
func (s *Scope) Finalize() (*Graph, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	return s.state.graph, nil
}

// UpdateErr records err as the scope's error unless one is already recorded.
// Helpers built on Scope use it for errors of their own.
func (s *Scope) UpdateErr(op string, err error) {
	if err == nil || !s.valid() {
		return
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	if s.state.err == nil {
		if _, ok := err.(*Error); !ok && op != "" {
			err = fmt.Errorf("op %q: %w", op, err)
		}
		s.state.err = err
	}
}

// uniqueName returns namespace/name, suffixed "_N" when already taken.
func (s *Scope) uniqueName(name string) string {
	full := name
	if s.namespace != "" {
		full = s.namespace + "/" + name
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	n, taken := s.state.names[full]
	if !taken && s.state.graph.Operation(full) == nil {
		s.state.names[full] = 1
		return full
	}
	for {
		n++
		cand := fmt.Sprintf("%s_%d", full, n-1)
		if _, t := s.state.names[cand]; !t && s.state.graph.Operation(cand) == nil {
			s.state.names[full] = n
			s.state.names[cand] = 1
			return cand
		}
	}
}

// opName picks the name of a new operation: the explicit name, else the op type.
func (s *Scope) opName(name, opType string) string {
	if name == "" {
		name = opType
	}
	return s.uniqueName(strings.TrimSuffix(name, "/"))
}

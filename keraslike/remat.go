package keraslike

import (
	"fmt"
	"slices"
	"sync"

	"github.com/gotf/gotf/tfgo"
)

// The modes of RematScope.
const (
	// RematFull recomputes every layer made in the scope.
	RematFull = "full"
	// RematLargerThan recomputes the layers whose output has more than
	// OutputSizeThreshold elements per example.
	RematLargerThan = "larger_than"
	// RematListOfLayers recomputes the layers named in LayerNames.
	RematListOfLayers = "list_of_layers"
	// RematActivations recomputes only the activation function of layers
	// that have one (Dense, Activation).
	RematActivations = "activations"
)

// RematScope is keras.RematScope: gradient checkpointing (rematerialization)
// for the layers made inside WithRematScope. In a training graph a layer so
// marked keeps only its inputs for the backward pass, which recomputes its
// forward ops from them (tfgo.Scope.WithRecompute), trading compute for
// activation memory. Dropout inside a recomputed layer draws the same mask
// again (its seed is not recomputed).
type RematScope struct {
	// Mode is RematFull, RematLargerThan, RematListOfLayers or
	// RematActivations ("" turns rematerialization off, Keras' None).
	Mode string
	// OutputSizeThreshold is RematLargerThan's threshold in elements per
	// example (unknown dimensions count 1, as in Keras); 0 means Keras'
	// default, 1024.
	OutputSizeThreshold int64
	// LayerNames are RematListOfLayers' layers, by name; a composite
	// built-in (TransformerBlock, MultiHeadAttention) applies the list to
	// its sublayers too.
	LayerNames []string
}

// check refuses what keras.RematScope refuses: an unknown mode.
func (r RematScope) check() error {
	switch r.Mode {
	case "", RematFull, RematLargerThan, RematListOfLayers, RematActivations:
	default:
		return fmt.Errorf("keraslike: invalid remat mode %s (supported: full, activations, larger_than, list_of_layers, or \"\" for none)", quoted(r.Mode))
	}
	if r.OutputSizeThreshold < 0 {
		return fmt.Errorf("keraslike: remat output_size_threshold must be >= 0, got %d", r.OutputSizeThreshold)
	}
	return nil
}

var remats struct {
	sync.Mutex
	stack []*RematScope
}

// WithRematScope makes the layers made by build rematerialize as r says,
// as layers made inside `with keras.RematScope(...)` do (a layer keeps the
// mode it was made with). Scopes nest; the innermost wins. An invalid mode
// is an error and build does not run.
func WithRematScope(r RematScope, build func()) error {
	if err := r.check(); err != nil {
		return err
	}
	if r.Mode == RematLargerThan && r.OutputSizeThreshold == 0 {
		r.OutputSizeThreshold = 1024
	}
	r.LayerNames = slices.Clone(r.LayerNames)
	remats.Lock()
	remats.stack = append(remats.stack, &r)
	remats.Unlock()
	defer func() {
		remats.Lock()
		remats.stack = remats.stack[:len(remats.stack)-1]
		remats.Unlock()
	}()
	if build != nil {
		build()
	}
	return nil
}

// currentRemat is the innermost RematScope, or nil.
func currentRemat() *RematScope {
	remats.Lock()
	defer remats.Unlock()
	if n := len(remats.stack); n > 0 && remats.stack[n-1].Mode != "" {
		return remats.stack[n-1]
	}
	return nil
}

// SetRemat sets the layer's rematerialization after it was made (nil
// turns it off), and its tracked sublayers'; set it before the model is
// compiled (the training graph is built then). An invalid mode fails the
// layer's first call in a training graph (Compile returns the error naming
// the layer); Model.SetRemat checks it at once.
func (b *Base) SetRemat(r *RematScope) {
	if b == nil {
		return
	}
	if r != nil {
		c := *r
		if c.Mode == RematLargerThan && c.OutputSizeThreshold == 0 {
			c.OutputSizeThreshold = 1024
		}
		c.LayerNames = slices.Clone(c.LayerNames)
		if c.Mode == "" {
			r = nil
		} else {
			r = &c
		}
	}
	b.remat = r
	for _, sub := range b.sublayers {
		if t, ok := sub.(interface{ SetRemat(*RematScope) }); ok {
			t.SetRemat(r)
		}
	}
}

// Remat is the layer's rematerialization mode (nil: none).
func (b *Base) Remat() *RematScope {
	if b == nil {
		return nil
	}
	return b.remat
}

// SetRemat sets the rematerialization of every layer of the model (and of
// their sublayers), the switch for a model whose layers were made outside
// a RematScope: RematScope{Mode: RematFull} recomputes each top-level layer
// (each TransformerBlock of a GPT) in the backward pass. Call it before
// Compile.
func (m *Model) SetRemat(r *RematScope) error {
	if m == nil {
		return nil
	}
	if r != nil {
		if err := r.check(); err != nil {
			return err
		}
	}
	for _, l := range m.layers {
		if t, ok := l.(interface{ SetRemat(*RematScope) }); ok {
			t.SetRemat(r)
		}
	}
	return nil
}

// call runs a layer's call f with ctx: on the layer's device when it has
// one (Base.SetDevice), its ops in a recomputation segment when the
// layer's RematScope and the pass (training only: an inference graph has
// no backward pass) say so. Models call their layers through it, and
// built-in composites their sublayers.
func (c *Context) call(l Layer, f func(*Context) tfgo.Output) tfgo.Output {
	c = c.onDevice(l)
	r := rematOf(l)
	if c == nil || r == nil || !c.Training {
		return f(c)
	}
	if err := r.check(); err != nil {
		c.Fail(l, "%v", err)
		return tfgo.Output{}
	}
	if _, act := l.(*Activation); r.Mode == RematActivations && !act {
		return f(c) // the layer recomputes its activation itself (activationScope)
	}
	if r.Mode == RematListOfLayers && !slices.Contains(r.LayerNames, l.Name()) {
		return f(c)
	}
	cc := *c
	cc.Scope = c.Scope.WithRecompute()
	y := f(&cc)
	if r.Mode == RematLargerThan && outputSize(y) <= r.OutputSizeThreshold {
		cc.Scope.DropRecompute()
	}
	return y
}

// onDevice is c for a call of l: with l's own device, if it has one, on
// the ops and on the weights it creates, which its sublayers then inherit
// (their contexts derive from it) unless they have a device of their own.
func (c *Context) onDevice(l Layer) *Context {
	dev := deviceOf(l)
	if c == nil || dev == "" {
		return c
	}
	cc := *c
	cc.Scope = c.Scope.WithDevice(dev)
	cc.Weights = c.weights().WithDevice(dev)
	return &cc
}

// deviceOf is the layer's own device, if it has one.
func deviceOf(l Layer) string {
	if d, ok := l.(interface{ Device() string }); ok {
		return d.Device()
	}
	return ""
}

// callLayer is l.Call(ctx, inputs...) through Context.call.
func callLayer(ctx *Context, l Layer, inputs ...tfgo.Output) tfgo.Output {
	return ctx.call(l, func(c *Context) tfgo.Output { return l.Call(c, inputs...) })
}

// activationScope is where a layer applies its activation function: a
// recomputation segment of its own under RematActivations in training.
func (c *Context) activationScope(l Layer, s *tfgo.Scope) *tfgo.Scope {
	if r := rematOf(l); r != nil && r.Mode == RematActivations && c != nil && c.Training {
		return s.WithRecompute()
	}
	return s
}

// rematOf is the layer's rematerialization, if it has one.
func rematOf(l Layer) *RematScope {
	if r, ok := l.(interface{ Remat() *RematScope }); ok {
		return r.Remat()
	}
	return nil
}

// outputSize is Keras' compute_size for remat on a functional model's
// symbolic output: the product of the output's dimensions per example (the
// batch, and unknown dimensions, count 1), so that the decision does not
// depend on CompileOptions.BatchSize.
func outputSize(y tfgo.Output) int64 {
	if y.Op == nil {
		return 0
	}
	n := int64(1)
	for i, d := range staticShape(y) {
		if i > 0 && d > 0 {
			n *= d
		}
	}
	return n
}

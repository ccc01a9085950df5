package tfgo

import (
	"fmt"
	"sort"
	"sync"
)

// GradFunc computes the gradients of an operation's inputs from the
// gradients of its outputs. grads[i] is the gradient flowing into output i,
// or the zero Output when nothing depends on that output. It returns one
// gradient per input; the zero Output means "no gradient" (an integer
// input, an index, a shape).
type GradFunc func(s *Scope, op *Operation, grads []Output) ([]Output, error)

var gradRegistry = struct {
	sync.RWMutex
	fns map[string]GradFunc
}{fns: map[string]GradFunc{}}

// RegisterGradient registers the gradient function of an op type,
// replacing any earlier one (as tf.RegisterGradient does for Python).
func RegisterGradient(opType string, fn GradFunc) {
	gradRegistry.Lock()
	defer gradRegistry.Unlock()
	gradRegistry.fns[opType] = fn
}

// RegisterNoGradient declares that an op type has no gradient: gradients
// stop there without an error (as tf.no_gradient).
func RegisterNoGradient(opType string) {
	RegisterGradient(opType, func(*Scope, *Operation, []Output) ([]Output, error) { return nil, nil })
}

func lookupGradient(opType string) (GradFunc, bool) {
	gradRegistry.RLock()
	defer gradRegistry.RUnlock()
	fn, ok := gradRegistry.fns[opType]
	return fn, ok
}

// gradientType is the op type whose gradient applies to op: its
// _gradient_op_type attribute where it has one (as TensorFlow's
// custom_gradient marks an IdentityN), else its type.
func gradientType(op *Operation) string {
	if v, err := op.Attr("_gradient_op_type"); err == nil {
		if t, ok := v.(string); ok && t != "" {
			return t
		}
	}
	return op.Type()
}

// GradientTypes lists the op types that have a registered gradient.
func GradientTypes() []string {
	gradRegistry.RLock()
	defer gradRegistry.RUnlock()
	var ts []string
	for t := range gradRegistry.fns {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// GradientsOption configures Gradients.
type GradientsOption func(*gradientsConfig)

type gradientsConfig struct {
	zeros bool
	stop  map[*Operation]bool
}

// UnconnectedZeros makes Gradients return zeros (shaped like x) for an x
// that ys do not depend on, instead of the zero Output
// (unconnected_gradients=tf.UnconnectedGradients.ZERO).
func UnconnectedZeros() GradientsOption { return func(c *gradientsConfig) { c.zeros = true } }

// StopGradients treats the outputs of ops as constants (stop_gradients in tf.gradients).
func StopGradients(ops ...*Operation) GradientsOption {
	return func(c *gradientsConfig) {
		for _, op := range ops {
			c.stop[op] = true
		}
	}
}

// Gradients adds the reverse-mode derivatives of sum(ys · gradYs) with
// respect to each x (tf.gradients). gradYs may be nil (ones, i.e. the
// gradient of sum(ys)) or hold one upstream gradient per y (a zero Output
// for ones). An x may be a variable handle (VarHandleOp output): its
// gradient is then the dense gradient of the variable's value, flowing
// through ReadVariableOp and ResourceGather.
//
// The result has one entry per x: the zero Output when ys do not depend on
// x (or zeros with UnconnectedZeros). An op on the path without a
// registered gradient is an error naming the op; errors stick to the scope.
//
// The gradient ops of a forward op that has a device (Scope.WithDevice),
// and the sum of the gradients flowing into its outputs, are put on that
// device, as TensorFlow's Python does (colocate_gradients_with_ops, always
// on in TF2): a model split over devices runs each part's backward pass
// where its forward pass and weights are, instead of gathering it on s's
// device. The other gradient ops get s's device.
func Gradients(s *Scope, ys, xs, gradYs []Output, opts ...GradientsOption) []Output {
	out := make([]Output, len(xs))
	if s.Err() != nil {
		return out
	}
	cfg := gradientsConfig{stop: map[*Operation]bool{}}
	for _, o := range opts {
		o(&cfg)
	}
	if gradYs != nil && len(gradYs) != len(ys) {
		s.UpdateErr("gradients", fmt.Errorf("%d gradYs for %d ys", len(gradYs), len(ys)))
		return out
	}
	for i, o := range append(append([]Output{}, ys...), xs...) {
		if o.Op == nil {
			s.UpdateErr("gradients", fmt.Errorf("ys/xs entry %d is not an operation's output", i))
			return out
		}
	}
	gs := s.SubScope("gradients")
	// The backward pass is never part of a recomputation segment, even
	// when Gradients is called inside one.
	gs.segment = nil
	b := newBackprop(gs, ys, xs, cfg.stop)

	for i, y := range ys {
		var g Output
		if gradYs != nil {
			g = gradYs[i]
		}
		if g.Op == nil {
			g = OnesLike(gs, y)
		}
		b.add(y, g)
	}
	for _, op := range b.reverseTopo() {
		if err := b.backprop(op); err != nil {
			gs.UpdateErr(op.Name(), err)
			return out
		}
	}
	for i, x := range xs {
		out[i] = b.sum(b.opScope(x.Op), x)
		if out[i].Op == nil && cfg.zeros {
			out[i] = zerosLike(gs, x)
		}
	}
	return out
}

// backprop is the state of one Gradients call.
type backprop struct {
	s       *Scope
	between map[*Operation]bool // ops on a path from some x to some y
	stop    map[*Operation]bool
	ys      []Output
	partial map[Output][]Output // gradients flowing into each output, not yet summed
	// recomputed holds the clones of the segments the walk has reached
	// (recompute.go); stateful caches OpDef.is_stateful by op type.
	recomputed map[*recomputeSegment]*recomputation
	stateful   map[string]bool
}

func newBackprop(s *Scope, ys, xs []Output, stop map[*Operation]bool) *backprop {
	// Ops reachable forward from xs ...
	fwd := map[*Operation]bool{}
	var visitFwd func(op *Operation)
	visitFwd = func(op *Operation) {
		if fwd[op] {
			return
		}
		fwd[op] = true
		for i := 0; i < op.NumOutputs(); i++ {
			for _, c := range op.Consumers(i) {
				visitFwd(c.Op)
			}
		}
	}
	for _, x := range xs {
		visitFwd(x.Op)
	}
	// ... and backward from ys.
	between := map[*Operation]bool{}
	seen := map[*Operation]bool{}
	var visitBwd func(op *Operation)
	visitBwd = func(op *Operation) {
		if seen[op] {
			return
		}
		seen[op] = true
		if fwd[op] {
			between[op] = true
		}
		for _, in := range op.Inputs() {
			visitBwd(in.Op)
		}
	}
	for _, y := range ys {
		visitBwd(y.Op)
	}
	return &backprop{s: s, between: between, stop: stop, ys: ys, partial: map[Output][]Output{},
		recomputed: map[*recomputeSegment]*recomputation{}, stateful: map[string]bool{}}
}

// reverseTopo orders the ops between xs and ys so that every op comes
// after all the ops that consume its outputs.
func (b *backprop) reverseTopo() []*Operation {
	var order []*Operation
	done := map[*Operation]bool{}
	var visit func(op *Operation)
	visit = func(op *Operation) {
		if done[op] || !b.between[op] {
			return
		}
		done[op] = true
		for _, in := range op.Inputs() {
			visit(in.Op)
		}
		order = append(order, op)
	}
	for _, y := range b.ys {
		visit(y.Op)
	}
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	return order
}

func (b *backprop) add(o Output, g Output) {
	if g.Op != nil {
		b.partial[o] = append(b.partial[o], g)
	}
}

// opScope is where the gradient ops of op go: b.s, on op's device when op
// has one (a forward op with no device leaves b.s's own device alone).
func (b *backprop) opScope(op *Operation) *Scope {
	if d := op.Device(); d != "" {
		return b.s.WithDevice(d)
	}
	return b.s
}

// sum adds up the partial gradients of an output (AddN) in s, or returns
// the zero Output.
func (b *backprop) sum(s *Scope, o Output) Output {
	ps := b.partial[o]
	switch len(ps) {
	case 0:
		return Output{}
	case 1:
		return ps[0]
	}
	sum := AddN(s, ps)
	b.partial[o] = []Output{sum}
	return sum
}

func (b *backprop) backprop(op *Operation) error {
	ds := b.opScope(op)
	grads := make([]Output, op.NumOutputs())
	any := false
	for i := range grads {
		grads[i] = b.sum(ds, op.Output(i))
		any = any || grads[i].Op != nil
	}
	if !any || b.stop[op] || !b.feedsFromBetween(op) {
		return nil
	}
	fn, ok := lookupGradient(gradientType(op))
	if !ok {
		return fmt.Errorf("no gradient registered for op type %s (op %q); register one with tfgo.RegisterGradient, or stop the gradient", op.Type(), op.Name())
	}
	// The gradient function reads the recomputed forward values, while the
	// gradients still flow to the inputs of op itself: the walk and the
	// partial sums know only the original graph.
	fop, err := b.forwardOp(op, grads)
	if err != nil {
		return err
	}
	gs := ds.SubScope(op.Name() + "_grad")
	ins, err := fn(gs, fop, grads)
	if err != nil {
		return fmt.Errorf("gradient of %s (op %q): %w", op.Type(), op.Name(), err)
	}
	if err := gs.Err(); err != nil {
		return err
	}
	if len(ins) > op.NumInputs() {
		return fmt.Errorf("gradient of %s (op %q) returned %d values for %d inputs", op.Type(), op.Name(), len(ins), op.NumInputs())
	}
	for i, g := range ins {
		in := op.Input(i)
		if g.Op != nil && b.between[in.Op] {
			b.add(in, g)
		}
	}
	return nil
}

// feedsFromBetween reports whether some input of op depends on an x, i.e.
// whether its gradient is needed at all.
func (b *backprop) feedsFromBetween(op *Operation) bool {
	for _, in := range op.Inputs() {
		if b.between[in.Op] {
			return true
		}
	}
	return false
}

func zerosLike(s *Scope, x Output) Output {
	if x.DataType() == Resource {
		// The gradient of a variable handle is shaped like the variable.
		shape := VariableShape(s, x)
		dt, err := handleDType(x)
		if err != nil {
			s.UpdateErr(x.Op.Name(), err)
			return Output{}
		}
		return Fill(s, shape, Const(s.SubScope("zero"), zeroOf(dt)))
	}
	return ZerosLike(s, x)
}

// handleDType is the dtype of the variable a resource handle refers to.
func handleDType(h Output) (DataType, error) {
	if h.Op.Type() != "VarHandleOp" {
		return 0, fmt.Errorf("cannot tell the dtype of resource %s (a %s)", h.Name(), h.Op.Type())
	}
	v, err := h.Op.Attr("dtype")
	if err != nil {
		return 0, err
	}
	return v.(DataType), nil
}

package keraslike

import (
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/gotf/gotf/tfgo"
)

// LossScaleOptions are keras.optimizers.LossScaleOptimizer's arguments;
// zero values take Keras' defaults. Clipping, weight decay and the like
// belong on the inner optimizer, as Keras requires.
type LossScaleOptions struct {
	// InitialScale is the starting loss scale (0: 2^15).
	InitialScale float64
	// DynamicGrowthSteps is how many consecutive steps with finite
	// gradients double the scale (0: 2000).
	DynamicGrowthSteps int
	// Name is the optimizer's name (default "loss_scale_optimizer", made
	// unique as Keras makes it).
	Name string
}

// LossScaleOptimizer is keras.optimizers.LossScaleOptimizer: dynamic loss
// scaling around an inner optimizer, for mixed precision training.
//
// The training step multiplies the loss by the scale (ScaleLoss) before
// taking gradients, and Apply receives the gradients of that scaled loss.
// When every gradient is finite, Apply divides them by the scale, applies
// the inner optimizer, and doubles the scale after DynamicGrowthSteps such
// steps in a row; otherwise it skips the inner update altogether (weights,
// slots and the inner iteration counter stay as they were), halves the
// scale and restarts the count. The choice is made in the graph, within
// the one session run of the step.
//
// Its variables are Keras': "<name>/iteration" (Keras' own counter of the
// wrapper, never advanced: Iterations is the inner optimizer's),
// "<name>/step_counter" (int64) and "<name>/dynamic_scale" (float32), then
// the inner optimizer's. Keras also lists "<name>/learning_rate"; like the
// other optimizers here, this one has no learning-rate variable.
type LossScaleOptimizer struct {
	name         string
	inner        Optimizer
	initialScale float64
	growthSteps  int

	iters, counter, scale *tfgo.Variable
}

// NewLossScaleOptimizer returns keras.optimizers.LossScaleOptimizer(inner,
// initial_scale, dynamic_growth_steps, name). A nil or zero inner
// optimizer, an inner LossScaleOptimizer (the scale would be applied
// twice), a negative or non-finite initial scale and a negative number of
// growth steps are errors.
func NewLossScaleOptimizer(inner Optimizer, opts LossScaleOptions) (*LossScaleOptimizer, error) {
	if inner == nil {
		return nil, errors.New("LossScaleOptimizer: nil inner optimizer")
	}
	if v := reflect.ValueOf(inner); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, fmt.Errorf("LossScaleOptimizer: nil inner optimizer (%T)", inner)
	}
	if _, ok := inner.(*LossScaleOptimizer); ok {
		return nil, fmt.Errorf("LossScaleOptimizer: the inner optimizer %q is a LossScaleOptimizer already", inner.Name())
	}
	if inner.Name() == "" {
		return nil, fmt.Errorf("LossScaleOptimizer: zero inner optimizer %T (make one with NewSGD, NewAdam, NewAdamW or OptimizerByName)", inner)
	}
	if opts.InitialScale == 0 {
		opts.InitialScale = 1 << 15
	}
	// Keras accepts these and then trains with a scale that is never
	// finite and positive (every step skipped) or never grows.
	if opts.InitialScale < 0 || math.IsNaN(opts.InitialScale) || math.IsInf(opts.InitialScale, 0) || float32(opts.InitialScale) == 0 ||
		math.IsInf(float64(float32(opts.InitialScale)), 0) {
		return nil, fmt.Errorf("LossScaleOptimizer: initial scale %v is not a positive, finite float32", opts.InitialScale)
	}
	if opts.DynamicGrowthSteps == 0 {
		opts.DynamicGrowthSteps = 2000
	}
	if opts.DynamicGrowthSteps < 1 {
		return nil, fmt.Errorf("LossScaleOptimizer: dynamic growth steps %d < 1", opts.DynamicGrowthSteps)
	}
	name := opts.Name
	if name == "" {
		name = autoName("LossScaleOptimizer")
	}
	return &LossScaleOptimizer{name: name, inner: inner, initialScale: opts.InitialScale, growthSteps: opts.DynamicGrowthSteps}, nil
}

// Name is the optimizer's name ("loss_scale_optimizer").
func (o *LossScaleOptimizer) Name() string {
	if o == nil {
		return ""
	}
	return o.name
}

// Inner is the wrapped optimizer.
func (o *LossScaleOptimizer) Inner() Optimizer {
	if o == nil {
		return nil
	}
	return o.inner
}

// InitialScale is the loss scale the optimizer starts from.
func (o *LossScaleOptimizer) InitialScale() float64 {
	if o == nil {
		return 0
	}
	return o.initialScale
}

// DynamicGrowthSteps is how many finite steps in a row double the scale.
func (o *LossScaleOptimizer) DynamicGrowthSteps() int {
	if o == nil {
		return 0
	}
	return o.growthSteps
}

// Iterations is the inner optimizer's step counter, as Keras'
// LossScaleOptimizer.iterations: skipped steps do not count.
func (o *LossScaleOptimizer) Iterations() *tfgo.Variable {
	if o == nil || o.inner == nil {
		return nil
	}
	return o.inner.Iterations()
}

// DynamicScale is the current loss scale (float32 scalar), nil until the
// first ScaleLoss or Apply.
func (o *LossScaleOptimizer) DynamicScale() *tfgo.Variable {
	if o == nil {
		return nil
	}
	return o.scale
}

// StepCounter counts the finite steps since the scale last changed (int64
// scalar), nil until the first ScaleLoss or Apply.
func (o *LossScaleOptimizer) StepCounter() *tfgo.Variable {
	if o == nil {
		return nil
	}
	return o.counter
}

// Variables lists the optimizer's variables in Keras order: its own
// (iteration, step_counter, dynamic_scale) once built, then the inner
// optimizer's.
func (o *LossScaleOptimizer) Variables() []*tfgo.Variable {
	if o == nil {
		return nil
	}
	var vs []*tfgo.Variable
	if o.scale != nil {
		vs = append(vs, o.iters, o.counter, o.scale)
	}
	if o.inner != nil {
		vs = append(vs, o.inner.Variables()...)
	}
	return vs
}

// usable reports whether ops may be added: errors go on the scope.
func (o *LossScaleOptimizer) usable(s *tfgo.Scope) bool {
	if s.Err() != nil {
		return false
	}
	if o == nil || o.inner == nil {
		s.UpdateErr("optimizer", errors.New("keraslike: zero LossScaleOptimizer (make one with NewLossScaleOptimizer)"))
		return false
	}
	return true
}

// build creates the own variables on first use, in s's namespace with no
// control dependencies, as Keras' build does before the inner
// optimizer's: the step's control dependencies must not gate their
// initializers.
func (o *LossScaleOptimizer) build(s *tfgo.Scope) {
	if o.scale != nil {
		return
	}
	vs := s.WithoutControlDependencies().SubScope(o.name)
	iters := tfgo.NewVariable(vs, "iteration", tfgo.Int64, []int64{}, tfgo.Zeros(), tfgo.Trainable(false))
	counter := tfgo.NewVariable(vs, "step_counter", tfgo.Int64, []int64{}, tfgo.Zeros(), tfgo.Trainable(false))
	scale := tfgo.NewVariable(vs, "dynamic_scale", tfgo.Float, []int64{}, tfgo.Constant(o.initialScale), tfgo.Trainable(false))
	if s.Err() == nil {
		o.iters, o.counter, o.scale = iters, counter, scale
	}
}

// ScaleLoss returns loss times the current scale, as Keras' scale_loss:
// the training step takes the gradients of this. The result is float32
// (float64 for a float64 loss), as Keras' multiply promotes a float16
// loss by the float32 scale. The first call (or Apply) creates the
// optimizer's variables under s's namespace, so s must be the scope whose
// root namespace the optimizer's variables belong in (the one Apply gets).
func (o *LossScaleOptimizer) ScaleLoss(s *tfgo.Scope, loss tfgo.Output) tfgo.Output {
	if !o.usable(s) {
		return tfgo.Output{}
	}
	if loss.Op == nil {
		s.UpdateErr(o.name, fmt.Errorf("optimizer %q: ScaleLoss of a zero Output", o.name))
		return tfgo.Output{}
	}
	o.build(s)
	if s.Err() != nil {
		return tfgo.Output{}
	}
	ls := s.SubScope(o.name + "_scale_loss")
	if loss.DataType() == tfgo.Double {
		return tfgo.Mul(ls, loss, castTo(ls, o.scale.Read(ls), tfgo.Double))
	}
	return tfgo.Mul(ls, castTo(ls, loss, tfgo.Float), o.scale.Read(ls))
}

// Apply adds one loss-scaled step; grads are the gradients of the scaled
// loss. The inner update is a TF1 dataflow conditional: the gradients
// pass through Switch ops on "all finite", and every op the inner
// optimizer adds also has a control input from a pivot on the true side,
// so when a gradient is not finite the whole inner update is dead and the
// executor skips it. A Merge of the two sides then gates the scale and
// counter updates (computed with SelectV2 from values read before), so
// the returned op completes either way. XLA's clustering leaves Switch
// and Merge out, so s may be an XLA-marked scope (Compile passes the
// model's root scope, which is not).
func (o *LossScaleOptimizer) Apply(s *tfgo.Scope, weights []*Weight, grads []tfgo.Output) *tfgo.Operation {
	if !o.usable(s) {
		return nil
	}
	if len(weights) != len(grads) {
		s.UpdateErr(o.name, fmt.Errorf("optimizer %q: %d weights and %d gradients", o.name, len(weights), len(grads)))
		return nil
	}
	o.build(s)
	if s.Err() != nil {
		return nil
	}
	var gradOps []*tfgo.Operation
	for _, g := range grads {
		if g.Op != nil {
			gradOps = append(gradOps, g.Op)
		}
	}
	us := s.SubScope(o.name + "_update").WithControlDependencies(gradOps...)
	finite := allFinite(us, grads)
	scale := o.scale.Read(us)
	counter := o.counter.Read(us)

	predF, predT := tfgo.Switch(us, finite, finite)
	fs := us.SubScope("finite")
	pivot := tfgo.Identity(fs, predT)
	fs = fs.WithControlDependencies(pivot.Op)
	unscaled := make([]tfgo.Output, len(grads))
	for i, g := range grads {
		if g.Op == nil {
			continue
		}
		_, gt := tfgo.Switch(us, g, finite)
		dt := g.DataType()
		if dt != tfgo.Double {
			gt, dt = castTo(fs, gt, tfgo.Float), tfgo.Float
		}
		unscaled[i] = tfgo.RealDiv(fs, gt, castTo(fs, scale, dt))
	}
	// The inner optimizer names its variables and update from the scope it
	// gets ("adam/iteration", as Keras): s's namespace, with the pivot.
	innerOp := o.inner.Apply(s.WithControlDependencies(pivot.Op), weights, unscaled)
	if innerOp == nil || s.Err() != nil {
		if s.Err() == nil {
			s.UpdateErr(o.name, fmt.Errorf("optimizer %q: the inner optimizer %q added no update", o.name, o.inner.Name()))
		}
		return nil
	}
	doneT := tfgo.Identity(fs.WithControlDependencies(innerOp), pivot)
	doneF := tfgo.Identity(us.SubScope("nonfinite"), predF)
	joined, _ := tfgo.Merge(us, []tfgo.Output{doneF, doneT})

	// Keras: finite → counter == growth-1 ? (0, scale·2) : (counter+1,
	// scale); not finite → (0, scale·0.5).
	c64 := func(v int64) tfgo.Output { return tfgo.Const(us, v) }
	c32 := func(v float32) tfgo.Output { return tfgo.Const(us, v) }
	grow := tfgo.LogicalAnd(us, finite, tfgo.Equal(us, counter, c64(int64(o.growthSteps-1))))
	newCounter := tfgo.SelectV2(us, finite, tfgo.SelectV2(us, grow, c64(0), tfgo.Add(us, counter, c64(1))), c64(0))
	newScale := tfgo.SelectV2(us, finite, tfgo.SelectV2(us, grow, tfgo.Mul(us, scale, c32(2)), scale), tfgo.Mul(us, scale, c32(0.5)))
	after := us.WithControlDependencies(joined.Op)
	ac := o.counter.Assign(after, newCounter)
	as := o.scale.Assign(after, newScale)
	return us.WithControlDependencies(ac, as).AddOperation(tfgo.OpSpec{Type: "NoOp", Name: "apply"})
}

// allFinite is Keras' check_finite: every element of every non-nil
// gradient is finite (true when there are none).
func allFinite(s *tfgo.Scope, grads []tfgo.Output) tfgo.Output {
	cs := s.SubScope("check_finite")
	var each []tfgo.Output
	for _, g := range grads {
		if g.Op == nil {
			continue
		}
		all := tfgo.Range(cs, tfgo.Const(cs, int32(0)), tfgo.Rank(cs, g), tfgo.Const(cs, int32(1)))
		each = append(each, tfgo.All(cs, tfgo.IsFinite(cs, g), all))
	}
	if len(each) == 0 {
		return tfgo.Const(cs, true)
	}
	return tfgo.All(cs, tfgo.Pack(cs, each), tfgo.Const(cs, int32(0)))
}

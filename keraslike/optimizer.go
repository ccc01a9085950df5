package keraslike

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/gotf/gotf/tfgo"
)

// Optimizer adds the ops that apply gradients to weights, as a Keras 3
// optimizer does: its own variables (the iteration counter, slots such as
// Adam's m and v) live under its name in the graph.
type Optimizer interface {
	// Name is the optimizer's name, Keras' default being its snake_case class
	// name made unique ("adam", "adam_w", "sgd", "adam_1").
	Name() string
	// Apply adds one update of every weight by its gradient and returns the
	// op that runs it (and increments the iteration counter). Every read and
	// write of a weight or slot it adds runs after every gradient and after
	// the control dependencies of s (Compile passes the loss, so the forward
	// pass has read each weight before any is written, as Keras' traced
	// train step orders them); variables it creates do not wait for them.
	Apply(s *tfgo.Scope, weights []*Weight, grads []tfgo.Output) *tfgo.Operation
	// Iterations is the step counter (int64), as optimizer.iterations.
	Iterations() *tfgo.Variable
	// Variables lists the optimizer's own variables in Keras order.
	Variables() []*tfgo.Variable
}

// OptimizerOptions are the arguments Keras optimizers share.
type OptimizerOptions struct {
	// LearningRate is a constant rate, or Schedule a rate per iteration.
	LearningRate float64
	Schedule     Schedule
	// GlobalClipNorm clips the gradients by their global norm first (0: off).
	GlobalClipNorm float64
}

// OptimizerByName returns an optimizer by its Keras name with Keras'
// defaults ("sgd", "adam", "adamw"), or an error naming the unknown one.
func OptimizerByName(name string) (Optimizer, error) {
	switch strings.ToLower(name) {
	case "sgd":
		return NewSGD(SGDOptions{}), nil
	case "adam":
		return NewAdam(AdamOptions{}), nil
	case "adamw":
		return NewAdamW(AdamOptions{}), nil
	}
	return nil, fmt.Errorf("unknown optimizer %q (known: sgd, adam, adamw)", name)
}

// optimizerBase holds the iteration counter, the learning rate and clipping.
type optimizerBase struct {
	name  string
	opts  OptimizerOptions
	iters *tfgo.Variable
	vars  []*tfgo.Variable
	scope *tfgo.Scope
}

func (o *optimizerBase) Name() string                { return o.name }
func (o *optimizerBase) Iterations() *tfgo.Variable  { return o.iters }
func (o *optimizerBase) Variables() []*tfgo.Variable { return o.vars }

// usable is the first step of Apply: nothing is added to a nil, zero or
// failed scope; a zero optimizer (declared, not made by its constructor,
// so without its name and slots) and weights that do not pair with the
// gradients are errors on the scope.
func (o *optimizerBase) usable(s *tfgo.Scope, weights []*Weight, grads []tfgo.Output) bool {
	if s.Err() != nil {
		return false
	}
	if o.name == "" {
		s.UpdateErr("optimizer", errors.New("keraslike: zero optimizer (make one with NewSGD, NewAdam, NewAdamW or OptimizerByName)"))
		return false
	}
	if len(weights) != len(grads) {
		s.UpdateErr(o.name, fmt.Errorf("optimizer %q: %d weights and %d gradients", o.name, len(weights), len(grads)))
		return false
	}
	return true
}

// begin creates the optimizer's scope and counter on first use and returns
// the update scope, the clipped gradients and the learning rate for this
// step (float32). Everything in the update scope runs after every gradient
// and after s's control dependencies: without those edges the executor may
// write a weight before the forward pass or another gradient has read it
// (the AdamW decay once did).
func (o *optimizerBase) begin(s *tfgo.Scope, grads []tfgo.Output) (ss *tfgo.Scope, g []tfgo.Output, lr, step tfgo.Output) {
	if o.scope == nil {
		o.scope = s.WithoutControlDependencies().SubScope(o.name)
		o.iters = tfgo.NewVariable(o.scope, "iteration", tfgo.Int64, []int64{}, tfgo.Zeros(), tfgo.Trainable(false))
		o.vars = append(o.vars, o.iters)
	}
	var gradOps []*tfgo.Operation
	for _, g := range grads {
		if g.Op != nil {
			gradOps = append(gradOps, g.Op)
		}
	}
	ss = s.SubScope(o.name + "_update").WithControlDependencies(gradOps...)
	if o.opts.GlobalClipNorm > 0 {
		grads = clipByGlobalNorm(ss, grads, o.opts.GlobalClipNorm)
	}
	// Keras computes the step's rate from the iteration count before the increment.
	step = tfgo.Cast(ss, o.iters.Read(ss), tfgo.Float)
	if o.opts.Schedule != nil {
		lr = o.opts.Schedule.Rate(ss, step)
	} else {
		lr = tfgo.Const(ss, float32(o.opts.LearningRate))
	}
	return ss, grads, lr, step
}

// finish groups the updates and the counter increment into one op.
func (o *optimizerBase) finish(ss *tfgo.Scope, updates []*tfgo.Operation) *tfgo.Operation {
	deps := ss.WithControlDependencies(updates...)
	inc := o.iters.AssignAdd(deps, tfgo.Const(deps, int64(1)))
	return ss.WithControlDependencies(inc).AddOperation(tfgo.OpSpec{Type: "NoOp", Name: "apply"})
}

// clipByGlobalNorm is Keras 3's clip_by_global_norm, in its arithmetic
// (a sum of squares, not tf.clip_by_global_norm's 2·L2Loss) so that a
// clipped step rounds as Keras' does: norm = sqrt(Σ sum(g²)), each g times
// c·min(1/norm, 1/c) + (norm - norm), the last term making the scale NaN
// when the norm is not finite. The norm is summed in float32.
func clipByGlobalNorm(s *tfgo.Scope, grads []tfgo.Output, c float64) []tfgo.Output {
	cs := s.SubScope("clip_by_global_norm")
	var sq []tfgo.Output
	for _, g := range grads {
		if g.Op != nil {
			all := tfgo.Range(cs, tfgo.Const(cs, int32(0)), tfgo.Rank(cs, g), tfgo.Const(cs, int32(1)))
			sq = append(sq, castTo(cs, tfgo.Sum(cs, tfgo.Square(cs, g), all), tfgo.Float))
		}
	}
	if len(sq) == 0 {
		return grads
	}
	norm := tfgo.Sqrt(cs, tfgo.Sum(cs, tfgo.Pack(cs, sq), tfgo.Const(cs, int32(0))))
	clip := tfgo.Const(cs, float32(c))
	one := tfgo.Const(cs, float32(1))
	scale := tfgo.Mul(cs, clip, tfgo.Minimum(cs, tfgo.RealDiv(cs, one, norm), tfgo.RealDiv(cs, one, clip)))
	scale = tfgo.Add(cs, scale, tfgo.Sub(cs, norm, norm))
	out := make([]tfgo.Output, len(grads))
	for i, g := range grads {
		if g.Op != nil {
			out[i] = tfgo.Mul(cs, g, castTo(cs, scale, g.DataType()))
		}
	}
	return out
}

// slot creates a zero-initialised slot variable for w, named as Keras 3
// names optimizer variables ("adam/dense_kernel_momentum").
func (o *optimizerBase) slot(w *Weight, suffix string) *tfgo.Variable {
	name := strings.ReplaceAll(w.Path, "/", "_") + "_" + suffix
	v := tfgo.NewVariable(o.scope, name, w.DType(), w.Shape(), tfgo.Zeros(), tfgo.Trainable(false))
	o.vars = append(o.vars, v)
	return v
}

// SGDOptions are keras.optimizers.SGD's arguments.
type SGDOptions struct {
	OptimizerOptions
	Momentum float64
	Nesterov bool
}

// SGD is keras.optimizers.SGD: w -= lr·g, or with momentum m = μ·m - lr·g,
// w += m (nesterov: w += μ·m - lr·g). Default learning rate 0.01.
type SGD struct {
	optimizerBase
	momentum float64
	nesterov bool
	slots    map[*Weight]*tfgo.Variable
}

// NewSGD returns keras.optimizers.SGD(...).
func NewSGD(o SGDOptions) *SGD {
	if o.LearningRate == 0 && o.Schedule == nil {
		o.LearningRate = 0.01
	}
	return &SGD{optimizerBase: optimizerBase{name: autoName("SGD"), opts: o.OptimizerOptions}, momentum: o.Momentum, nesterov: o.Nesterov, slots: map[*Weight]*tfgo.Variable{}}
}

// Apply adds one SGD update.
func (o *SGD) Apply(s *tfgo.Scope, weights []*Weight, grads []tfgo.Output) *tfgo.Operation {
	if !o.usable(s, weights, grads) {
		return nil
	}
	ss, grads, lr, _ := o.begin(s, grads)
	var ups []*tfgo.Operation
	for i, w := range weights {
		if grads[i].Op == nil {
			continue
		}
		g := castTo(ss, grads[i], w.DType())
		lrw := castTo(ss, lr, w.DType())
		if o.momentum == 0 {
			ups = append(ups, w.AssignSub(ss, tfgo.Mul(ss, lrw, g)))
			continue
		}
		m, ok := o.slots[w]
		if !ok {
			m = o.slot(w, "momentum")
			o.slots[w] = m
		}
		mu := tfgo.Const(ss, float32(o.momentum))
		newM := tfgo.Sub(ss, tfgo.Mul(ss, mu, m.Read(ss)), tfgo.Mul(ss, lrw, g))
		am := m.Assign(ss, newM)
		deps := ss.WithControlDependencies(am)
		if o.nesterov {
			ups = append(ups, w.AssignAdd(deps, tfgo.Sub(deps, tfgo.Mul(deps, mu, newM), tfgo.Mul(deps, lrw, g))))
		} else {
			ups = append(ups, w.AssignAdd(deps, newM))
		}
	}
	return o.finish(ss, ups)
}

// AdamOptions are keras.optimizers.Adam's (and AdamW's) arguments; zero
// values take Keras' defaults (learning rate 0.001, beta_1 0.9, beta_2
// 0.999, epsilon 1e-7; AdamW weight_decay 0.004).
type AdamOptions struct {
	OptimizerOptions
	Beta1, Beta2, Epsilon float64
	WeightDecay           float64 // AdamW only
}

// Adam is keras.optimizers.Adam:
//
//	m += (g - m)(1 - β1);  v += (g² - v)(1 - β2)
//	w -= m·α / (sqrt(v) + ε),  α = lr·sqrt(1 - β2^t)/(1 - β1^t)
//
// op for op as Keras 3 computes it, so a step rounds as Keras' does.
// TensorFlow's fused ResourceApplyAdam computes 1 - β in float32 instead
// (0.100000024, not 0.1): one ulp that Adam's second step amplifies to
// 1e-5 relative where consecutive gradients nearly cancel.
type Adam struct {
	optimizerBase
	beta1, beta2, eps, decay float64
	m, v                     map[*Weight]*tfgo.Variable
}

func newAdam(class string, o AdamOptions) *Adam {
	if o.LearningRate == 0 && o.Schedule == nil {
		o.LearningRate = 0.001
	}
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Beta1, 0.9)
	def(&o.Beta2, 0.999)
	def(&o.Epsilon, 1e-7)
	if class == "AdamW" {
		def(&o.WeightDecay, 0.004)
	}
	return &Adam{optimizerBase: optimizerBase{name: autoName(class), opts: o.OptimizerOptions}, beta1: o.Beta1, beta2: o.Beta2,
		eps: o.Epsilon, decay: o.WeightDecay, m: map[*Weight]*tfgo.Variable{}, v: map[*Weight]*tfgo.Variable{}}
}

// NewAdam returns keras.optimizers.Adam(...).
func NewAdam(o AdamOptions) *Adam { o.WeightDecay = 0; return newAdam("Adam", o) }

// NewAdamW returns keras.optimizers.AdamW(...): Adam with decoupled weight
// decay, w -= lr·wd·w before the Adam step, as Keras applies it.
func NewAdamW(o AdamOptions) *Adam { return newAdam("AdamW", o) }

// Apply adds one Adam (AdamW) update.
func (o *Adam) Apply(s *tfgo.Scope, weights []*Weight, grads []tfgo.Output) *tfgo.Operation {
	if !o.usable(s, weights, grads) {
		return nil
	}
	ss, grads, lr, step := o.begin(s, grads)
	t := tfgo.Add(ss, step, tfgo.Const(ss, float32(1)))
	b1p := tfgo.Pow(ss, tfgo.Const(ss, float32(o.beta1)), t)
	b2p := tfgo.Pow(ss, tfgo.Const(ss, float32(o.beta2)), t)
	var ups []*tfgo.Operation
	for i, w := range weights {
		if grads[i].Op == nil {
			continue
		}
		m, ok := o.m[w]
		if !ok {
			m, o.v[w] = o.slot(w, "momentum"), o.slot(w, "velocity")
			o.m[w] = m
		}
		v := o.v[w]
		dt := w.DType()
		c := func(x float64) tfgo.Output { return castTo(ss, tfgo.Const(ss, float32(x)), dt) }
		g := castTo(ss, grads[i], dt)
		// Keras applies every weight's decay (w·wd·lr, in its order) before
		// the Adam steps.
		ws := ss
		if o.decay > 0 {
			wd := tfgo.Mul(ss, tfgo.Mul(ss, w.Read(ss), c(o.decay)), castTo(ss, lr, dt))
			ws = ss.WithControlDependencies(w.AssignSub(ss, wd))
		}
		alpha := tfgo.RealDiv(ss, tfgo.Mul(ss, castTo(ss, lr, dt), tfgo.Sqrt(ss, tfgo.Sub(ss, c(1), castTo(ss, b2p, dt)))),
			tfgo.Sub(ss, c(1), castTo(ss, b1p, dt)))
		am := m.AssignAdd(ss, tfgo.Mul(ss, tfgo.Sub(ss, g, m.Read(ss)), c(1-o.beta1)))
		av := v.AssignAdd(ss, tfgo.Mul(ss, tfgo.Sub(ss, tfgo.Square(ss, g), v.Read(ss)), c(1-o.beta2)))
		after := ws.WithControlDependencies(am, av)
		step := tfgo.RealDiv(after, tfgo.Mul(after, m.Read(after), alpha), tfgo.Add(after, tfgo.Sqrt(after, v.Read(after)), c(o.eps)))
		ups = append(ups, w.AssignSub(after, step))
	}
	return o.finish(ss, ups)
}

// Schedule is a learning-rate schedule (keras.optimizers.schedules): the
// rate for a (float32) step.
type Schedule interface {
	Rate(s *tfgo.Scope, step tfgo.Output) tfgo.Output
}

// WarmupCosine is linear warm-up to Peak over WarmupSteps, then cosine
// decay to Peak·Alpha at WarmupSteps+DecaySteps (keras.optimizers.schedules
// .CosineDecay with initial_learning_rate 0, warmup_target Peak).
type WarmupCosine struct {
	Peak        float64
	WarmupSteps int
	DecaySteps  int
	Alpha       float64
}

// Rate is the schedule's rate at step.
func (c WarmupCosine) Rate(s *tfgo.Scope, step tfgo.Output) tfgo.Output {
	ss := s.SubScope("warmup_cosine")
	f := func(v float64) tfgo.Output { return tfgo.Const(ss, float32(v)) }
	warm := tfgo.Mul(ss, f(c.Peak), tfgo.RealDiv(ss, step, f(math.Max(float64(c.WarmupSteps), 1))))
	done := tfgo.Minimum(ss, tfgo.Sub(ss, step, f(float64(c.WarmupSteps))), f(float64(c.DecaySteps)))
	frac := tfgo.RealDiv(ss, done, f(math.Max(float64(c.DecaySteps), 1)))
	cos := tfgo.Mul(ss, f(0.5), tfgo.Add(ss, f(1), tfgo.Cos(ss, tfgo.Mul(ss, f(math.Pi), frac))))
	decayed := tfgo.Mul(ss, f(c.Peak), tfgo.Add(ss, tfgo.Mul(ss, f(1-c.Alpha), cos), f(c.Alpha)))
	return tfgo.SelectV2(ss, tfgo.Less(ss, step, f(float64(c.WarmupSteps))), warm, decayed)
}

// ExponentialDecay is keras.optimizers.schedules.ExponentialDecay:
// initial · rate^(step / decay_steps), floored steps when Staircase.
type ExponentialDecay struct {
	Initial    float64
	DecaySteps int
	DecayRate  float64
	Staircase  bool
}

// Rate is the schedule's rate at step.
func (e ExponentialDecay) Rate(s *tfgo.Scope, step tfgo.Output) tfgo.Output {
	ss := s.SubScope("exponential_decay")
	p := tfgo.RealDiv(ss, step, tfgo.Const(ss, float32(e.DecaySteps)))
	if e.Staircase {
		p = tfgo.Floor(ss, p)
	}
	return tfgo.Mul(ss, tfgo.Const(ss, float32(e.Initial)), tfgo.Pow(ss, tfgo.Const(ss, float32(e.DecayRate)), p))
}

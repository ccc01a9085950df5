package keraslike

import (
	"math"

	"github.com/gotf/gotf/tfgo"
)

// DropoutOptions are keras.layers.Dropout's arguments beyond rate.
type DropoutOptions struct {
	Name string
	// Seed is Keras' seed: the masks of successive training steps are a
	// deterministic sequence given it. nil (Keras' seed=None) derives a
	// seed from the layer's name, so that a model built twice the same way
	// drops the same units.
	Seed *int64
}

// Dropout is keras.layers.Dropout(rate, seed=...): in training it sets each
// element of its input to zero with probability rate and scales the others
// by 1/(1-rate), so that the expected sum is unchanged; in inference
// (Context.Training false) it returns its input unchanged. rate 1 gives
// zeros, rate 0 the input.
//
// The masks are drawn exactly as Keras 3 draws them on the TensorFlow
// backend: the layer owns a SeedGenerator-like non-trainable int64 [2]
// variable, "<name>/seed_generator_state", initialized to [seed, 0]; each
// training call reads it, adds [0, 1] to it, and draws
// tf.nn.experimental.stateless_dropout with the read value (floormod
// 2^31-2, as int32): StatelessRandomUniformV2 over the input's shape, kept
// where the draw is >= rate. So every session run of a training graph
// draws a new mask, the sequence depends only on the seed, and it equals
// the masks keras.layers.Dropout(rate, seed=seed) draws call after call.
// The state variable is not among Weights (Keras lists it in
// layer.variables, not layer.weights); it is in the graph's variable
// collection, so GlobalVariablesInitializer initializes it. (Keras names it
// "seed_generator_<n>/seed_generator_state" with a process-wide counter.)
//
// Calling one Dropout several times in one graph chains the state updates,
// so each call draws its own mask. Dropout has no weights.
type Dropout struct {
	Base
	Rate float64
	opts DropoutOptions

	state *tfgo.Variable
	last  *tfgo.Operation // the latest state update, which the next call's read follows
}

// NewDropout returns keras.layers.Dropout(rate, ...).
func NewDropout(rate float64, opts DropoutOptions) *Dropout {
	return &Dropout{Base: NewBase("Dropout", opts.Name), Rate: rate, opts: opts}
}

// SeedState is the seed generator's state variable (nil before the first
// call, or when the rate is 0).
func (d *Dropout) SeedState() *tfgo.Variable { return d.state }

// seed is the layer's seed: the option, or one derived from the name.
func (d *Dropout) seed() int64 {
	if d.opts.Seed != nil {
		return *d.opts.Seed
	}
	return seedFor(d.name)
}

// Call applies dropout to x in training, and is the identity otherwise.
func (d *Dropout) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(d, inputs)
	if !ok {
		return tfgo.Output{}
	}
	if !(d.Rate >= 0 && d.Rate <= 1) {
		ctx.Fail(d, "rate must be in [0, 1], got %g", d.Rate)
		return tfgo.Output{}
	}
	if !isFloat(x.DataType()) {
		ctx.Fail(d, "needs floating-point inputs, got %s", x.DataType())
		return tfgo.Output{}
	}
	if d.Build(ctx) && d.Rate > 0 {
		// Keras creates its SeedGenerator whenever rate > 0.
		d.state = tfgo.NewVariable(d.wscope, "seed_generator_state", tfgo.Int64, []int64{2},
			tfgo.InitialValue([]int64{d.seed(), 0}), tfgo.Trainable(false))
	}
	if !ctx.Training || d.Rate == 0 {
		return x
	}
	s := ctx.Scope.SubScope(d.name)
	if d.Rate == 1 {
		return tfgo.ZerosLike(s, x)
	}
	// SeedGenerator.next(): the current state, then state += [0, 1].
	rs := s
	if d.last != nil {
		rs = s.WithControlDependencies(d.last)
	}
	seed := d.state.Read(rs)
	if seed.Op == nil {
		return tfgo.Output{}
	}
	update := d.state.AssignAdd(s.WithControlDependencies(seed.Op), tfgo.Const(s, []int64{0, 1}))
	d.last = update
	// keras.backend.tensorflow.random._cast_seed, then stateless_dropout.
	seed32 := tfgo.Cast(s, tfgo.FloorMod(s, seed, tfgo.Const(s, int64(math.MaxInt32-1))), tfgo.Int32)
	key, counter := tfgo.StatelessRandomGetKeyCounter(s, seed32)
	dt := x.DataType()
	draw := tfgo.StatelessRandomUniformV2(s, tfgo.ShapeOf(s, x), key, counter, tfgo.Const(s, int32(3)),
		tfgo.StatelessRandomUniformV2Dtype(dt))
	keep := tfgo.GreaterEqual(s, draw, scalarAs(s, d.Rate, dt))
	kept := tfgo.Mul(s, x, scalarAs(s, 1/(1-d.Rate), dt))
	y := tfgo.SelectV2(s, keep, kept, scalarAs(s, 0, dt))
	// The output follows the state update, so that fetching it advances the seed.
	return tfgo.Identity(s.WithControlDependencies(update), y)
}

// Config is Dropout's get_config.
func (d *Dropout) Config() map[string]any {
	c := d.BaseConfig()
	c["rate"] = d.Rate
	if d.opts.Seed != nil {
		c["seed"] = *d.opts.Seed
	} else {
		c["seed"] = nil
	}
	c["noise_shape"] = nil
	return c
}

// scalarAs is the constant v of float dtype dt, rounded as TensorFlow
// converts a Python float to that dtype.
func scalarAs(s *tfgo.Scope, v float64, dt tfgo.DataType) tfgo.Output {
	c := tfgo.Const(s, v)
	if dt == tfgo.Double {
		return c
	}
	return tfgo.Cast(s, c, dt)
}

func init() { registerBuiltin("Dropout", dropoutFromConfig) }

// dropoutFromConfig is Dropout.from_config.
func dropoutFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	rate := r.float("rate", 0, 0, 1)
	if !r.has("rate") {
		r.fail("rate: missing")
	}
	r.want("noise_shape")
	seed := r.optSeed("seed")
	return r.done(NewDropout(rate, DropoutOptions{Name: name, Seed: seed}))
}

package keraslike

import "github.com/gotf/gotf/tfgo"

// ActivationOptions are keras.layers.Activation's arguments beyond the activation.
type ActivationOptions struct {
	Name string
}

// Activation is keras.layers.Activation(activation): the named activation
// (any keras.activations name but glu and sparsemax) applied elementwise
// (softmax and log_softmax over the last axis) to a floating-point input of
// any shape, as keras.activations computes it. It has no weights.
type Activation struct {
	Base
	// Activation is the Keras name of the function.
	Activation string
	act        func(*tfgo.Scope, tfgo.Output) tfgo.Output
	err        error
}

// NewActivation returns keras.layers.Activation(activation, ...).
func NewActivation(activationName string, opts ActivationOptions) *Activation {
	a := &Activation{Base: NewBase("Activation", opts.Name), Activation: activationName}
	a.act, a.err = activation(activationName)
	return a
}

// Call applies the activation to x.
func (a *Activation) Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output {
	x, ok := ctx.OneInput(a, inputs)
	if !ok {
		return tfgo.Output{}
	}
	if a.err != nil {
		ctx.Fail(a, "%v", a.err)
		return tfgo.Output{}
	}
	return applyActivation(ctx, a, &a.Base, x, a.act, a.Activation == "softmax" || a.Activation == "log_softmax")
}

// Config is Activation's get_config.
func (a *Activation) Config() map[string]any {
	c := a.BaseConfig()
	name := a.Activation
	if name == "" {
		name = "linear"
	}
	c["activation"] = name
	return c
}

func init() { registerBuiltin("Activation", activationFromConfig) }

// activationFromConfig is Activation.from_config.
func activationFromConfig(c map[string]any) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	if !r.has("activation") {
		r.fail("activation: missing")
	}
	act := r.activation("activation")
	return r.done(NewActivation(act, ActivationOptions{Name: name}))
}

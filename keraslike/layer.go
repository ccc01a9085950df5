package keraslike

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/gotf/gotf/mixedprecision"
	"github.com/gotf/gotf/tfgo"
)

// Context is where a layer call adds its operations.
type Context struct {
	// Scope receives the call's ops.
	Scope *tfgo.Scope
	// Weights is the scope under which layers create their weights on their
	// first call; weight paths are Keras' ("dense/kernel",
	// "multi_head_attention/query/kernel"), relative to it.
	Weights *tfgo.Scope
	// Training selects training behaviour (Dropout drops) at graph-build time:
	// a model builds its training and inference graphs separately, sharing weights.
	Training bool
	// Path prefixes the Keras paths of the weights created in this context:
	// a model's name ("sequential/dense/kernel"), a parent layer's path.
	Path string
	// reads caches each weight's value per dtype for the whole pass (see
	// Read); shared by the contexts derived from this one.
	reads map[readKey]tfgo.Output
}

// readKey is one weight read in one dtype.
type readKey struct {
	v  *tfgo.Variable
	dt tfgo.DataType
}

// NewContext returns a context adding ops and weights to s.
func NewContext(s *tfgo.Scope, training bool) *Context {
	return &Context{Scope: s, Weights: s, Training: training, reads: map[readKey]tfgo.Output{}}
}

// Read is w's value in dtype dt (a layer's compute dtype): the variable is
// read and cast once per pass (a model's training or inference graph) and
// every later use in that pass shares the result, as mixed precision wants
// (one cast of each float32 weight to bfloat16 per step, not one per use).
// s names the ops of the first read. A context made without NewContext
// reads afresh on every call.
func (c *Context) Read(s *tfgo.Scope, w *Weight, dt tfgo.DataType) tfgo.Output {
	if c == nil || w == nil || w.Variable == nil {
		return tfgo.Output{}
	}
	k := readKey{w.Variable, dt}
	if v, ok := c.reads[k]; ok {
		return v
	}
	// The shared value must not inherit the first caller's control
	// dependencies (a dropout's seed update, say): later users would wait on them.
	rs := s.WithoutControlDependencies()
	v := castTo(rs, w.Read(rs), dt)
	if c.reads != nil && v.Op != nil {
		c.reads[k] = v
	}
	return v
}

// autocast is Keras' input autocasting: a floating-point input is cast to
// the layer's compute dtype, unless the layer opts out (LayerNormalization
// computes in float32 whatever it is given).
func (c *Context) autocast(layer Layer, x tfgo.Output) tfgo.Output {
	p, ok := layer.(interface {
		DTypePolicy() mixedprecision.Policy
		autocasts() bool
	})
	if !ok || !p.autocasts() || x.Op == nil || !isFloat(x.DataType()) {
		return x
	}
	dt := p.DTypePolicy().ComputeDType()
	if x.DataType() == dt {
		return x
	}
	// Named after the layer but not in a sub-scope of its name, which would
	// take the name the layer's own ops are put under.
	op := c.Scope.AddOperation(tfgo.OpSpec{Type: "Cast", Name: layer.Name() + "_autocast", Input: []any{x}, Attrs: map[string]any{"DstT": dt}})
	return tfgo.Out(op, 0)
}

// Fail records an error on the context's scope, naming the layer and its
// class: how a layer's Call reports a wrong input (rank, dtype, count) or
// configuration. The error sticks to the scope (Model.Build returns it);
// the layer then returns the zero Output.
func (c *Context) Fail(layer Layer, format string, args ...any) {
	if c == nil || layer == nil {
		return // nowhere to record it, or nothing to name
	}
	c.Scope.UpdateErr(layer.Name(), fmt.Errorf("layer %q (%s): %s", layer.Name(), layer.ClassName(), fmt.Sprintf(format, args...)))
}

// OneInput is the input of a layer that takes exactly one, cast to the
// layer's compute dtype when it is floating-point (Keras' autocast): it fails with
// "takes 1 input" for another count, and reports false (the layer then
// returns the zero Output) after that or an earlier error in the scope, or
// when the input was never built or the context is not usable.
func (c *Context) OneInput(layer Layer, inputs []tfgo.Output) (tfgo.Output, bool) {
	if len(inputs) != 1 {
		c.Fail(layer, "takes 1 input, got %d", len(inputs))
		return tfgo.Output{}, false
	}
	if !c.usable() || inputs[0].Op == nil {
		return tfgo.Output{}, false
	}
	return c.autocast(layer, inputs[0]), true
}

// usable reports whether a layer call can add to c: not for a nil Context
// (a call with one records nothing and returns the zero Output), nor after
// an error in its scope, or without a scope (a zero Context), whose Err
// says so. Every layer's Call checks it (OneInput does) before Build.
func (c *Context) usable() bool { return c != nil && c.Scope.Err() == nil }

// weights is where the context's layers create their weights: a Context
// made without NewContext that leaves Weights nil puts them with the ops,
// as NewContext does.
func (c *Context) weights() *tfgo.Scope {
	if c.Weights == nil {
		return c.Scope
	}
	return c.Weights
}

// Layer is a Keras layer: it creates its weights on its first call (Keras'
// build(input_shape)) and adds its computation to the graph on every call.
type Layer interface {
	// Name is the layer's name, unique in a model ("dense", "dense_1").
	Name() string
	// ClassName is the Keras class name ("Dense", "MultiHeadAttention").
	ClassName() string
	// Call applies the layer to its inputs. Errors stick to ctx.Scope and
	// name the layer; the result is then the zero Output.
	Call(ctx *Context, inputs ...tfgo.Output) tfgo.Output
	// Weights lists the layer's weights in Keras order (empty before the first call).
	Weights() []*Weight
	// Config is the layer's get_config(): Keras' keys and values, so that a
	// layer can be rebuilt from it (and written to .keras files).
	Config() map[string]any
}

// KerasSublayers is implemented by composite layers, built-in
// (MultiHeadAttention, TransformerBlock) or not, whose Keras twin keeps
// sublayers as attributes: it maps the attribute names to the sublayers
// (nil before the layer has made them). Keras' saving walk, which .weights.h5 files and the weights of
// .keras files follow, saves a sublayer at "<layer>/<attribute>/vars";
// the layer's own weights that belong to no sublayer go to "<layer>/vars"
// in the order of its Weights (the order of the twin's own variables).
type KerasSublayers interface {
	KerasSublayers() map[string]Layer
}

// KerasCallLayer is implemented by layers whose Keras call takes keyword
// arguments beyond training, or positional arguments Call does not
// (MultiHeadAttention's key and attention_mask, a registered custom layer's
// own): a functional model (Apply, ApplyKw, or a functional config read
// from a file) calls CallKeras with the tensors of the positional
// arguments, flattened, and the keyword arguments, tensors as tfgo.Output
// (training left out: the model's pass decides it). A keyword argument the
// layer does not take is an error (Context.Fail).
type KerasCallLayer interface {
	Layer
	CallKeras(ctx *Context, args []tfgo.Output, kwargs map[string]any) tfgo.Output
}

// checkKwargs fails on the first keyword argument left in kw (one a
// layer's CallKeras does not take), naming it.
func checkKwargs(ctx *Context, l Layer, kw map[string]any) bool {
	for k, v := range kw {
		ctx.Fail(l, "keyword argument %s=%s is not supported", excerpt(k), excerpt(v))
		return false
	}
	return true
}

// Weight is a layer variable with its Keras path.
type Weight struct {
	*tfgo.Variable
	// Path is Keras' variable path, e.g. "dense/kernel".
	Path string
}

// Base holds what every layer has: a name, the Keras class, whether it is
// built, its weights and its tracked sublayers. Layers embed it, built-in
// and user-defined alike (a layer written in another package embeds it
// too); it gives them Name, ClassName, Weights and Built, and the helpers
// of Keras' Layer: Build, AddWeight, SublayerContext, Track and BaseConfig.
type Base struct {
	name      string
	class     string
	built     bool
	weights   []*Weight
	sublayers []Layer
	wscope    *tfgo.Scope
	path      string
	frozen    bool // trainable false: training leaves the weights alone
	policy    mixedprecision.Policy
	// noAutocast keeps floating inputs in their dtype (Keras' autocast=False).
	noAutocast bool
	remat      *RematScope // the RematScope the layer was made in (remat.go)
	device     string      // where the layer's ops and weights go (SetDevice)
}

// NewBase returns the Base of a layer of Keras class class ("Dense",
// "MyLayer"): named name, or, when name is "", Keras' default name for the
// class (its snake_case, suffixed _1, _2 ... for later layers of the same
// class: "my_layer", "my_layer_1"), as keras.layers.Layer(name=None) does.
// Its dtype policy is the global one (mixedprecision.GlobalPolicy), as for
// a Keras layer made with dtype=None; SetDTypePolicy changes it. It keeps
// the RematScope it is made in (WithRematScope), as a Keras layer does.
func NewBase(class, name string) Base {
	if name == "" {
		name = autoName(class)
	}
	return Base{name: name, class: class, policy: mixedprecision.GlobalPolicy(), remat: currentRemat()}
}

// SetDevice places the layer on device ("/device:CPU:1", "/device:GPU:0",
// "/job:worker/task:1/device:GPU:0"; "" for TensorFlow's placement): its
// weights, its ops in the inference and training graphs, and the gradient
// ops of those ops (tfgo.Gradients puts each on its forward op's device),
// the building block of model parallelism (GPTConfig.Devices splits a GPT
// this way). Its sublayers follow it unless they have a device of their
// own. Set it before the model is built (its first Build, Predict, Fit or
// Summary): graphs already built keep their placement. A device the
// session does not have is an error naming the layer and the device when
// the model opens its session, before anything runs; the string itself is
// not checked here, so that placing a layer never fails.
func (b *Base) SetDevice(device string) {
	if b == nil {
		return
	}
	b.device = device
}

// Device is the device SetDevice gave the layer ("" if none: the layer
// then runs where its parent, or TensorFlow's placer, puts it).
func (b *Base) Device() string {
	if b == nil {
		return ""
	}
	return b.device
}

// base gives the package the Base of any layer embedding one, a custom
// layer from another package too.
func (b *Base) base() *Base { return b }

// DTypePolicy is the layer's dtype policy (Keras' layer.dtype_policy).
func (b *Base) DTypePolicy() mixedprecision.Policy {
	if b == nil {
		return mixedprecision.Policy{}
	}
	return b.policy
}

// SetDTypePolicy sets the layer's dtype policy, and its tracked
// sublayers' (Keras' layer.dtype_policy = ...; a composite built-in passes
// its policy to the sublayers it makes, as Keras' do). Set it before the
// layer is first called: its weights are created in the policy's variable
// dtype, and graphs built before keep the dtypes they were built with.
// The Activation(..., dtype="float32") idiom that keeps a mixed model's
// outputs in float32 is SetDTypePolicy(mixedprecision.Float32) on the last layer.
func (b *Base) SetDTypePolicy(p mixedprecision.Policy) {
	if b == nil {
		return
	}
	b.policy = p
	for _, sub := range b.sublayers {
		if t, ok := sub.(interface{ SetDTypePolicy(mixedprecision.Policy) }); ok {
			t.SetDTypePolicy(p)
		}
	}
}

// ComputeDType is the dtype the layer computes in (layer.compute_dtype).
func (b *Base) ComputeDType() tfgo.DataType { return b.DTypePolicy().ComputeDType() }

// VariableDType is the dtype of the layer's weights (layer.variable_dtype).
func (b *Base) VariableDType() tfgo.DataType { return b.DTypePolicy().VariableDType() }

// autocasts reports whether the layer's floating inputs are cast to its
// compute dtype (Keras' layer.autocast).
func (b *Base) autocasts() bool { return b != nil && !b.noAutocast }

// Name is the layer's name.
func (b *Base) Name() string { return b.name }

// ClassName is the Keras class name.
func (b *Base) ClassName() string { return b.class }

// Weights lists the layer's weights in Keras order: its own, in creation
// order, then those of its tracked sublayers (Track), in tracking order.
func (b *Base) Weights() []*Weight {
	if len(b.sublayers) == 0 {
		return b.weights
	}
	ws := append([]*Weight(nil), b.weights...)
	for _, sub := range b.sublayers {
		ws = append(ws, sub.Weights()...)
	}
	return ws
}

// Trainable reports whether training updates the layer's weights (Keras'
// layer.trainable; true unless SetTrainable(false)).
func (b *Base) Trainable() bool { return !b.frozen }

// SetTrainable freezes (false) or unfreezes the layer and its tracked
// sublayers, as setting Keras' layer.trainable does: a frozen layer's
// weights are not in TrainableWeights, so Fit leaves them alone (compile
// after changing it: the training step is built by Compile), and its
// config says trainable: false. Weights created non-trainable
// (AddWeight's trainable false) stay so when the layer is unfrozen.
func (b *Base) SetTrainable(trainable bool) {
	b.frozen = !trainable
	for _, sub := range b.sublayers {
		if t, ok := sub.(interface{ SetTrainable(bool) }); ok {
			t.SetTrainable(trainable)
		}
	}
}

// TrainableWeights lists the weights training updates: none when the
// layer is frozen, else those of its Weights created trainable, minus the
// weights of frozen sublayers.
func (b *Base) TrainableWeights() []*Weight {
	if b.frozen {
		return nil
	}
	var ws []*Weight
	for _, w := range b.weights {
		if w.Trainable() {
			ws = append(ws, w)
		}
	}
	for _, sub := range b.sublayers {
		ws = append(ws, trainableWeights(sub)...)
	}
	return ws
}

// trainableWeights is l's weights that training updates.
func trainableWeights(l Layer) []*Weight {
	if t, ok := l.(interface{ TrainableWeights() []*Weight }); ok {
		return t.TrainableWeights()
	}
	var ws []*Weight
	for _, w := range l.Weights() {
		if w.Trainable() {
			ws = append(ws, w)
		}
	}
	return ws
}

// Built reports whether the layer has created its weights.
func (b *Base) Built() bool { return b.built }

// Build is the first step of a layer's Call, Keras' build(input_shape):
// the first time, it marks the layer built, fixes where its weights live
// (under ctx.Weights and ctx.Path, named after the layer) and returns true,
// and the layer then creates its weights with AddWeight (and its
// sublayers); later calls return false and the layer reuses them, and so
// does a call with a nil ctx, which builds nothing (Call checks its context
// first: see Context.OneInput).
//
//	if l.Build(ctx) {
//		l.kernel = l.AddWeight("kernel", tfgo.Float, []int64{in, units}, tfgo.GlorotUniform(seed), true)
//	}
func (b *Base) Build(ctx *Context) bool {
	if b.built || ctx == nil {
		return false
	}
	b.built = true
	b.wscope = ctx.weights().SubScope(b.name)
	b.path = b.name
	if ctx.Path != "" {
		b.path = ctx.Path + "/" + b.name
	}
	return true
}

// AddWeight is Keras' add_weight: it creates a variable named name
// ("kernel") of dtype and shape, initialized by init, under the layer's
// path ("dense/kernel", "model/dense/kernel"), and appends it to the
// layer's Weights. Call it after Build returned true; trainable false
// keeps the optimizer off it. dtype tfgo.Float stands for the policy's
// variable dtype (Keras' add_weight(dtype=None)): float32 under the mixed
// policies, bfloat16 under "bfloat16".
func (b *Base) AddWeight(name string, dtype tfgo.DataType, shape []int64, init tfgo.Initializer, trainable bool) *Weight {
	if dtype == tfgo.Float {
		dtype = b.VariableDType()
	}
	v := tfgo.NewVariable(b.wscope, name, dtype, shape, init, tfgo.Trainable(trainable))
	w := &Weight{Variable: v, Path: b.path + "/" + name}
	b.weights = append(b.weights, w)
	return w
}

// SublayerContext is the context in which a built layer calls its
// sublayers: their weights live under this layer's path
// ("multi_head_attention/query/kernel"), as in Keras, where a layer's
// sublayers are built inside it. Ops still go to ctx.Scope.
func (b *Base) SublayerContext(ctx *Context) *Context {
	if ctx == nil {
		return nil
	}
	if !b.built {
		// Its sublayers' weights would land outside it, under the wrong paths.
		ctx.Scope.UpdateErr(b.name, fmt.Errorf("layer %q (%s): SublayerContext before Build", b.name, b.class))
	}
	cc := *ctx
	cc.Weights = b.wscope
	cc.Path = b.path
	return &cc
}

// Track makes sub a sublayer of the layer, as assigning a layer to an
// attribute does in Keras: the layer's Weights list sub's weights after its
// own. sub is called in SublayerContext, so that its weights' paths are
// under this layer's. Tracking a layer again has no effect. (Which
// attribute a sublayer is saved under in .weights.h5 files is what the
// layer's KerasSublayers says.)
func (b *Base) Track(sub Layer) {
	if sub == nil {
		return
	}
	for _, s := range b.sublayers {
		if s == sub {
			return
		}
	}
	b.sublayers = append(b.sublayers, sub)
	// A sublayer made after its parent was frozen (MultiHeadAttention makes
	// its projections when it is built) is frozen with it, as in Keras.
	if t, ok := sub.(interface{ SetTrainable(bool) }); ok && b.frozen {
		t.SetTrainable(false)
	}
}

// BaseConfig is the part of get_config every layer has (name, trainable,
// dtype); a layer's Config adds its own keys to it.
func (b *Base) BaseConfig() map[string]any {
	return map[string]any{"name": b.name, "trainable": !b.frozen, "dtype": b.policy.Config()}
}

var names = struct {
	sync.Mutex
	count map[string]int
}{count: map[string]int{}}

// autoName gives a layer (or optimizer) Keras' default name,
// keras.src.utils.naming.auto_name: the snake_case class name, suffixed
// _1, _2 ... for later objects of the same class ("dense", "dense_1").
func autoName(class string) string {
	base := toSnakeCase(class)
	names.Lock()
	defer names.Unlock()
	n := names.count[base]
	names.count[base] = n + 1
	if n == 0 {
		return base
	}
	return fmt.Sprintf("%s_%d", base, n)
}

var (
	snakeNonWord = regexp.MustCompile(`\W+`)
	snakeWord    = regexp.MustCompile(`(.)([A-Z][a-z]+)`)
	snakeLower   = regexp.MustCompile(`([a-z])([A-Z])`)
)

// toSnakeCase is keras.src.utils.naming.to_snake_case ("MultiHeadAttention"
// is "multi_head_attention", "GlobalAveragePooling1D"
// "global_average_pooling1d"): default names and the groups of
// .weights.h5 files are made with it.
func toSnakeCase(s string) string {
	s = snakeNonWord.ReplaceAllString(s, "")
	s = snakeWord.ReplaceAllString(s, "${1}_${2}")
	return strings.ToLower(snakeLower.ReplaceAllString(s, "${1}_${2}"))
}

// ResetNames restarts default layer names ("dense" again), as
// keras.backend.clear_session does.
func ResetNames() {
	names.Lock()
	defer names.Unlock()
	names.count = map[string]int{}
}

// staticShape returns x's shape as known at graph-build time.
func staticShape(x tfgo.Output) []int64 {
	sh, err := x.Shape()
	if err != nil || sh.UnknownRank {
		return nil
	}
	return sh.Dims
}

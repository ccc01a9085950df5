package keraslike

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

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
	// DType is the compute dtype of the layers' ops (float32 unless a mixed
	// precision policy says otherwise).
	DType tfgo.DataType
	// Path prefixes the Keras paths of the weights created in this context:
	// a model's name ("sequential/dense/kernel"), a parent layer's path.
	Path string
}

// NewContext returns a context adding ops and weights to s.
func NewContext(s *tfgo.Scope, training bool) *Context {
	return &Context{Scope: s, Weights: s, Training: training, DType: tfgo.Float}
}

// in returns a copy of the context whose ops go under a sub-scope.
func (c *Context) in(name string) *Context {
	cc := *c
	cc.Scope = c.Scope.SubScope(name)
	return &cc
}

// fail records an error on the context's scope, naming the layer.
func (c *Context) fail(layer Layer, format string, args ...any) {
	c.Scope.UpdateErr(layer.Name(), fmt.Errorf("layer %q (%s): %s", layer.Name(), layer.ClassName(), fmt.Sprintf(format, args...)))
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

// Weight is a layer variable with its Keras path.
type Weight struct {
	*tfgo.Variable
	// Path is Keras' variable path, e.g. "dense/kernel".
	Path string
}

// Base holds what every layer has: a name, the Keras class, whether it is
// built and its weights. Layers embed it.
type Base struct {
	name    string
	class   string
	built   bool
	weights []*Weight
	wscope  *tfgo.Scope
	path    string
}

func newBase(class, name string) Base {
	if name == "" {
		name = autoName(class)
	}
	return Base{name: name, class: class}
}

// Name is the layer's name.
func (b *Base) Name() string { return b.name }

// ClassName is the Keras class name.
func (b *Base) ClassName() string { return b.class }

// Weights lists the layer's weights in creation (Keras) order.
func (b *Base) Weights() []*Weight { return b.weights }

// Built reports whether the layer has created its weights.
func (b *Base) Built() bool { return b.built }

// build marks the layer built and fixes where its weights live; it returns
// false when it already was.
func (b *Base) build(ctx *Context) bool {
	if b.built {
		return false
	}
	b.built = true
	b.wscope = ctx.Weights.SubScope(b.name)
	b.path = b.name
	if ctx.Path != "" {
		b.path = ctx.Path + "/" + b.name
	}
	return true
}

// addWeight creates a weight named name ("kernel") under the layer's path.
func (b *Base) addWeight(name string, dtype tfgo.DataType, shape []int64, init tfgo.Initializer, trainable bool) *Weight {
	v := tfgo.NewVariable(b.wscope, name, dtype, shape, init, tfgo.Trainable(trainable))
	w := &Weight{Variable: v, Path: b.path + "/" + name}
	b.weights = append(b.weights, w)
	return w
}

// sublayerContext is the context in which a layer calls its sublayers:
// their weights live under this layer's path ("multi_head_attention/query").
func (b *Base) sublayerContext(ctx *Context) *Context {
	cc := *ctx
	cc.Weights = b.wscope
	cc.Path = b.path
	return &cc
}

// adopt appends a built sublayer's weights (whose paths are already under
// this layer's) to this layer's.
func (b *Base) adopt(sub Layer) {
	b.weights = append(b.weights, sub.Weights()...)
}

// baseConfig is the part of get_config every layer has.
func (b *Base) baseConfig() map[string]any {
	return map[string]any{"name": b.name, "trainable": true, "dtype": "float32"}
}

var names = struct {
	sync.Mutex
	count map[string]int
}{count: map[string]int{}}

var camel = regexp.MustCompile(`([a-z0-9])([A-Z])`)

// autoName gives a layer Keras' default name: the snake_case class name,
// suffixed _1, _2 ... for later layers of the same class ("dense", "dense_1").
func autoName(class string) string {
	base := strings.ToLower(camel.ReplaceAllString(class, "${1}_${2}"))
	names.Lock()
	defer names.Unlock()
	n := names.count[base]
	names.count[base] = n + 1
	if n == 0 {
		return base
	}
	return fmt.Sprintf("%s_%d", base, n)
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

package keraslike

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	ex "github.com/gotf/gotf/internal/excerpt"
	"github.com/gotf/gotf/mixedprecision"
)

// LayerFactory builds a layer from its Keras config (the "config" dict of a
// layer in a .keras or .h5 file: JSON values, numbers as float64).
type LayerFactory func(config map[string]any) (Layer, error)

var registry = struct {
	sync.RWMutex
	custom map[string]LayerFactory
}{custom: map[string]LayerFactory{}}

// RegisterLayer makes className loadable from Keras files with a Go
// implementation: the Go counterpart of Keras' custom_objects (and of
// turning safe_mode off for a Lambda layer, whose Python code is never run
// here). className is matched against a layer's registered_name when the
// file has one ("my_package>MyLayer", or "MyLayer" for a class passed in
// custom_objects), else against its class_name. A registration replaces an
// earlier one of the same name, built-in classes included; f nil removes it.
//
// keraslike's own TransformerBlock and PositionalEmbedding, whose Python
// twins are custom classes, are registered under "TransformerBlock",
// "PositionalEmbedding" and the same with the "gotf>" package prefix.
//
// The layer's Weights must come in the order of the Python layer's
// variables (what its .weights.h5 group vars/0, vars/1 ... holds); a
// composite layer implements KerasSublayers.
func RegisterLayer(className string, f LayerFactory) {
	registry.Lock()
	defer registry.Unlock()
	if f == nil {
		delete(registry.custom, className)
		return
	}
	registry.custom[className] = f
}

// builtins are the Keras classes read from files, by class name: each
// layer's file registers its from-config constructor (registerBuiltin).
var builtins = map[string]LayerFactory{}

// registerBuiltin makes a built-in Keras class loadable: f is the class'
// from_config. Only the init functions of keraslike's layers call it.
func registerBuiltin(className string, f LayerFactory) { builtins[className] = f }

// registerCustom registers one of keraslike's layers whose Python twin is a
// custom class (not part of Keras): under its class name and with the
// "gotf>" package prefix.
func registerCustom(className string, f LayerFactory) {
	RegisterLayer(className, f)
	RegisterLayer("gotf>"+className, f)
}

// layerSpec is how a file names a layer's class.
type layerSpec struct {
	name, className, module, registeredName string
}

func (s layerSpec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "layer %s (class %s", quoted(s.name), excerpt(s.className))
	if s.module != "" {
		fmt.Fprintf(&b, ", module %s", excerpt(s.module))
	}
	if s.registeredName != "" && s.registeredName != s.className {
		fmt.Fprintf(&b, ", registered name %s", quoted(s.registeredName))
	}
	b.WriteString(")")
	return b.String()
}

// isKerasModule reports whether a module is Keras' own (or absent, as in
// legacy .h5 configs).
func isKerasModule(m string) bool {
	return m == "" || m == "keras" || strings.HasPrefix(m, "keras.")
}

// lookupFactory finds the Go implementation of a layer from a file, or
// refuses it. Nothing from the file is ever executed: a class is either
// one of the built-ins, or registered by the caller.
func lookupFactory(spec layerSpec, local map[string]LayerFactory) (LayerFactory, error) {
	key := spec.registeredName
	if key == "" {
		key = spec.className
	}
	if f, ok := local[key]; ok && f != nil {
		return f, nil
	}
	registry.RLock()
	f, ok := registry.custom[key]
	registry.RUnlock()
	if ok {
		return f, nil
	}
	if (spec.registeredName == "" || spec.registeredName == spec.className) && isKerasModule(spec.module) {
		if f, ok := builtins[spec.className]; ok {
			return f, nil
		}
	}
	if spec.className == "Lambda" {
		return nil, fmt.Errorf("%s: refused: a Lambda layer holds Python code, which loading never runs; register a Go implementation with keraslike.RegisterLayer(%s, ...)", spec, quoted(key))
	}
	if spec.className == "Functional" || spec.className == "Sequential" || spec.className == "Model" {
		return nil, fmt.Errorf("%s: nested models are not supported", spec)
	}
	known := make([]string, 0, len(builtins))
	for k := range builtins {
		known = append(known, k)
	}
	sort.Strings(known)
	return nil, fmt.Errorf("%s: unknown class (built-in: %s); register a Go implementation with keraslike.RegisterLayer(%s, ...)", spec, strings.Join(known, ", "), quoted(key))
}

// cfg reads a layer config, keeping the first error. It is each layer's
// from-config contract: every key the layer understands is read through
// one of its methods (which check the value is one the Go layer
// implements), and done refuses any other key whose value is not null —
// an option keraslike does not implement (a regularizer, a constraint, a
// key of a newer Keras) is an error naming the key, never ignored. Keys a
// layer does not implement but whose Keras default is not null (false, 0,
// "channels_last") are read with want.
type cfg struct {
	c      map[string]any
	err    error
	read   map[string]bool // the keys the layer's from-config understood
	frozen bool            // trainable: false
}

func (r *cfg) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// mark records that the layer understands key.
func (r *cfg) mark(key string) {
	if r.read == nil {
		r.read = map[string]bool{}
	}
	r.read[key] = true
}

// raw is the value of key (nil when absent), for a layer that reads a
// value of several forms itself.
func (r *cfg) raw(key string) any {
	r.mark(key)
	return r.c[key]
}

// has reports whether key is present and not null.
func (r *cfg) has(key string) bool { v, ok := r.c[key]; return ok && v != nil }

// int reads an integer in [lo, hi]; def when absent or null.
func (r *cfg) int(key string, def, lo, hi int) int {
	r.mark(key)
	v, ok := r.c[key]
	if !ok || v == nil {
		return def
	}
	return r.intValue(key, v, lo, hi)
}

func (r *cfg) intValue(key string, v any, lo, hi int) int {
	r.mark(key)
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.IsInf(f, 0) {
		r.fail("%s: want an integer, got %s", key, excerpt(v))
		return lo
	}
	if f < float64(lo) || f > float64(hi) {
		r.fail("%s: %v is outside [%d, %d]", key, v, lo, hi)
		return lo
	}
	return int(f)
}

// required reads a required integer in [lo, hi].
func (r *cfg) required(key string, lo, hi int) int {
	r.mark(key)
	if !r.has(key) {
		r.fail("%s: missing", key)
		return lo
	}
	return r.int(key, lo, lo, hi)
}

// elements checks that a weight whose shape the config alone fixes (the
// product of the named fields' values) stays under maxWeightElements, so
// that it is refused before anything is built.
func (r *cfg) elements(fields string, dims ...int) {
	n := int64(1)
	for _, d := range dims {
		if d <= 0 {
			return // refused already, or not a weight's dimension
		}
		if n > maxWeightElements/int64(d) {
			r.fail("%s: %v make a weight of more than %d elements", fields, dims, int64(maxWeightElements))
			return
		}
		n *= int64(d)
	}
}

func (r *cfg) float(key string, def, lo, hi float64) float64 {
	r.mark(key)
	v, ok := r.c[key]
	if !ok || v == nil {
		return def
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || f < lo || f > hi {
		r.fail("%s: want a number in [%g, %g], got %s", key, lo, hi, excerpt(v))
		return def
	}
	return f
}

func (r *cfg) bool(key string, def bool) bool {
	r.mark(key)
	v, ok := r.c[key]
	if !ok || v == nil {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		r.fail("%s: want a bool, got %s", key, excerpt(v))
		return def
	}
	return b
}

func (r *cfg) string(key, def string) string {
	r.mark(key)
	v, ok := r.c[key]
	if !ok || v == nil {
		return def
	}
	s, ok := v.(string)
	if !ok {
		r.fail("%s: want a string, got %s", key, excerpt(v))
	}
	return s
}

// optSeed reads an optional integer seed.
func (r *cfg) optSeed(key string) *int64 {
	r.mark(key)
	if !r.has(key) {
		return nil
	}
	s := int64(r.int(key, 0, math.MinInt32, math.MaxInt32))
	return &s
}

// want requires key absent, null or equal to one of the values the Go
// layer implements (an unsupported option is an error, never ignored).
func (r *cfg) want(key string, values ...any) {
	r.mark(key)
	v, ok := r.c[key]
	if !ok || v == nil {
		return
	}
	switch v.(type) {
	case map[string]any, []any:
	default:
		for _, w := range values {
			if fmt.Sprint(v) == fmt.Sprint(w) {
				return
			}
		}
	}
	r.fail("%s=%s is not supported", key, excerpt(v))
}

// axis reads one axis in [lo, hi]: an integer or a list of one (as Keras
// writes a tuple); def when absent or null. More axes are refused.
func (r *cfg) axis(key string, def, lo, hi int) int {
	switch a := r.raw(key).(type) {
	case nil:
		return def
	case []any:
		if len(a) != 1 {
			r.fail("%s=%s: only one axis is supported", key, excerpt(a))
			return def
		}
		return r.intValue(key, a[0], lo, hi)
	default:
		return r.intValue(key, a, lo, hi)
	}
}

// initializers accepts the named initializer keys whatever they hold: a
// loaded layer's weights come from the file, so its initializers never
// run (they are not executed either way: an initializer is data here).
func (r *cfg) initializers(keys ...string) {
	for _, k := range keys {
		r.mark(k)
	}
}

// activation reads an activation: a Keras name (a serialized function
// object is refused: it could name code).
func (r *cfg) activation(key string) string {
	r.mark(key)
	v, ok := r.c[key]
	if !ok || v == nil {
		return "linear"
	}
	s, ok := v.(string)
	if !ok {
		r.fail("%s: want the name of a Keras activation, got %s", key, excerpt(v))
		return "linear"
	}
	if len(s) > ex.Max { // longer than any activation's name
		r.fail("%s: %s is not a Keras activation", key, quoted(s))
		return "linear"
	}
	if _, err := activation(s); err != nil {
		r.fail("%s: %v", key, err)
	}
	return s
}

// name reads what every layer's config has (Keras' Layer.get_config): a
// name, trainable, and a dtype policy (a name or a serialized DTypePolicy;
// absent or null, the global policy); and accepts the legacy
// batch_input_shape of a Sequential's first layer, which the model reader
// takes as its input.
func (r *cfg) name() string {
	n := r.string("name", "")
	if n == "" {
		r.fail("name: missing")
	}
	if err := checkName("name", n); err != nil {
		r.fail("%v", err)
		n = ""
	} else if strings.ContainsAny(n, "/\x00") {
		r.fail("name %s: contains '/' or NUL", quoted(n))
	}
	r.frozen = !r.bool("trainable", true)
	r.want("autocast", true)
	r.mark("batch_input_shape")
	// readLayer applies the policy to whatever layer the config makes.
	if _, err := mixedprecision.PolicyFromConfig(r.raw("dtype")); err != nil {
		r.fail("dtype: %v", err)
	}
	return n
}

// unread refuses the keys of the config the reader did not understand
// (those whose value is not null), naming the first in sorted order.
func (r *cfg) unread() {
	var keys []string
	for k, v := range r.c {
		if !r.read[k] && v != nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return
	}
	sort.Strings(keys)
	k := keys[0]
	r.fail("%s=%s is not supported (keraslike does not implement this option)", excerpt(k), excerpt(r.c[k]))
}

// done finishes a from-config: it refuses the options the layer did not
// understand, and freezes the layer when its config says trainable: false.
func (r *cfg) done(l Layer) (Layer, error) {
	r.unread()
	if r.err != nil {
		return nil, r.err
	}
	if r.frozen {
		if err := freeze(l); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// freeze makes a layer read from a file with trainable: false frozen, or
// refuses it when the layer has no way to be (a registered layer that does
// not embed Base nor implement SetTrainable).
func freeze(l Layer) error {
	t, ok := l.(interface{ SetTrainable(bool) })
	if !ok {
		return errors.New("trainable=false: the layer cannot be frozen (it has no SetTrainable method)")
	}
	t.SetTrainable(false)
	return nil
}

// weightless reads the config of a layer that has nothing but a name
// (Add) and makes it with mk.
func weightless(c map[string]any, mk func(name string) Layer) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	if r.err != nil {
		return nil, r.err
	}
	return r.done(mk(name))
}

package keraslike

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
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
	fmt.Fprintf(&b, "layer %q (class %s", s.name, s.className)
	if s.module != "" {
		fmt.Fprintf(&b, ", module %s", s.module)
	}
	if s.registeredName != "" && s.registeredName != s.className {
		fmt.Fprintf(&b, ", registered name %q", s.registeredName)
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
		return nil, fmt.Errorf("%s: refused: a Lambda layer holds Python code, which loading never runs; register a Go implementation with keraslike.RegisterLayer(%q, ...)", spec, key)
	}
	if spec.className == "Functional" || spec.className == "Sequential" || spec.className == "Model" {
		return nil, fmt.Errorf("%s: nested models are not supported", spec)
	}
	known := make([]string, 0, len(builtins))
	for k := range builtins {
		known = append(known, k)
	}
	sort.Strings(known)
	return nil, fmt.Errorf("%s: unknown class (built-in: %s); register a Go implementation with keraslike.RegisterLayer(%q, ...)", spec, strings.Join(known, ", "), key)
}

// cfg reads a layer config, keeping the first error.
type cfg struct {
	c   map[string]any
	err error
}

func (r *cfg) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// has reports whether key is present and not null.
func (r *cfg) has(key string) bool { v, ok := r.c[key]; return ok && v != nil }

// int reads an integer in [lo, hi]; def when absent or null.
func (r *cfg) int(key string, def, lo, hi int) int {
	v, ok := r.c[key]
	if !ok || v == nil {
		return def
	}
	return r.intValue(key, v, lo, hi)
}

func (r *cfg) intValue(key string, v any, lo, hi int) int {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.IsInf(f, 0) {
		r.fail("%s: want an integer, got %v", key, v)
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
	if !r.has(key) {
		r.fail("%s: missing", key)
		return lo
	}
	return r.int(key, lo, lo, hi)
}

func (r *cfg) float(key string, def, lo, hi float64) float64 {
	v, ok := r.c[key]
	if !ok || v == nil {
		return def
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || f < lo || f > hi {
		r.fail("%s: want a number in [%g, %g], got %v", key, lo, hi, v)
		return def
	}
	return f
}

func (r *cfg) bool(key string, def bool) bool {
	v, ok := r.c[key]
	if !ok || v == nil {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		r.fail("%s: want a bool, got %v", key, v)
	}
	return b
}

func (r *cfg) string(key, def string) string {
	v, ok := r.c[key]
	if !ok || v == nil {
		return def
	}
	s, ok := v.(string)
	if !ok {
		r.fail("%s: want a string, got %v", key, v)
	}
	return s
}

// optSeed reads an optional integer seed.
func (r *cfg) optSeed(key string) *int64 {
	if !r.has(key) {
		return nil
	}
	s := int64(r.int(key, 0, math.MinInt32, math.MaxInt32))
	return &s
}

// want requires key absent, null or equal to one of the values the Go
// layer implements (an unsupported option is an error, never ignored).
func (r *cfg) want(key string, values ...any) {
	v, ok := r.c[key]
	if !ok || v == nil {
		return
	}
	for _, w := range values {
		if fmt.Sprint(v) == fmt.Sprint(w) {
			return
		}
	}
	r.fail("%s=%v is not supported", key, v)
}

// activation reads an activation: a Keras name (a serialized function
// object is refused: it could name code).
func (r *cfg) activation(key string) string {
	v, ok := r.c[key]
	if !ok || v == nil {
		return "linear"
	}
	s, ok := v.(string)
	if !ok {
		r.fail("%s: want the name of a Keras activation, got %v", key, v)
		return "linear"
	}
	if _, err := activation(s); err != nil {
		r.fail("%s: %v", key, err)
	}
	return s
}

// common checks what every layer config has: a name and a float32 dtype policy.
func (r *cfg) name() string {
	n := r.string("name", "")
	if n == "" {
		r.fail("name: missing")
	}
	if strings.ContainsAny(n, "/\x00") {
		r.fail("name %q: contains '/' or NUL", n)
	}
	switch d := r.c["dtype"].(type) {
	case nil:
	case string:
		if d != "float32" {
			r.fail("dtype %q is not supported (float32 only)", d)
		}
	case map[string]any:
		c, _ := d["config"].(map[string]any)
		if n, _ := c["name"].(string); n != "float32" {
			r.fail("dtype policy %v is not supported (float32 only)", d["config"])
		}
	default:
		r.fail("dtype: unreadable %v", d)
	}
	return n
}

func (r *cfg) done(l Layer) (Layer, error) {
	if r.err != nil {
		return nil, r.err
	}
	return l, nil
}

// Size limits of configs: a dimension, and a weight's element count (a
// file declaring a larger model is refused before anything is allocated;
// LoadOptions.MaxParams bounds the whole model).
const (
	maxDim = 1 << 24
)

// weightless reads the config of a layer that has nothing but a name
// (Add) and makes it with mk.
func weightless(c map[string]any, mk func(name string) Layer) (Layer, error) {
	r := &cfg{c: c}
	name := r.name()
	if r.err != nil {
		return nil, r.err
	}
	return mk(name), nil
}

package mixedprecision

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/gotf/gotf/internal/excerpt"
	"github.com/gotf/gotf/tfgo"
)

// Policy is a Keras dtype policy (keras.DTypePolicy): the dtype a layer
// computes in and the dtype its variables are stored in. The zero Policy is
// float32, Keras' default.
type Policy struct {
	name string
	// mode is the quantization mode of a quantized policy (Keras'
	// QuantizedDTypePolicy, "int8_from_float32": mode "int8" over the source
	// policy name); "" for a floating-point policy.
	mode string
}

// policies are the names Keras accepts for floating-point policies and
// what they mean: [compute, variable] dtype.
var policies = map[string][2]tfgo.DataType{
	"float32":        {tfgo.Float, tfgo.Float},
	"float64":        {tfgo.Double, tfgo.Double},
	"float16":        {tfgo.Half, tfgo.Half},
	"bfloat16":       {tfgo.BFloat16, tfgo.BFloat16},
	"mixed_float16":  {tfgo.Half, tfgo.Float},
	"mixed_bfloat16": {tfgo.BFloat16, tfgo.Float},
}

// The policies by name, as keras.mixed_precision.Policy(name) makes them.
var (
	Float32       = Policy{name: "float32"}
	Float16       = Policy{name: "float16"}
	BFloat16      = Policy{name: "bfloat16"}
	MixedFloat16  = Policy{name: "mixed_float16"}
	MixedBFloat16 = Policy{name: "mixed_bfloat16"}
)

// QuantizationModes are the quantization modes Keras 3.15 knows
// (dtype_policies.QUANTIZATION_MODES, in its order, which its error
// messages quote); keraslike implements "int8".
var QuantizationModes = []string{"int8", "float8", "int4", "gptq", "awq"}

// NewPolicy is keras.dtype_policies.get(name): "float32", "float16",
// "bfloat16", "float64", "mixed_float16", "mixed_bfloat16", or a quantized
// policy "<mode>_from_<source>" ("int8_from_float32",
// "int8_from_mixed_bfloat16": Keras' QuantizedDTypePolicy, which computes
// and stores floating-point variables as its source does). Any other name
// is an error, as in Keras; quantization modes other than int8 are refused
// as not implemented, and int8 over a float16 compute dtype as Keras
// refuses it.
func NewPolicy(name string) (Policy, error) {
	if _, ok := policies[name]; ok {
		return Policy{name: name}, nil
	}
	for _, mode := range QuantizationModes {
		if strings.HasPrefix(name, mode) {
			m, source, ok := strings.Cut(name, "_from_")
			if !ok || strings.Contains(source, "_from_") {
				return Policy{}, fmt.Errorf("mixedprecision: cannot convert %s into a valid pair (mode, source_name) to instantiate QuantizedDTypePolicy", excerpt.Quote(name))
			}
			return NewQuantizedPolicy(m, source)
		}
	}
	return Policy{}, fmt.Errorf("mixedprecision: unknown dtype policy %s (known: %s; int8_from_<one>)", excerpt.Quote(name), strings.Join(floatNames(), ", "))
}

// NewQuantizedPolicy is keras.dtype_policies.QuantizedDTypePolicy(mode,
// source_name): mode "int8" over a floating-point policy. Keras' other
// modes are refused as not implemented; an unknown mode, and int8 over
// float16 computations, as Keras refuses them.
func NewQuantizedPolicy(mode, source string) (Policy, error) {
	if !slices.Contains(QuantizationModes, mode) {
		return Policy{}, fmt.Errorf("mixedprecision: invalid quantization mode: expected one of %s, received: mode=%s", modeList(), excerpt.Quote(mode))
	}
	if mode != "int8" {
		return Policy{}, fmt.Errorf("mixedprecision: quantization mode %s is not implemented (int8 only)", excerpt.Quote(mode))
	}
	dt, ok := policies[source]
	if !ok {
		return Policy{}, fmt.Errorf("mixedprecision: quantized policy over unknown dtype policy %s (known: %s)", excerpt.Quote(source), strings.Join(floatNames(), ", "))
	}
	if dt[0] == tfgo.Half {
		return Policy{}, fmt.Errorf("mixedprecision: quantization mode='%s' doesn't work well with compute_dtype='float16' (policy %s)", mode, source)
	}
	return Policy{name: source, mode: mode}, nil
}

// modeList is QuantizationModes as Keras prints the tuple.
func modeList() string {
	q := make([]string, len(QuantizationModes))
	for i, m := range QuantizationModes {
		q[i] = "'" + m + "'"
	}
	return "(" + strings.Join(q, ", ") + ")"
}

// Names lists the policy names NewPolicy accepts, sorted: the
// floating-point ones and their int8 quantized forms.
func Names() []string {
	ns := floatNames()
	for _, n := range floatNames() {
		if policies[n][0] != tfgo.Half {
			ns = append(ns, "int8_from_"+n)
		}
	}
	sort.Strings(ns)
	return ns
}

// floatNames lists the floating-point policy names, sorted.
func floatNames() []string {
	ns := make([]string, 0, len(policies))
	for n := range policies {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Name is the policy's Keras name ("mixed_bfloat16", "int8_from_float32").
func (p Policy) Name() string {
	if p.mode != "" {
		return p.mode + "_from_" + p.source()
	}
	return p.source()
}

// source is the floating-point policy's name (a quantized policy's source).
func (p Policy) source() string {
	if p.name == "" {
		return "float32"
	}
	return p.name
}

// QuantizationMode is Keras' policy.quantization_mode: "int8" for a
// quantized policy, "" otherwise.
func (p Policy) QuantizationMode() string { return p.mode }

// Source is the floating-point policy a quantized policy computes and
// stores its float variables as (the policy itself when not quantized).
func (p Policy) Source() Policy { return Policy{name: p.name} }

// Quantized is the policy Keras' layer.quantize(mode) gives a layer of
// policy p: "<mode>_from_<p>". Quantizing a quantized policy is an error.
func (p Policy) Quantized(mode string) (Policy, error) {
	if p.mode != "" {
		return Policy{}, fmt.Errorf("mixedprecision: policy %s is already quantized", p.Name())
	}
	return NewQuantizedPolicy(mode, p.source())
}

// String is the policy's name.
func (p Policy) String() string { return p.Name() }

// ComputeDType is the dtype layers compute in (bfloat16 under mixed_bfloat16).
func (p Policy) ComputeDType() tfgo.DataType { return policies[p.source()][0] }

// VariableDType is the dtype variables are stored in (float32 under the
// mixed policies, so that small updates are not lost to rounding).
func (p Policy) VariableDType() tfgo.DataType { return policies[p.source()][1] }

// IsMixed reports whether computations and variables differ in dtype.
func (p Policy) IsMixed() bool { return p.ComputeDType() != p.VariableDType() }

// NeedsLossScaling reports whether training under the policy needs loss
// scaling: float16 computations, whose small gradients underflow (Keras'
// compile wraps the optimizer in a LossScaleOptimizer for mixed_float16;
// bfloat16 has float32's exponent range and needs none).
func (p Policy) NeedsLossScaling() bool { return p.ComputeDType() == tfgo.Half }

// Config is the policy as Keras 3 serializes it in a layer's config
// (keras.dtype_policies.serialize).
func (p Policy) Config() map[string]any {
	if p.mode != "" {
		return map[string]any{
			"module":          "keras.dtype_policies",
			"class_name":      "QuantizedDTypePolicy",
			"config":          map[string]any{"mode": p.mode, "source_name": p.source()},
			"registered_name": nil,
		}
	}
	return map[string]any{
		"module":          "keras",
		"class_name":      "DTypePolicy",
		"config":          map[string]any{"name": p.Name()},
		"registered_name": nil,
	}
}

// PolicyFromConfig reads a layer config's "dtype" as Keras does: nil (the
// global policy at the time of the call), a policy's name, or a serialized
// DTypePolicy (also the Keras 2 "Policy" class and FloatDTypePolicy) or
// QuantizedDTypePolicy (int8). An unknown policy, or a quantized one this
// package does not implement (QuantizedFloat8DTypePolicy, Int4DTypePolicy,
// GPTQDTypePolicy, AWQDTypePolicy, a DTypePolicyMap), is an error.
func PolicyFromConfig(v any) (Policy, error) {
	switch d := v.(type) {
	case nil:
		return GlobalPolicy(), nil
	case string:
		return NewPolicy(d)
	case map[string]any:
		class, _ := d["class_name"].(string)
		switch class {
		case "DTypePolicy", "FloatDTypePolicy", "Policy":
		case "QuantizedDTypePolicy":
			return quantizedFromConfig(d)
		default:
			return Policy{}, fmt.Errorf("mixedprecision: dtype policy class %s is not supported (DTypePolicy and int8 QuantizedDTypePolicy only)", excerpt.Quote(class))
		}
		c, ok := d["config"].(map[string]any)
		if !ok {
			return Policy{}, fmt.Errorf("mixedprecision: dtype policy %s has no config", excerpt.Quote(class))
		}
		for k := range c {
			if k != "name" {
				return Policy{}, fmt.Errorf("mixedprecision: dtype policy option %s is not supported", excerpt.Quote(k))
			}
		}
		name, ok := c["name"].(string)
		if !ok {
			return Policy{}, fmt.Errorf("mixedprecision: dtype policy %s has no name", excerpt.Quote(class))
		}
		return NewPolicy(name)
	}
	return Policy{}, fmt.Errorf("mixedprecision: dtype %T is neither a policy name nor a serialized DTypePolicy", v)
}

// quantizedFromConfig reads a serialized QuantizedDTypePolicy: config
// {"mode": "int8", "source_name": "float32"}.
func quantizedFromConfig(d map[string]any) (Policy, error) {
	c, ok := d["config"].(map[string]any)
	if !ok {
		return Policy{}, errors.New("mixedprecision: dtype policy QuantizedDTypePolicy has no config")
	}
	for k := range c {
		if k != "mode" && k != "source_name" {
			return Policy{}, fmt.Errorf("mixedprecision: QuantizedDTypePolicy option %s is not supported", excerpt.Quote(k))
		}
	}
	mode, ok := c["mode"].(string)
	if !ok {
		return Policy{}, errors.New("mixedprecision: QuantizedDTypePolicy has no mode")
	}
	// Keras takes the global policy for a missing source, as for a missing dtype.
	source := GlobalPolicy().source()
	if v, ok := c["source_name"]; ok && v != nil {
		if source, ok = v.(string); !ok {
			return Policy{}, fmt.Errorf("mixedprecision: QuantizedDTypePolicy source_name %v is not a string", excerpt.Quote(fmt.Sprint(v)))
		}
	}
	return NewQuantizedPolicy(mode, source)
}

var global struct {
	sync.RWMutex
	p Policy
}

// SetGlobalPolicy is keras.mixed_precision.set_global_policy: layers made
// afterwards without a policy of their own use p.
func SetGlobalPolicy(p Policy) {
	global.Lock()
	defer global.Unlock()
	global.p = p
}

// SetGlobalPolicyName is SetGlobalPolicy(NewPolicy(name)), keeping the
// current policy when the name is unknown.
func SetGlobalPolicyName(name string) error {
	p, err := NewPolicy(name)
	if err != nil {
		return err
	}
	SetGlobalPolicy(p)
	return nil
}

// GlobalPolicy is keras.mixed_precision.global_policy (float32 unless set).
func GlobalPolicy() Policy {
	global.RLock()
	defer global.RUnlock()
	return global.p
}

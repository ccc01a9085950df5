package mixedprecision

import (
	"fmt"
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

// NewPolicy is keras.mixed_precision.Policy(name): "float32", "float16",
// "bfloat16", "float64", "mixed_float16" or "mixed_bfloat16". Any other name
// is an error, as in Keras; quantized policies ("int8_from_float32") are
// not implemented and are refused too.
func NewPolicy(name string) (Policy, error) {
	if _, ok := policies[name]; ok {
		return Policy{name: name}, nil
	}
	return Policy{}, fmt.Errorf("mixedprecision: unknown dtype policy %s (known: %s)", excerpt.Quote(name), strings.Join(Names(), ", "))
}

// Names lists the policy names NewPolicy accepts, sorted.
func Names() []string {
	ns := make([]string, 0, len(policies))
	for n := range policies {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Name is the policy's Keras name ("mixed_bfloat16").
func (p Policy) Name() string {
	if p.name == "" {
		return "float32"
	}
	return p.name
}

// String is the policy's name.
func (p Policy) String() string { return p.Name() }

// ComputeDType is the dtype layers compute in (bfloat16 under mixed_bfloat16).
func (p Policy) ComputeDType() tfgo.DataType { return policies[p.Name()][0] }

// VariableDType is the dtype variables are stored in (float32 under the
// mixed policies, so that small updates are not lost to rounding).
func (p Policy) VariableDType() tfgo.DataType { return policies[p.Name()][1] }

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
	return map[string]any{
		"module":          "keras",
		"class_name":      "DTypePolicy",
		"config":          map[string]any{"name": p.Name()},
		"registered_name": nil,
	}
}

// PolicyFromConfig reads a layer config's "dtype" as Keras does: nil (the
// global policy at the time of the call), a policy's name, or a serialized
// DTypePolicy (also the Keras 2 "Policy" class and FloatDTypePolicy). A
// quantized or unknown policy is an error.
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
		default:
			return Policy{}, fmt.Errorf("mixedprecision: dtype policy class %s is not supported (DTypePolicy only)", excerpt.Quote(class))
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

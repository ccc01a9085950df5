package mixedprecision

import (
	"encoding/json"
	"testing"

	"github.com/gotf/gotf/internal/excerpt"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPolicies(t *testing.T) {
	for _, c := range []struct {
		name              string
		compute, variable tfgo.DataType
	}{
		{"float32", tfgo.Float, tfgo.Float},
		{"float16", tfgo.Half, tfgo.Half},
		{"bfloat16", tfgo.BFloat16, tfgo.BFloat16},
		{"float64", tfgo.Double, tfgo.Double},
		{"mixed_float16", tfgo.Half, tfgo.Float},
		{"mixed_bfloat16", tfgo.BFloat16, tfgo.Float},
	} {
		p, err := NewPolicy(c.name)
		require.NoError(t, err)
		assert.Equal(t, c.name, p.Name())
		assert.Equal(t, c.compute, p.ComputeDType(), c.name)
		assert.Equal(t, c.variable, p.VariableDType(), c.name)
		assert.Equal(t, c.compute == tfgo.Half, p.NeedsLossScaling(), c.name)
	}
	var zero Policy
	assert.Equal(t, "float32", zero.Name())
	assert.Equal(t, tfgo.Float, zero.ComputeDType())
}

func TestUnknownPolicies(t *testing.T) {
	for _, name := range []string{"", "mixed_foo", "int8_from_float32", "float8", string(make([]byte, 4096))} {
		_, err := NewPolicy(name)
		require.Error(t, err, "%q", name)
		assert.Contains(t, err.Error(), "unknown dtype policy")
		// Bounded whatever the name: excerpt.Max of it, and the known names.
		assert.Less(t, len(err.Error()), excerpt.Max+150)
	}
	assert.Error(t, SetGlobalPolicyName("mixed_foo"))
	assert.Equal(t, "float32", GlobalPolicy().Name())
}

func TestGlobalPolicy(t *testing.T) {
	defer SetGlobalPolicy(Float32)
	require.NoError(t, SetGlobalPolicyName("mixed_bfloat16"))
	assert.Equal(t, MixedBFloat16, GlobalPolicy())
	p, err := PolicyFromConfig(nil)
	require.NoError(t, err)
	assert.Equal(t, "mixed_bfloat16", p.Name(), "a null dtype is the global policy")
}

// Keras 3 serializes a policy as {"module": "keras", "class_name":
// "DTypePolicy", "config": {"name": ...}, "registered_name": null} (checked
// against Keras in keraslike's round-trip tests); both forms read back.
func TestPolicyConfig(t *testing.T) {
	b, err := json.Marshal(MixedFloat16.Config())
	require.NoError(t, err)
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	p, err := PolicyFromConfig(v)
	require.NoError(t, err)
	assert.Equal(t, MixedFloat16, p)
	p, err = PolicyFromConfig("bfloat16")
	require.NoError(t, err)
	assert.Equal(t, BFloat16, p)
	for _, bad := range []any{
		42.0,
		map[string]any{"class_name": "QuantizedDTypePolicy", "config": map[string]any{"name": "int8_from_float32"}},
		map[string]any{"class_name": "DTypePolicy"},
		map[string]any{"class_name": "DTypePolicy", "config": map[string]any{"name": "mixed_float16", "extra": 1}},
		map[string]any{"class_name": "DTypePolicy", "config": map[string]any{"name": "mixed_foo"}},
	} {
		_, err := PolicyFromConfig(bad)
		assert.Error(t, err, "%v", bad)
	}
}

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
	for _, name := range []string{"", "mixed_foo", "int16_from_float32", string(make([]byte, 4096))} {
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
		map[string]any{"class_name": "QuantizedDTypePolicy", "config": map[string]any{"mode": "int4", "source_name": "float32"}},
		map[string]any{"class_name": "QuantizedFloat8DTypePolicy", "config": map[string]any{"mode": "float8", "source_name": "float32"}},
		map[string]any{"class_name": "DTypePolicyMap", "config": map[string]any{}},
		map[string]any{"class_name": "DTypePolicy"},
		map[string]any{"class_name": "DTypePolicy", "config": map[string]any{"name": "mixed_float16", "extra": 1}},
		map[string]any{"class_name": "DTypePolicy", "config": map[string]any{"name": "mixed_foo"}},
	} {
		_, err := PolicyFromConfig(bad)
		assert.Error(t, err, "%v", bad)
	}
}

// Keras' QuantizedDTypePolicy: "<mode>_from_<source>" computes and stores
// float variables as its source; keraslike implements int8 only.
func TestQuantizedPolicies(t *testing.T) {
	for _, c := range []struct {
		name              string
		compute, variable tfgo.DataType
	}{
		{"int8_from_float32", tfgo.Float, tfgo.Float},
		{"int8_from_mixed_bfloat16", tfgo.BFloat16, tfgo.Float},
		{"int8_from_bfloat16", tfgo.BFloat16, tfgo.BFloat16},
	} {
		p, err := NewPolicy(c.name)
		require.NoError(t, err, c.name)
		assert.Equal(t, c.name, p.Name())
		assert.Equal(t, "int8", p.QuantizationMode())
		assert.Equal(t, c.compute, p.ComputeDType(), c.name)
		assert.Equal(t, c.variable, p.VariableDType(), c.name)
		assert.Contains(t, Names(), c.name)
		src, err := NewPolicy(p.Source().Name())
		require.NoError(t, err)
		q, err := src.Quantized("int8")
		require.NoError(t, err)
		assert.Equal(t, p, q)
		_, err = q.Quantized("int8")
		assert.ErrorContains(t, err, "already quantized")

		b, err := json.Marshal(p.Config())
		require.NoError(t, err)
		var v any
		require.NoError(t, json.Unmarshal(b, &v))
		assert.Equal(t, "QuantizedDTypePolicy", v.(map[string]any)["class_name"])
		back, err := PolicyFromConfig(v)
		require.NoError(t, err)
		assert.Equal(t, p, back)
	}
	assert.Equal(t, "", Float32.QuantizationMode())
	for name, want := range map[string]string{
		"int8_from_float16":       "doesn't work well with compute_dtype='float16'",
		"int8_from_mixed_float16": "doesn't work well with compute_dtype='float16'",
		"int4_from_float32":       "not implemented (int8 only)",
		"float8_from_float32":     "not implemented (int8 only)",
		"gptq_from_float32":       "not implemented (int8 only)",
		"int8_from_mixed_foo":     "unknown dtype policy",
		"float8":                  "valid pair (mode, source_name)",
		"int8_from_a_from_b":      "valid pair (mode, source_name)",
	} {
		_, err := NewPolicy(name)
		assert.ErrorContains(t, err, want, name)
	}
	_, err := NewQuantizedPolicy("int16", "float32")
	assert.ErrorContains(t, err, "invalid quantization mode: expected one of ('int8', 'float8', 'int4', 'gptq', 'awq'), received: mode=\"int16\"")
}

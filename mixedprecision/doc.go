// Package mixedprecision holds Keras 3's dtype policies: which dtype
// layers compute in and which dtype their variables are stored in
// ("float32", "mixed_float16", "mixed_bfloat16", ...), the global policy
// layers take when made without one, and the policies' form in .keras
// configs. keraslike applies them: variables stay in the variable dtype and
// are cast to the compute dtype once per graph pass, layers compute in the
// compute dtype, LayerNormalization's statistics and losses in float32.
// keraslike.LossScaleOptimizer is the loss scaling float16 training needs.
// Quantized policies ("int8_from_float32", Keras' QuantizedDTypePolicy)
// are what keraslike's Model.Quantize gives the layers it quantizes: they
// compute and keep float variables as their source policy does.
//
//	mixedprecision.SetGlobalPolicy(mixedprecision.MixedBFloat16)
//	defer mixedprecision.SetGlobalPolicy(mixedprecision.Float32)
//	m, _ := keraslike.NewGPT("gpt", cfg) // computes in bfloat16, float32 weights
package mixedprecision

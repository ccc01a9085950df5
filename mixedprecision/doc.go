// Package mixedprecision will hold Keras-style dtype policies ("float32",
// "mixed_float16", "mixed_bfloat16": compute dtype vs variable dtype) and
// loss scaling for float16 training, applied by tfgo graphs and keraslike
// layers.
//
// Nothing is implemented yet; the package exists so the module has the
// layout of DESIGN.md from the start.
package mixedprecision

// Package mixedprecision will hold Keras-style dtype policies ("float32",
// "mixed_float16", "mixed_bfloat16": compute dtype vs variable dtype) and
// loss scaling for float16 training, applied by tfgo graphs and keraslike
// layers.
//
// Nothing is implemented yet: the package holds its place in the module's
// layout (cgo <- tfgo <- mixedprecision, distribute <- keraslike).
package mixedprecision

// Package keraslike is Keras 3 for Go on TensorFlow's runtime: layers with
// Keras' names, arguments, defaults and weight paths, models, optimizers,
// losses, metrics, callbacks and fit/evaluate/predict, in which one train
// step is one session run.
//
// A layer is built on its first call (Keras' build(input_shape)): it creates
// its weights as tfgo variables under its name ("dense/kernel") and adds its
// ops to the graph; later calls reuse the weights. Layers report mistakes
// (a wrong input rank or dtype, an unknown activation) as errors on the
// scope, naming the layer, before any graph runs.
package keraslike

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
//
// Each layer owns its Keras contract, as a Keras layer class does: its
// weights (created in Call, after Base.Build, with Base.AddWeight), its
// get_config (Config) and its from_config (the constructor registered for
// its class). A layer written in another package does the same with the
// exported helpers: it embeds Base (NewBase), creates its weights with
// Build and AddWeight, calls its sublayers in SublayerContext and Tracks
// them, reports errors with Context.Fail, implements KerasSublayers when
// its Keras twin keeps sublayers as attributes (KerasCallLayer when its
// call takes keyword arguments), and is registered with RegisterLayer so
// that LoadKerasModel can build it. The file formats (.keras,
// .weights.h5, legacy .h5, TensorFlow checkpoints) go through these
// interfaces only, for built-in and user layers alike.
package keraslike

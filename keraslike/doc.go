// Package keraslike will hold Keras 3-style layers (Dense, Embedding,
// LayerNormalization, MultiHeadAttention ...), models, optimizers, losses,
// metrics, callbacks and fit/evaluate/predict, with Keras' weight names, and
// the Keras file formats (.keras, .weights.h5, legacy .h5).
//
// Nothing is implemented yet; the package exists so the module has the
// layout of DESIGN.md from the start.
package keraslike

// Package savedmodel will read and write genuine SavedModel directories and
// TensorFlow checkpoints: TensorBundle (.index + .data shards) in pure Go,
// signatures, the TF Serving BASE/<version>/ layout, and SavedModel loading
// through the C API.
//
// Nothing is implemented yet; the package exists so the module has the
// layout of DESIGN.md from the start.
package savedmodel

// Package distribute will hold training strategies on top of tfgo: mirrored
// replicas (data parallelism, MirroredStrategy), manual model-parallel
// placement, parameter sharding, gradient checkpointing, and multi-worker
// training on TensorFlow's gRPC runtime.
//
// Nothing is implemented yet; the package exists so the module has the
// layout of DESIGN.md from the start.
package distribute

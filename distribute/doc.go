// Package distribute will hold training strategies on top of tfgo: mirrored
// replicas (data parallelism, MirroredStrategy), manual model-parallel
// placement, parameter sharding, gradient checkpointing, and multi-worker
// training on TensorFlow's gRPC runtime.
//
// Nothing is implemented yet: the package holds its place in the module's
// layout (cgo <- tfgo <- mixedprecision, distribute <- keraslike).
package distribute

// Package distribute holds training strategies on top of tfgo.
//
// Implemented here: MirroredStrategy (mirrored.go), synchronous data
// parallelism on the devices of one host as tf.distribute.MirroredStrategy
// does it: one replica per device, gradients averaged with TensorFlow's
// collective ops (CollectiveReduceV2; NCCL on GPUs), the same update on
// every replica's copy of the weights. keraslike's CompileOptions.Strategy
// builds a model's training step with it. Multi-device code is tested on
// logical CPU devices (MirroredStrategy.SessionOptions).
//
// Parameter sharding (ShardedVariable: a variable split along axis 0 over
// devices, with Python's partitioners) lives in sharded.go, written
// separately from the mirrored strategy. Manual model-parallel placement
// is tfgo.Scope.WithDevice; multi-worker training on TensorFlow's gRPC
// runtime is not implemented.
//
// The package sits above tfgo and below keraslike in the module's layout
// (cgo <- tfgo <- mixedprecision, distribute <- keraslike).
package distribute

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
// MirroredOptions.ShardOptimizerState shards the optimizer's slots over
// the replicas (each keeps and updates 1/R of them; the updated parts are
// all-gathered), beyond what Python's strategies offer.
//
// Parameter sharding: ShardedVariable (sharded.go) splits a variable along
// axis 0 over devices with Python's partitioners, routes embedding lookups
// to the owning shards, and saves one logical tensor with slices, as
// TensorFlow does. Model-parallel placement is keraslike's Base.SetDevice
// and GPTConfig.Devices (tfgo.Scope.WithDevice underneath).
//
// Multi-worker (cluster.go, multi_worker.go): TF_CONFIG read as Python's
// TFConfigClusterResolver reads it, the ServerDef and session config
// MultiWorkerMirroredStrategy makes from it, StartServer, and
// NewMultiWorkerMirroredStrategy: a MirroredStrategy whose replicas are
// those of every worker process, on TensorFlow's gRPC runtime, with the
// all-reduces packed per dtype, the chief's state broadcast to every
// replica, and a health check of the peers (PeerWatch) so that a lost
// worker fails the others' step at once.
//
// Python and Go on one cluster: the wire is TensorFlow's, so a Python
// TF1-graph session (tf.compat.v1.Session on a tf.distribute.Server) and a
// Go session all-reduce together with the same group and instance keys
// (tested). A Python MultiWorkerMirroredStrategy worker cannot train with
// a Go worker, for two reasons found by trying it with TensorFlow 2.21:
// the strategy starts TensorFlow's coordination service and waits, at
// creation, for an agent on every task, which a process serving through
// TF_NewServer and sessions does not run; and with that service turned
// off (a private API), its eager collectives and a graph session's time
// out against each other even with equal keys, the eager and the graph
// runtimes not pairing their steps. A Go peer would have to drive the
// eager C API (TFE_*) and replay Python's key sequence exactly (one
// broadcast per variable in Keras' creation order, a flag all-reduce per
// get_next, the gradients in one reversed pack, every strategy.reduce),
// where one collective more or less on either side hangs or pairs the
// wrong tensors.
//
// The package sits above tfgo and below keraslike in the module's layout
// (cgo <- tfgo <- mixedprecision, distribute <- keraslike).
package distribute

// Package cgo is the project's binding to TensorFlow's C API and the only
// package with import "C".
//
// It wraps graphs, operation descriptions (every attribute kind), operations
// read back with their inputs, consumers, shapes and attributes, tensors of
// every dtype (float16, bfloat16 and TF_TString strings included), sessions
// created from a ConfigProto and run with RunOptions and RunMetadata, and the
// op and kernel registries.
//
// Ownership: each C object has exactly one Go owner (a *Graph, *Tensor or
// *Session) with Close and a finalizer as a safety net; Close is idempotent.
// Operations belong to their graph and are never freed on their own.
// Errors from the runtime are *Error values carrying TensorFlow's code,
// message and, where known, the name of the op.
//
// The package links libtensorflow through pkg-config (tensorflow.pc, which
// `make setup` derives from the tensorflow==2.21.0 wheel). Without it the
// build stops at pkg-config: run `make setup` and `eval "$(make -s env)"`.
package cgo

// #cgo pkg-config: tensorflow
// #include "tensorflow/c/c_api.h"
import "C"

// Version is the version of the TensorFlow runtime that is linked, e.g. "2.21.0".
func Version() string { return C.GoString(C.TF_Version()) }

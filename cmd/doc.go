// Package cmd is the home of the project's command-line tools, one
// directory each (Go convention): gotf (inspect, run, convert, quantize,
// train, monitor, version: what saved_model_cli and friends do, for every
// format the project reads),
// gotf-serve (TensorFlow Serving's REST API, package serve), and
// the benchmarks (benchtrain, benchckpt, benchmem, benchshards, ...),
// which the Makefile's bench targets run.
package cmd

// Command transformer runs the project's main job (package job; `make run`,
// and `gotf train` with the same flags): it trains a GPT-style
// decoder-only language model on byte tokens of Go's own source tree on
// TensorFlow's runtime from Go, logs TensorBoard events and the hardware
// monitor's figures, writes a checkpoint per epoch (and resumes from the
// latest when run again), exports a SavedModel for TensorFlow Serving and
// a Keras 3 file, and samples text from the trained model.
//
//	go run ./examples/transformer -steps 300 -out out/transformer        # the default: ~2 minutes on 2 cores
//	go run ./examples/transformer -layers 8 -dmodel 512 -heads 8 -batch 32 -steps 5000   # large
//	go run ./examples/transformer -layers 2 -dmodel 64 -heads 2 -seq 64 -steps 50        # a quick look
//	go run ./examples/transformer -policy mixed_bfloat16 -remat -memory                  # the memory levers, measured
//	go run ./examples/transformer -replicas 2                                            # data parallel (GPUs, else logical CPUs)
//	go run ./examples/transformer -model-parallel 2                                      # blocks split over 2 devices
package main

import (
	"context"
	"flag"
	"io"
	"log"
	"os"
	"os/signal"

	"github.com/gotf/gotf/examples/transformer/job"
)

// config and run are the job's, under the names this package's tests use.
type config = job.Config

func run(ctx context.Context, c config, w io.Writer) error { return job.Run(ctx, c, w) }

func main() {
	var c config
	c.RegisterFlags(flag.CommandLine)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := job.Run(ctx, c, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

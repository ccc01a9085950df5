package main

import (
	"flag"
	"os"
	"os/signal"

	"github.com/gotf/gotf/examples/transformer/job"
	"github.com/spf13/cobra"
)

func newTrainCmd() *cobra.Command {
	var c job.Config
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the main job's GPT language model (make run), with its flags",
		Long: `Runs the project's main job (examples/transformer): a GPT-style language
model trained on byte tokens of Go's own source tree, with a progress bar,
TensorBoard events and the hardware monitor's figures under --out/logs
(gotf monitor --logdir reads them), a checkpoint per epoch under
--out/checkpoints (a second run resumes from the latest), a SavedModel for
TensorFlow Serving under --out/saved_model/<step>, and --out/model.keras.
Ctrl-C stops training after the current step.`,
		Example: `  gotf train --steps 300 --out out/transformer
  gotf train --layers 2 --dmodel 64 --heads 2 --seq 64 --steps 50     # a quick look
  gotf train --policy mixed_bfloat16 --remat --memory                # the memory levers
  gotf train --replicas 2                                            # data parallel`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return job.Run(ctx, c, cmd.OutOrStdout())
		},
	}
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	c.RegisterFlags(fs)
	cmd.Flags().AddGoFlagSet(fs)
	return cmd
}

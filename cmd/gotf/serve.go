package main

import (
	"errors"

	"github.com/gotf/gotf/serve"
	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve --model_base_path=DIR [--model_name=NAME] [--port=8500] [--rest_api_port=8501] | --model_config_file=FILE",
		Short: "Serve SavedModels over TensorFlow Serving's gRPC and REST APIs (gotf-serve)",
		Long: `Runs the model server of package serve, as cmd/gotf-serve and
tensorflow_model_server run: numbered versions under each base directory,
TensorFlow Serving's REST API (/v1/models/...) and gRPC API
(PredictionService, ModelService, health, reflection), with
tensorflow_model_server's flags (--port, --rest_api_port, --model_name,
--model_base_path, --model_config_file, --model_config_file_poll_wait_seconds,
--file_system_poll_wait_seconds, ...; "gotf serve --help" lists them all).
It stops on SIGINT or SIGTERM after the requests under way.`,
		Example: `  gotf serve --model_name=gpt --model_base_path=$PWD/out/transformer/saved_model
  gotf serve --port=8500 --rest_api_port=8501 --model_config_file=models.config --model_config_file_poll_wait_seconds=60`,
		// The server parses tensorflow_model_server's flags itself, so that
		// both binaries take the same command lines.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if a == "-h" || a == "--help" || a == "-help" {
					if err := cmd.Help(); err != nil {
						return err
					}
					return serve.Main([]string{"-h"}, cmd.OutOrStdout()) // the flags
				}
			}
			err := serve.Main(args, cmd.ErrOrStderr())
			var ue *serve.UsageError
			if errors.As(err, &ue) {
				return usageError{err}
			}
			return err
		},
	}
}

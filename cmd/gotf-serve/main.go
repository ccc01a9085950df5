// Command gotf-serve serves SavedModels over TensorFlow Serving's gRPC and
// REST APIs (package serve), with tensorflow_model_server's flags, so that a
// deployment can switch binaries without rewriting its manifests:
//
//	gotf-serve --port=8500 --rest_api_port=8501 --model_name=m --model_base_path=/models/m
//	gotf-serve --port=8500 --rest_api_port=8501 --model_config_file=/models/models.config \
//		--model_config_file_poll_wait_seconds=60
//
// It stops on SIGINT or SIGTERM: requests under way finish (up to 30 s),
// then every model is unloaded.
package main

import (
	"fmt"
	"os"

	"github.com/gotf/gotf/serve"
)

func main() {
	if err := serve.Main(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gotf-serve:", err)
		os.Exit(1)
	}
}

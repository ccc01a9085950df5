package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/keraslike"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gotf serve is gotf-serve: it serves a SavedModel's REST API with
// tensorflow_model_server's flags and stops on SIGTERM; a bad command line
// is one line and the usage exit code.
func TestServeSubcommand(t *testing.T) {
	keraslike.ResetNames()
	m := keraslike.NewSequential("mlp", keraslike.InputSpec{Shape: []int64{3}}, keraslike.NewDense(2, keraslike.DenseOptions{}))
	base := t.TempDir()
	require.NoError(t, m.Export(filepath.Join(base, "1"), keraslike.ExportOptions{}))
	m.Close()
	addr := testutil.FreeAddrs(t, 1)[0]
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	done := make(chan int, 1)
	var errs strings.Builder
	go func() {
		code := execute([]string{"serve", "--model_name=m", "--model_base_path=" + base, "--port=0",
			"--rest_api_host=127.0.0.1", "--rest_api_port=" + port}, io.Discard, &errs)
		done <- code
	}()
	var status string
	require.Eventually(t, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://%s/v1/models/m", addr))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		status = string(b)
		return resp.StatusCode == 200 && strings.Contains(status, "AVAILABLE")
	}, time.Minute, 100*time.Millisecond, "the server did not serve the model")
	resp, err := http.Post(fmt.Sprintf("http://%s/v1/models/m:predict", addr), "application/json", strings.NewReader(`{"instances": [[1, 2, 3]]}`))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, string(b))
	assert.Contains(t, string(b), "predictions")
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
	select {
	case code := <-done:
		assert.Equal(t, exitOK, code, errs.String())
	case <-time.After(time.Minute):
		t.Fatal("gotf serve did not stop on SIGTERM")
	}

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"serve", "--bogus=1"}, "flag provided but not defined"},
		{[]string{"serve"}, "give --model_base_path"},
		{[]string{"serve", "--model_base_path=" + base, "--port=0", "--rest_api_port=0"}, "nothing would be served"},
		{[]string{"serve", "--model_base_path=" + base, "--batching_parameters_file=b.config"}, "--batching_parameters_file is set without setting --enable_batching"},
		{[]string{"serve", "--model_base_path=" + base, "--grpc_channel_arguments=grpc.max_send_message_length=1"}, "--grpc_channel_arguments is not implemented"},
		{[]string{"serve", "--model_base_path=" + base, "--platform_config_file=p.config"}, "--platform_config_file is not implemented"},
		{[]string{"serve", "--model_base_path=" + base, "--saved_model_tags=serve,"}, `--saved_model_tags="serve,": a tag is empty`},
		{[]string{"serve", "--model_base_path=" + base, "--version_transition_policy=fast"}, "give availability_preserving or resource_preserving"},
	} {
		o, e, code := gotf(t, c.args...)
		assert.Equal(t, exitUsage, code, "%v: %s", c.args, e)
		assert.Empty(t, o)
		assert.Equal(t, 1, strings.Count(e, "\n"), "%v: %q", c.args, e)
		assert.Contains(t, e, c.msg)
	}
}

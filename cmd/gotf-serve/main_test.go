package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// asMain makes the test binary run the command itself when set, so that
// the test starts the real main in a process of its own without a build.
const asMain = "GOTF_SERVE_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// exportAffine exports y = x·w + b (w, b initialized from seed) as
// BASE/version, and returns what the session computes for x.
func exportAffine(t *testing.T, base string, version int64, seed int64, x [][]float32) []float32 {
	t.Helper()
	s := tfgo.NewScope()
	in := tfgo.Placeholder(s.SubScope("x"), tfgo.Float, -1, 3)
	w := tfgo.NewVariable(s, "w", tfgo.Float, []int64{3, 2}, tfgo.GlorotUniform(seed))
	b := tfgo.NewVariable(s, "b", tfgo.Float, []int64{2}, tfgo.RandomNormal(0, 1, seed+1))
	y := tfgo.AddV2(s.SubScope("y"), tfgo.MatMul(s, in, w.Value()), b.Value())
	init := tfgo.GlobalVariablesInitializer(s)
	sess, err := tfgo.NewSession(s, tfgo.SessionOptions{})
	require.NoError(t, err)
	defer sess.Close()
	_, err = sess.Run(nil, nil, init)
	require.NoError(t, err)
	out, err := sess.Run(map[tfgo.Output]any{in: x}, []tfgo.Output{y})
	require.NoError(t, err)
	want, err := tfgo.Float32s(out[0])
	require.NoError(t, err)
	_, err = runner.ExportVersion(base, version, s.Graph(), sess, map[string]runner.Signature{
		"serving_default": {Inputs: map[string]tfgo.Output{"x": in}, Outputs: map[string]tfgo.Output{"y": y}},
	}, runner.ExportOptions{})
	require.NoError(t, err)
	return want
}

// command is gotf-serve started by the test; it is killed when the test
// ends if it is still running.
type command struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited; then err is its Wait's
	err    error
	stderr *strings.Builder
}

func start(t *testing.T, args ...string) *command {
	t.Helper()
	c := &command{cmd: exec.Command(os.Args[0], args...), exited: make(chan struct{}), stderr: &strings.Builder{}}
	c.cmd.Env = append(os.Environ(), asMain+"=1", "TF_CPP_MIN_LOG_LEVEL=2")
	// Wait returns after the copy to stderr is done, so the cleanup
	// reads it without a race.
	c.cmd.Stderr = c.stderr
	require.NoError(t, c.cmd.Start())
	go func() { c.err = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Kill()
			<-c.exited
		}
		t.Logf("gotf-serve's log:\n%s", c.stderr.String())
	})
	return c
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func predict(t *testing.T, url, body string) []float32 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var out struct{ Predictions [][]float32 }
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	var flat []float32
	for _, row := range out.Predictions {
		flat = append(flat, row...)
	}
	return flat
}

// TestServesModelConfigFile starts gotf-serve on a loopback port with a
// model_config_list file naming two models (one with a specific version
// policy and a label), checks their status and predictions against the Go
// session that exported them, rewrites the file (which the command polls)
// and sees the new config served, and stops it with SIGTERM.
func TestServesModelConfigFile(t *testing.T) {
	dir := t.TempDir()
	x := [][]float32{{1, 2, 3}, {-0.5, 0.25, 4}}
	body := `{"instances": [[1, 2, 3], [-0.5, 0.25, 4]]}`
	wantA := exportAffine(t, filepath.Join(dir, "a"), 1, 1, x)
	wantB5 := exportAffine(t, filepath.Join(dir, "b"), 5, 2, x)
	wantB6 := exportAffine(t, filepath.Join(dir, "b"), 6, 3, x)
	config := filepath.Join(dir, "models.config")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`model_config_list {
  config { name: "a" base_path: %q model_platform: "tensorflow" }
  config {
    name: "b"
    base_path: %q
    model_version_policy { specific { versions: 5 } }
    version_labels { key: "stable" value: 5 }
  }
}
`, filepath.Join(dir, "a"), filepath.Join(dir, "b"))), 0o644))

	batching := filepath.Join(dir, "batching.config")
	require.NoError(t, os.WriteFile(batching, []byte("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 1000 }\n"), 0o644))
	monitoring := filepath.Join(dir, "monitoring.config")
	require.NoError(t, os.WriteFile(monitoring, []byte(`prometheus_config { enable: true, path: "/metrics" }`), 0o644))

	addr := testutil.FreeAddrs(t, 1)[0]
	port := addr[strings.LastIndex(addr, ":")+1:]
	c := start(t, "--rest_api_host=127.0.0.1", "--rest_api_port="+port, "--port=0",
		"--model_config_file="+config, "--file_system_poll_wait_seconds=1", "--model_config_file_poll_wait_seconds=1",
		"--tensorflow_intra_op_parallelism=1", "--enable_batching", "--batching_parameters_file="+batching,
		"--monitoring_config_file="+monitoring, "--rest_api_num_threads=4")
	url := "http://" + addr
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, resp := get(t, url+"/v1/models/b")
		if code == http.StatusOK && strings.Contains(resp, "AVAILABLE") {
			if code, resp := get(t, url+"/v1/models/a"); code == http.StatusOK && strings.Contains(resp, "AVAILABLE") {
				break
			}
		}
		select {
		case <-c.exited:
			t.Fatalf("gotf-serve exited: %v", c.err)
		default:
		}
		require.True(t, time.Now().Before(deadline), "models not available: %d %s", code, resp)
		time.Sleep(100 * time.Millisecond)
	}
	_, resp := get(t, url+"/v1/models/b")
	require.NotContains(t, resp, `"6"`, "the specific policy serves version 5 only")
	testutil.AllClose(t, "model a", wantA, predict(t, url+"/v1/models/a:predict", body), 1e-6, 1e-6)
	testutil.AllClose(t, "model b", wantB5, predict(t, url+"/v1/models/b:predict", body), 1e-6, 1e-6)
	testutil.AllClose(t, "model b, label stable", wantB5, predict(t, url+"/v1/models/b/labels/stable:predict", body), 1e-6, 1e-6)
	code, resp := get(t, url+"/v1/models/b/versions/6")
	require.Equal(t, http.StatusNotFound, code, resp)
	code, resp = get(t, url+"/readyz")
	require.Equal(t, http.StatusOK, code, resp)
	// The metrics are at the monitoring file's path, with batching's
	// (the batching file was read and the predicts went through it).
	code, resp = get(t, url+"/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{`:tensorflow:serving:request_count{model_name="b",status="OK"}`, ":tensorflow:serving:batching_session:wrapped_run_count 3"} {
		require.True(t, strings.Contains(resp, want), "metrics without %s", want)
	}

	// A new config, read by polling: a goes, b moves to version 6.
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`model_config_list {
  config { name: "b" base_path: %q model_version_policy { specific { versions: 6 } } }
}
`, filepath.Join(dir, "b"))), 0o644))
	for {
		code, resp = get(t, url+"/v1/models/b/versions/6")
		if code == http.StatusOK && strings.Contains(resp, "AVAILABLE") {
			break
		}
		require.True(t, time.Now().Before(deadline), "version 6 not available: %d %s", code, resp)
		time.Sleep(100 * time.Millisecond)
	}
	testutil.AllClose(t, "model b version 6", wantB6, predict(t, url+"/v1/models/b:predict", body), 1e-6, 1e-6)
	code, resp = get(t, url+"/v1/models/a")
	require.Equal(t, http.StatusNotFound, code, resp)

	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-c.exited:
		require.NoError(t, c.err, "exit status after SIGTERM")
	case <-time.After(60 * time.Second):
		t.Fatal("gotf-serve did not stop within 60 s of SIGTERM")
	}
}

// TestFlagErrors: a command line that names no model fails at once.
func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--model_base_path=/x", "--model_config_file=/y"},
		{"--model_base_path=/x", "--rest_api_port=0", "--port=0"},
		{"--model_config_file=/does/not/exist"},
		{"--model_base_path=/x", "--port=-1"},
	} {
		c := start(t, args...)
		select {
		case <-c.exited:
			var ee *exec.ExitError
			require.ErrorAs(t, c.err, &ee, "%v", args)
			require.Equal(t, 1, ee.ExitCode(), "%v", args)
		case <-time.After(60 * time.Second):
			t.Fatalf("gotf-serve %v did not fail", args)
		}
	}
}

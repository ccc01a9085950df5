package serve

import (
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/savedmodel"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

// TestVersionTransition: with ResourcePreserving, version 1 is unloaded
// (END) before version 2 loads, and a request between the two finds no
// version (NotFound, as TF Serving answers); with AvailabilityPreserving,
// version 1 answers while version 2 loads, and is unloaded once version 2
// is AVAILABLE. Version 2's warm-up, held by named pipes, stops the
// transition half-way for the test to look.
func TestVersionTransition(t *testing.T) {
	for _, policy := range []TransitionPolicy{AvailabilityPreserving, ResourcePreserving} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			base, staging := filepath.Join(dir, "warm"), filepath.Join(dir, "staging")
			gateA, gateB := filepath.Join(dir, "gate_a"), filepath.Join(dir, "gate_b")
			require.NoError(t, syscall.Mkfifo(gateA, 0o600))
			require.NoError(t, syscall.Mkfifo(gateB, 0o600))
			interop.Python(t, exportWarm, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(base, "1"))})
			exportWarmVersion(t, filepath.Join(staging, "2"), "gate:"+gateA, "gate:"+gateB)
			s := startServer(t, Config{Models: []ModelConfig{{Name: "warm", BasePath: base}}, PollInterval: 50 * time.Millisecond, VersionTransition: policy})
			// Runs before the server's cleanup: a warm-up left waiting on a
			// pipe would hold Close.
			unpassed := []string{gateA, gateB}
			t.Cleanup(func() {
				for _, g := range unpassed {
					go openGate(g)
				}
			})
			body := `{"instances": [[1.0, 2.0, 3.0]]}`
			code, resp := s.post(t, "/v1/models/warm:predict", body)
			require.Equal(t, http.StatusOK, code, resp)

			require.NoError(t, os.Rename(filepath.Join(staging, "2"), filepath.Join(base, "2")))
			passGate(t, gateA)
			unpassed = unpassed[1:]
			vs, err := s.ModelStatus("warm", nil)
			require.NoError(t, err)
			code, resp = s.post(t, "/v1/models/warm:predict", body)
			if policy == ResourcePreserving {
				require.Equal(t, []VersionStatus{{Version: 2, State: StateLoading}, {Version: 1, State: StateEnd}}, vs, "while version 2 warms up")
				errorBody(t, "a request between the versions", http.StatusNotFound, code, resp, "Servable not found for request: Latest(warm)")
			} else {
				require.Equal(t, []VersionStatus{{Version: 2, State: StateLoading}, {Version: 1, State: StateAvailable}}, vs, "while version 2 warms up")
				require.Equal(t, http.StatusOK, code, "a request while version 2 warms up: %s", resp)
			}
			passGate(t, gateB)
			unpassed = nil
			waitUntil(t, 10*time.Second, "version 2 available, version 1 unloaded", func() bool {
				vs, err := s.ModelStatus("warm", nil)
				return err == nil && len(vs) == 2 && vs[0].State == StateAvailable && vs[1].State == StateEnd
			})
			code, resp = s.post(t, "/v1/models/warm/versions/2:predict", body)
			require.Equal(t, http.StatusOK, code, resp)
		})
	}
}

// TestNewVersionFailing: a new version that fails to load (its warm-up
// file is no TFRecord of PredictionLog) leaves the old version serving
// with AvailabilityPreserving, as TF Serving's policy keeps the last
// available version while no aspired one is; with ResourcePreserving the
// old version is gone first and the model has no version.
func TestNewVersionFailing(t *testing.T) {
	for _, policy := range []TransitionPolicy{AvailabilityPreserving, ResourcePreserving} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			base, staging := filepath.Join(dir, "module"), filepath.Join(dir, "staging", "2")
			interop.Python(t, exportModule, map[string]*tfgo.Tensor{"dir": str(t, filepath.Join(base, "1")), "scale": tensorOf(t, float32(1))})
			require.NoError(t, os.CopyFS(staging, os.DirFS(filepath.Join(base, "1"))))
			warm := filepath.Join(staging, filepath.FromSlash(warmupFile))
			require.NoError(t, os.MkdirAll(filepath.Dir(warm), 0o755))
			require.NoError(t, os.WriteFile(warm, savedmodel.AppendRecord(nil, []byte("not a PredictionLog")), 0o644))
			poll := 50 * time.Millisecond
			s := startServer(t, Config{Models: []ModelConfig{{Name: "module", BasePath: base}}, PollInterval: poll, LoadRetries: -1, VersionTransition: policy})
			require.NoError(t, os.Rename(staging, filepath.Join(base, "2")))
			waitUntil(t, 10*time.Second, "version 2 failed", func() bool {
				vs, err := s.ModelStatus("module", nil)
				return err == nil && len(vs) == 2 && vs[0].State == StateEnd && vs[0].Err != nil
			})
			// Further scans change nothing.
			time.Sleep(5 * poll)
			vs, err := s.ModelStatus("module", nil)
			require.NoError(t, err)
			require.Contains(t, vs[0].Err.Message, "Failed to parse warmup record 0")
			body := `{"instances": [[1.0, 2.0, 3.0]]}`
			code, resp := s.post(t, "/v1/models/module:predict", body)
			readyCode, ready := s.get(t, "/readyz")
			if policy == ResourcePreserving {
				require.Equal(t, StateEnd, vs[1].State, "version 1")
				errorBody(t, "predict", http.StatusNotFound, code, resp, "Servable not found for request: Latest(module)")
				require.Equal(t, http.StatusServiceUnavailable, readyCode, ready)
				require.Contains(t, ready, "model module: no version available (version 2 failed to load: Failed to parse warmup record 0")
			} else {
				require.Equal(t, StateAvailable, vs[1].State, "version 1")
				checkPredict(t, s, filepath.Join(base, "1"), "/v1/models/module:predict", body)
				require.Equal(t, http.StatusOK, readyCode, ready)
			}
		})
	}
}

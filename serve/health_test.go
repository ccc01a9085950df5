package serve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// openGate opens a named pipe for reading and reads it to its end, which
// lets through a warm-up request blocked writing to it (the "gate"
// signature of exportWarm). Opening blocks until the request has opened
// the pipe, so once it returns that request is under way; reading to the
// end leaves the writer no broken pipe.
func openGate(fifo string) error {
	f, err := os.Open(fifo)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.ReadAll(f)
	return err
}

// passGate is openGate within a bound.
func passGate(t *testing.T, fifo string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- openGate(fifo) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("no warm-up request opened %s", fifo)
	}
}

// TestReadinessFollowsWarmup: while a version is warming up (its warm-up
// held between two records by named pipes), /healthz and /livez answer
// 200, /readyz 503 naming the model, the gRPC health service's overall
// status is NOT_SERVING and requests find no version; once the warm-up is
// done, /readyz is 200, the health status SERVING, and the version has
// run every record; after Close, readiness says the server is shutting
// down.
func TestReadinessFollowsWarmup(t *testing.T) {
	dir := t.TempDir()
	gateA, gateB := filepath.Join(dir, "gate_a"), filepath.Join(dir, "gate_b")
	require.NoError(t, syscall.Mkfifo(gateA, 0o600))
	require.NoError(t, syscall.Mkfifo(gateB, 0o600))
	base := filepath.Join(dir, "warm")
	runs := exportWarmVersion(t, filepath.Join(base, "1"), "gate:"+gateA, "predict", "classify", "gate:"+gateB, "regress")

	srv, err := New(Config{Models: []ModelConfig{{Name: "warm", BasePath: base}}, PollInterval: -1}, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	require.NoError(t, err)
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	restDone, grpcDone := make(chan error, 1), make(chan error, 1)
	go func() { restDone <- srv.Serve(rl) }()
	go func() { grpcDone <- srv.ServeGRPC(gl) }()
	closed := false
	unpassed := []string{gateA, gateB}
	closeServer := func() {
		// A warm-up still waiting on a pipe is let through, so that Close
		// does not wait for it forever.
		for _, g := range unpassed {
			go openGate(g)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Close(ctx))
		require.ErrorIs(t, <-restDone, http.ErrServerClosed)
		require.NoError(t, <-grpcDone)
		closed = true
	}
	t.Cleanup(func() {
		if !closed {
			closeServer()
		}
	})
	s := &testServer{Server: srv, url: "http://" + rl.Addr().String(), client: &http.Client{Timeout: time.Minute}}
	conn, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	healthStatus := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		require.NoError(t, err)
		return resp.GetStatus()
	}
	live := func(what string) {
		for _, p := range []string{"/healthz", "/livez"} {
			code, body := s.get(t, p)
			require.Equal(t, http.StatusOK, code, "%s %s: %s", what, p, body)
			require.JSONEq(t, `{"status": "ok"}`, body)
		}
	}
	notReady := func(what string, reason string) {
		code, body := s.get(t, "/readyz")
		require.Equal(t, http.StatusServiceUnavailable, code, "%s: %s", what, body)
		var got map[string]string
		require.NoError(t, jsonUnmarshal(body, &got), body)
		require.Equal(t, map[string]string{"status": "not ready", "reason": reason}, got, what)
		require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, healthStatus(""), what)
	}

	live("before Start")
	notReady("before Start", "model warm: no version available")
	started := make(chan error, 1)
	go func() { started <- srv.Start(context.Background()) }()
	passGate(t, gateA)
	unpassed = unpassed[1:]
	// The warm-up is past its first record and cannot end before gate B.
	vs, err := srv.ModelStatus("warm", nil)
	require.NoError(t, err)
	require.Equal(t, []VersionStatus{{Version: 1, State: StateLoading}}, vs)
	live("during warm-up")
	notReady("during warm-up", "model warm: version 1 is LOADING")
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, healthStatus("tensorflow.serving.PredictionService"), "the services answer during warm-up")
	code, body := s.post(t, "/v1/models/warm:predict", `{"instances": [[1.0, 2.0, 3.0]]}`)
	errorBody(t, "predict during warm-up", http.StatusNotFound, code, body, "Servable not found for request: Latest(warm)")
	select {
	case err := <-started:
		t.Fatalf("Start returned during the warm-up: %v", err)
	default:
	}

	passGate(t, gateB)
	unpassed = nil
	require.NoError(t, <-started)
	vs, err = srv.ModelStatus("warm", nil)
	require.NoError(t, err)
	require.Equal(t, []VersionStatus{{Version: 1, State: StateAvailable}}, vs)
	code, body = s.get(t, "/readyz")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"status": "ok"}`, body)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, healthStatus(""))
	require.Equal(t, runs, calls(t, s, "warm"), "runs of the warm-up records")
	code, _ = s.do(t, http.MethodPost, "/readyz", "")
	require.Equal(t, http.StatusMethodNotAllowed, code)

	closeServer()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.JSONEq(t, `{"status": "not ready", "reason": "the server is shutting down"}`, rec.Body.String())
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	require.Equal(t, http.StatusOK, rec.Code)
}

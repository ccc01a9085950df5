package serve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/testutil"
	"github.com/gotf/gotf/tfgo"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { interop.Main(m) }

// testServer is a Server on a loopback port, stopped when the test ends.
type testServer struct {
	*Server
	url    string
	client *http.Client
}

// startServer starts a server for cfg on 127.0.0.1 and waits for its
// first versions; the test's cleanup stops it.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	srv, err := New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Close(ctx))
		require.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, srv.Start(ctx))
	return &testServer{Server: srv, url: "http://" + l.Addr().String(), client: &http.Client{Timeout: time.Minute}}
}

// testWriter sends the server's log to the test's log, until the test ends.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// do sends a request and returns the status code and body.
func (s *testServer) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusOK || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s %s", method, path)
	}
	return resp.StatusCode, string(b)
}

func (s *testServer) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	return s.do(t, http.MethodPost, path, body)
}

func (s *testServer) get(t *testing.T, path string) (int, string) {
	t.Helper()
	return s.do(t, http.MethodGet, path, "")
}

func str(t *testing.T, s string) *tfgo.Tensor {
	t.Helper()
	tn, err := tfgo.NewTensor(s)
	require.NoError(t, err)
	return tn
}

func stringsOf(t *testing.T, tn *tfgo.Tensor) []string {
	t.Helper()
	b, err := tn.Strings()
	require.NoError(t, err)
	s := make([]string, len(b))
	for i, v := range b {
		s[i] = string(v)
	}
	return s
}

// sameTensor checks that got equals want: dtype, shape, and values
// (floating point to 1e-6 relative, NaN matching NaN).
func sameTensor(t *testing.T, what string, want, got *tfgo.Tensor) {
	t.Helper()
	require.Equal(t, want.DataType(), got.DataType(), "%s: dtype", what)
	require.Equal(t, want.Shape(), got.Shape(), "%s: shape", what)
	tol := testutil.Tol{Atol: 1e-6, Rtol: 1e-6, NaNEqual: true}
	switch want.DataType() {
	case tfgo.Float:
		w, err := tfgo.Float32s(want)
		require.NoError(t, err)
		g, err := tfgo.Float32s(got)
		require.NoError(t, err)
		testutil.AllCloseTol(t, what, w, g, tol)
	case tfgo.Double:
		w, err := tfgo.Float64s(want)
		require.NoError(t, err)
		g, err := tfgo.Float64s(got)
		require.NoError(t, err)
		testutil.AllCloseTol(t, what, w, g, tol)
	case tfgo.String:
		require.Equal(t, stringsOf(t, want), stringsOf(t, got), what)
	default:
		require.Equal(t, want.Data(), got.Data(), what)
	}
}

// errorBody checks an error answer: TF Serving's shape {"error": "..."} and
// code, and that the message contains each of parts; it returns the
// message.
func errorBody(t *testing.T, what string, wantCode, code int, body string, parts ...string) string {
	t.Helper()
	require.Equal(t, wantCode, code, "%s: %s", what, body)
	var e map[string]any
	require.NoError(t, jsonUnmarshal(body, &e), "%s: %s", what, body)
	require.Len(t, e, 1, "%s: %s", what, body)
	msg, ok := e["error"].(string)
	require.True(t, ok, "%s: %s", what, body)
	require.NotEmpty(t, msg, what)
	for _, p := range parts {
		require.Contains(t, msg, p, what)
	}
	return msg
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

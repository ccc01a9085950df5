package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotf/gotf/keraslike"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary be the server, as the command is.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		serveAsChild()
		return
	}
	os.Exit(m.Run())
}

// TestShortLoad runs the benchmark for 3 s at 20 requests/s per API on a
// small GPT of the main job's kind (untrained: the load, not the model, is
// under test): every request answered, latencies for each, Python's timing
// and logits beside them, the same as the server's, and the table.
func TestShortLoad(t *testing.T) {
	base := filepath.Join(t.TempDir(), "gpt")
	keraslike.ResetNames()
	m, err := keraslike.NewGPT("gpt", keraslike.GPTConfig{SeqLen: 16, DModel: 32, Heads: 2, Layers: 1})
	require.NoError(t, err)
	defer m.Close()
	_, err = m.ExportVersion(base, 1, keraslike.ExportOptions{InputName: "token_ids", OutputName: "logits"})
	require.NoError(t, err)

	res, err := run(options{rate: 20, duration: 3 * time.Second, maxFlight: 64, apis: "rest,grpc", model: base})
	require.NoError(t, err)
	t.Log("\n" + res.report)
	require.Len(t, res.runs, 2)
	for _, r := range res.runs {
		require.Equal(t, 60, r.sent, r.api)
		require.Zero(t, r.errors, "%s: first error %s", r.api, r.firstError)
		require.Len(t, r.latencies, r.sent, r.api)
		require.Positive(t, r.rssStart, r.api)
		require.Positive(t, r.rssEnd, r.api)
	}
	require.Equal(t, 60, res.python.calls)
	require.Less(t, res.diff, 1e-4, "the server's logits against Python's")
	for _, row := range []string{"| REST :predict (JSON) on loopback, 20 req/s for 3s, batch 1 | 60 | 0 |",
		"| gRPC Predict on loopback, 20 req/s for 3s, batch 1 | 60 | 0 |", "| Python in process:"} {
		require.Contains(t, res.report, row)
	}
}

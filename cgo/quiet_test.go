package cgo

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// startupChildEnv marks the re-executed test binary that starts
// TensorFlow and runs one op, so the parent can read what it logged.
const startupChildEnv = "GOTF_STARTUP_LOG_CHILD"

func TestStartupLogChild(t *testing.T) {
	if os.Getenv(startupChildEnv) != "1" {
		return // only the child started by TestStartupLogIsQuiet runs
	}
	g := NewGraph()
	defer g.Close()
	c := constOp(t, g, "c", []int64{2}, 1, 2)
	sess, err := NewSession(g, nil)
	require.NoError(t, err)
	defer sess.Close()
	out, err := sess.Run(nil, []Output{{Op: c, Index: 0}}, nil)
	require.NoError(t, err)
	out[0].Close()
}

// The start-up noise (oneDNN notices, cpu_feature_guard, CUDA probes) is
// hidden when TF_CPP_MIN_LOG_LEVEL is not set, and shown when it is 0 —
// the second run shows this test can see the noise it claims is gone.
func TestStartupLogIsQuiet(t *testing.T) {
	run := func(level string) string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStartupLogChild$", "-test.count=1")
		var env []string
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, LogLevelEnv+"=") {
				env = append(env, e)
			}
		}
		env = append(env, startupChildEnv+"=1")
		if level != "" {
			env = append(env, LogLevelEnv+"="+level)
		}
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "child: %s\n%s", out, stderr.String())
		return stderr.String()
	}
	quiet := run("")
	require.Empty(t, quiet, "TensorFlow logged at start-up with %s unset", LogLevelEnv)
	loud := run("0")
	t.Logf("with %s=0 the child logged %d bytes, e.g. %q", LogLevelEnv, len(loud), firstLine(loud))
	require.NotEmpty(t, loud, "with %s=0 TensorFlow logs its start-up notices; nothing came, so the quiet run proves nothing", LogLevelEnv)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

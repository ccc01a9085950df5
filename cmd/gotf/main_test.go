package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotf/gotf/internal/interop"
	"github.com/gotf/gotf/internal/pyref"
	"github.com/gotf/gotf/internal/setup"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { interop.Main(m) }

// gotf runs the command in-process and returns its stdout, stderr and exit code.
func gotf(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(args, &out, &errb)
	return out.String(), errb.String(), code
}

// mustGotf runs the command and fails the test unless it succeeds.
func mustGotf(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := gotf(t, args...)
	require.Equal(t, 0, code, "gotf %s: %s", strings.Join(args, " "), errs)
	return out
}

// python runs code in the shared Python TensorFlow worker; strs are its
// string inputs (paths), readable as inputs[k].item().decode(). Outputs
// that are JSON strings are decoded into the returned map.
func python(t *testing.T, code string, strs map[string]string) map[string]*pyref.Array {
	t.Helper()
	w, err := pyref.Shared()
	require.NoError(t, err)
	in := map[string]*pyref.Array{}
	for k, v := range strs {
		in[k] = &pyref.Array{DType: "string", Shape: []int64{}, Strings: [][]byte{[]byte(v)}}
	}
	out, err := w.Run(code, in)
	require.NoError(t, err)
	return out
}

// pyJSON decodes an output Python set to json.dumps(...).
func pyJSON(t *testing.T, a *pyref.Array, v any) {
	t.Helper()
	require.NotNil(t, a)
	require.Len(t, a.Strings, 1)
	require.NoError(t, json.Unmarshal(a.Strings[0], v))
}

func venvTool(t *testing.T, name string) string {
	t.Helper()
	root, err := setup.ModuleRoot()
	require.NoError(t, err)
	return filepath.Join(root, ".venv", "bin", name)
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(venvTool(t, name), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s: %s", name, stderr.String())
	return string(out)
}

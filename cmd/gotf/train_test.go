package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gotf train is the main job with its flags: a tiny run writes the job's
// outputs; a bad flag value is one line and a failure.
func TestTrainRunsTheMainJob(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a small model")
	}
	dir := t.TempDir()
	out := mustGotf(t, "train", "--layers", "1", "--dmodel", "32", "--heads", "2", "--seq", "16", "--batch", "4",
		"--steps", "4", "--epochs", "1", "--corpus", "65536", "--sample", "5", "--out", dir)
	assert.Contains(t, out, "trained 4 steps")
	for _, f := range []string{"model.keras", "checkpoints", "saved_model", filepath.Join("logs", "monitor.csv")} {
		_, err := os.Stat(filepath.Join(dir, f))
		assert.NoError(t, err, f)
	}
	o, errs, code := gotf(t, "train", "--policy", "mixed_foo", "--out", dir)
	assert.Equal(t, exitFailure, code, errs)
	assert.Empty(t, o)
	assert.Equal(t, 1, strings.Count(errs, "\n"), errs)
	assert.Contains(t, errs, `unknown dtype policy "mixed_foo"`)
	_, errs, code = gotf(t, "train", "extra")
	assert.Equal(t, exitUsage, code, errs)
	require.Contains(t, errs, "no arguments")
}

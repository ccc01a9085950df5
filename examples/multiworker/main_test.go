package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMultiWorkerWorker is a worker of TestMultiWorkerExampleRuns (this
// test binary again, with TF_CONFIG).
func TestMultiWorkerWorker(t *testing.T) {
	if os.Getenv("TF_CONFIG") == "" {
		t.Skip("run by TestMultiWorkerExampleRuns")
	}
	if err := worker(options{}, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

// The launcher runs two workers on loopback ports; they train together
// and the chief alone writes the model and the checkpoint.
func TestMultiWorkerExampleRuns(t *testing.T) {
	if os.Getenv("TF_CONFIG") != "" {
		t.Skip("a worker")
	}
	dir := t.TempDir()
	var out strings.Builder
	self := []string{os.Args[0], "-test.run=^TestMultiWorkerWorker$", "-test.count=1"}
	if err := launch(options{Workers: 2, Devices: 1, Steps: 12, Batch: 8, Dir: dir}, self, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"[worker 0] worker 0 of 2, 2 replicas in sync, chief: true", "[worker 1] worker 1 of 2", "[worker 1] trained: loss", "[worker 0] saved"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, f := range []string{"model.keras", "checkpoint"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the chief did not write %s: %v", f, err)
		}
	}
}

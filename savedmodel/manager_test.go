package savedmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gotf/gotf/dtypes"
)

func scalarF32(v float32) map[string]*Tensor {
	return map[string]*Tensor{"w": {DType: dtypes.Float, Data: leFloat32(v)}}
}

func leFloat32(v float32) []byte {
	b := make([]byte, 4)
	u := math.Float32bits(v)
	b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	return b
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// The manager keeps the newest checkpoints, and Python's
// tf.train.CheckpointManager continues where it stopped (and back).
func TestCheckpointManagerInteroperatesWithPython(t *testing.T) {
	dir := t.TempDir()
	m, err := NewCheckpointManager(dir, ManagerOptions{MaxToKeep: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := m.Save(scalarF32(float32(i)), -1); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Latest(); got != filepath.Join(dir, "ckpt-4") {
		t.Fatalf("latest %q", got)
	}
	for i, want := range []bool{false, false, false, true, true} {
		if got := exists(filepath.Join(dir, "ckpt-"+string(rune('0'+i))+".index")); got != want {
			t.Errorf("ckpt-%d on disk: %v, want %v", i, got, want)
		}
	}
	out, err := runPython(`
import json, sys, tensorflow as tf
d = sys.argv[1]
w = tf.Variable(0.0)
ck = tf.train.Checkpoint(w=w)
mgr = tf.train.CheckpointManager(ck, d, max_to_keep=2)
seen = {"latest": mgr.latest_checkpoint, "kept": list(mgr.checkpoints),
        "value": float(tf.train.load_checkpoint(mgr.latest_checkpoint).get_tensor("w"))}
w.assign(42.0)
seen["saved"] = mgr.save(checkpoint_number=5)
print(json.dumps(seen))
`, dir)
	if err != nil {
		t.Fatal(err)
	}
	var seen struct {
		Latest string   `json:"latest"`
		Kept   []string `json:"kept"`
		Value  float64  `json:"value"`
		Saved  string   `json:"saved"`
	}
	if err := json.Unmarshal(lastLine(out), &seen); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if seen.Latest != filepath.Join(dir, "ckpt-4") || len(seen.Kept) != 2 || seen.Kept[0] != filepath.Join(dir, "ckpt-3") {
		t.Errorf("Python sees latest %q, kept %q", seen.Latest, seen.Kept)
	}
	if seen.Value != 4 {
		t.Errorf("Python read w = %v from Go's latest, want 4", seen.Value)
	}
	// Go picks up Python's save: latest ckpt-5, next number 6, ckpt-3 gone.
	m2, err := NewCheckpointManager(dir, ManagerOptions{MaxToKeep: 2})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Latest() != seen.Saved {
		t.Errorf("Go's latest %q, Python saved %q", m2.Latest(), seen.Saved)
	}
	p, err := m2.Save(scalarF32(6), -1)
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(dir, "ckpt-6") {
		t.Errorf("next checkpoint %q", p)
	}
	if exists(filepath.Join(dir, "ckpt-4.index")) || !exists(filepath.Join(dir, "ckpt-5.index")) {
		t.Errorf("max_to_keep 2 should keep ckpt-5 and ckpt-6 only")
	}
}

// KeepEveryNHours keeps one checkpoint per period for good.
func TestCheckpointManagerKeepsEveryNHours(t *testing.T) {
	dir := t.TempDir()
	clock := time.Unix(1_000_000, 0)
	m, err := NewCheckpointManager(dir, ManagerOptions{MaxToKeep: 1, KeepEveryNHours: 1, now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ { // one every 25 minutes
		if _, err := m.Save(scalarF32(float32(i)), -1); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(25 * time.Minute)
	}
	var kept []int
	for i := 0; i < 6; i++ {
		if exists(filepath.Join(dir, "ckpt-"+string(rune('0'+i))+".index")) {
			kept = append(kept, i)
		}
	}
	// ckpt-3, the first dropped 1 hour or more after the manager started
	// (75 min), is preserved; then ckpt-5, the latest.
	want := []int{3, 5}
	if len(kept) != len(want) || kept[0] != want[0] || kept[1] != want[1] {
		t.Errorf("kept %v, want %v", kept, want)
	}
	if len(m.Checkpoints()) != 1 {
		t.Errorf("the state lists %v, want only the latest", m.Checkpoints())
	}
}

// lastLine is the last non-empty line of out.
func lastLine(out []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	return lines[len(lines)-1]
}

// A manager of a relative directory (the defect: paths doubled to
// runs/gomgr/runs/gomgr/ckpt-4, wrong paths in the state file, nothing
// deleted beyond MaxToKeep) gives prefixes usable from the working
// directory, stores them relative to the directory, keeps MaxToKeep, and
// Python's tf.train.latest_checkpoint and tf.train.CheckpointManager, in
// the same working directory, read its state as Go does and continue it.
func TestCheckpointManagerRelativeDirectory(t *testing.T) {
	t.Chdir(t.TempDir())
	const dir = "runs/gomgr"
	m, err := NewCheckpointManager(dir, ManagerOptions{MaxToKeep: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		p, err := m.Save(scalarF32(float32(i)), -1)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, fmt.Sprintf("ckpt-%d", i)); p != want {
			t.Fatalf("Save returned %q, want %q", p, want)
		}
	}
	if got, want := m.Latest(), filepath.Join(dir, "ckpt-4"); got != want {
		t.Errorf("Latest %q, want %q", got, want)
	}
	if got := m.Checkpoints(); len(got) != 2 || got[0] != filepath.Join(dir, "ckpt-3") || got[1] != filepath.Join(dir, "ckpt-4") {
		t.Errorf("Checkpoints %q", got)
	}
	for i, want := range []bool{false, false, false, true, true} {
		if got := exists(filepath.Join(dir, fmt.Sprintf("ckpt-%d.index", i))); got != want {
			t.Errorf("ckpt-%d on disk: %v, want %v", i, got, want)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, CheckpointStateFilename))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := ParseCheckpointState(raw)
	if err != nil {
		t.Fatal(err)
	}
	if stored.ModelCheckpointPath != "ckpt-4" || len(stored.AllModelCheckpointPaths) != 2 || stored.AllModelCheckpointPaths[0] != "ckpt-3" {
		t.Errorf("the state file stores %q and %q, want paths relative to the directory", stored.ModelCheckpointPath, stored.AllModelCheckpointPaths)
	}
	latest, err := LatestCheckpoint(dir)
	if err != nil || latest != m.Latest() {
		t.Errorf("LatestCheckpoint %q, %v; the manager says %q", latest, err, m.Latest())
	}
	r, err := OpenBundle(m.Latest())
	if err != nil {
		t.Fatal(err)
	}
	r.Close()

	out, err := runPython(`
import json, sys, tensorflow as tf
d = sys.argv[1]
w = tf.Variable(0.0)
ck = tf.train.Checkpoint(w=w)
seen = {"latest_checkpoint": tf.train.latest_checkpoint(d)}
mgr = tf.train.CheckpointManager(ck, d, max_to_keep=2)
seen["latest"] = mgr.latest_checkpoint
seen["kept"] = list(mgr.checkpoints)
seen["value"] = float(tf.train.load_checkpoint(mgr.latest_checkpoint).get_tensor("w"))
w.assign(42.0)
seen["saved"] = mgr.save(checkpoint_number=5)
print(json.dumps(seen))
`, dir)
	if err != nil {
		t.Fatal(err)
	}
	var seen struct {
		LatestCheckpoint string   `json:"latest_checkpoint"`
		Latest           string   `json:"latest"`
		Kept             []string `json:"kept"`
		Value            float64  `json:"value"`
		Saved            string   `json:"saved"`
	}
	if err := json.Unmarshal(lastLine(out), &seen); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if seen.LatestCheckpoint != m.Latest() || seen.Latest != m.Latest() {
		t.Errorf("Python's latest_checkpoint %q and CheckpointManager %q, Go's %q", seen.LatestCheckpoint, seen.Latest, m.Latest())
	}
	if !slices.Equal(seen.Kept, m.Checkpoints()) {
		t.Errorf("Python keeps %q, Go %q", seen.Kept, m.Checkpoints())
	}
	if seen.Value != 4 {
		t.Errorf("Python read w = %v from Go's latest, want 4", seen.Value)
	}
	// Go continues Python's save, in the same relative terms.
	m2, err := NewCheckpointManager(dir, ManagerOptions{MaxToKeep: 2})
	if err != nil {
		t.Fatal(err)
	}
	if m2.Latest() != seen.Saved {
		t.Errorf("Go's latest %q, Python saved %q", m2.Latest(), seen.Saved)
	}
	p, err := m2.Save(scalarF32(6), -1)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "ckpt-6"); p != want || m2.Latest() != want {
		t.Errorf("next checkpoint %q, latest %q, want %q", p, m2.Latest(), want)
	}
	if exists(filepath.Join(dir, "ckpt-4.index")) || !exists(filepath.Join(dir, "ckpt-5.index")) {
		t.Errorf("max_to_keep 2 should keep ckpt-5 and ckpt-6 only")
	}
	if raw, err = os.ReadFile(filepath.Join(dir, CheckpointStateFilename)); err != nil {
		t.Fatal(err)
	}
	if stored, err = ParseCheckpointState(raw); err != nil || stored.ModelCheckpointPath != "ckpt-6" ||
		!slices.Equal(stored.AllModelCheckpointPaths, []string{"ckpt-5", "ckpt-6"}) {
		t.Errorf("the state file stores %q and %q (%v)", stored.ModelCheckpointPath, stored.AllModelCheckpointPaths, err)
	}
}

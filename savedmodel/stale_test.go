package savedmodel

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// A save removes the temporaries of killed saves of the same kind (an
// unlocked file with the name of one), never those of a writer still at
// work, nor files that only look alike.
func TestSavesRemoveOnlyAbandonedTemporaries(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("temporaries are told apart by flocks, which only Linux builds take")
	}
	dir := t.TempDir()
	touch := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	abandoned := []string{
		touch("ckpt-3.index.tempstate123"),
		touch("ckpt-3.data-00000-of-00001.tempstate456"),
		touch("checkpoint.tmp789"),
	}
	unrelated := []string{
		touch("ckpt-3.index.tempstate"),                // no digits
		touch("other-1.index.tempstate1"),              // another manager's name
		touch("ckpt-x.data-00000-of-00001.tempstate1"), // not a checkpoint number
		touch("notes.tmp1"),
	}
	// A writer at work on ckpt-9, whose temporaries must survive.
	live, err := NewBundleWriter(filepath.Join(dir, "ckpt-9"), WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Add("w", scalarF32(1)["w"]); err != nil {
		t.Fatal(err)
	}
	m, err := NewCheckpointManager(dir, ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Save(scalarF32(2), 4); err != nil {
		t.Fatal(err)
	}
	for _, p := range abandoned {
		if exists(p) {
			t.Errorf("%s: a killed save's temporary survived the next save", filepath.Base(p))
		}
	}
	for _, p := range unrelated {
		if !exists(p) {
			t.Errorf("%s: removed, though it is not a temporary of this manager", filepath.Base(p))
		}
	}
	if err := live.Close(); err != nil {
		t.Fatalf("the writer at work lost its temporaries: %v", err)
	}
	checkBundleHolds(t, filepath.Join(dir, "ckpt-9"), scalarF32(1), "the live writer's bundle")

	// Publish removes other versions' dead temporary directories, and
	// Write those of its own name.
	base := filepath.Join(dir, "model")
	for _, d := range []string{".3.tmp-11", ".2.removing-12", "export.tmp-1", ".4.tmp-x"} {
		if err := os.MkdirAll(filepath.Join(base, d, "variables"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sm := &Directory{SavedModel: testSavedModel()}
	if _, err := Publish(base, 5, sm); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{".3.tmp-11": false, ".2.removing-12": false, "export.tmp-1": true, ".4.tmp-x": true} {
		if got := exists(filepath.Join(base, d)); got != want {
			t.Errorf("%s after Publish: exists %v, want %v", d, got, want)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, ".exp.tmp-77"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "exp"), sm); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(dir, ".exp.tmp-77")) {
		t.Error("Write left a killed Write's temporary directory")
	}
}

package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gotf/gotf/internal/killtest"
)

func TestWriteFileReplacesAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "m.h5")
	for _, want := range []string{"one", "two"} {
		err := WriteFile(target, func(p string) error {
			// A scratch file beside the result goes with the directory.
			if err := os.WriteFile(p+".scratch", []byte("x"), 0o644); err != nil {
				return err
			}
			return os.WriteFile(p, []byte(want), 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(target); string(got) != want {
			t.Fatalf("target holds %q, want %q", got, want)
		}
		if got := killtest.DirNames(t, dir); !slices.Equal(got, []string{"m.h5"}) {
			t.Fatalf("the directory holds %v, want only m.h5", got)
		}
	}
	// A failed fill leaves the target as it was and no temporary.
	boom := errors.New("boom")
	err := WriteFile(target, func(p string) error {
		os.WriteFile(p, []byte("half"), 0o644)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if got, _ := os.ReadFile(target); string(got) != "two" {
		t.Fatalf("a failed save changed the target to %q", got)
	}
	if got := killtest.DirNames(t, dir); !slices.Equal(got, []string{"m.h5"}) {
		t.Fatalf("a failed save left %v", got)
	}
}

// A killed save's directory (its lock gone with its process) is removed
// by the next save of the same target; a running save's directory, other
// targets' temporaries and files of other names are not.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "m.keras")
	killed, err := NewTemp(target)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(killed.Dir, "big"), make([]byte, 1<<20), 0o644)
	killed.lock.Close() // as the kernel does when the process dies
	running, err := NewTemp(target)
	if err != nil {
		t.Fatal(err)
	}
	defer running.Remove()
	keep := []string{"m.keras", ".m.keras.tmp-", ".m.keras.tmp-12x", ".other.keras.tmp-123", "m.keras.tmp-123", ".m.keras.tmp-999"}
	for _, n := range keep[:5] {
		if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A plain file of a temporary's name: not made by this package.
	if err := os.WriteFile(filepath.Join(dir, keep[5]), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	RemoveStale(target)
	got := killtest.DirNames(t, dir)
	if slices.Contains(got, filepath.Base(killed.Dir)) {
		t.Errorf("the killed save's directory is still there: %v", got)
	}
	want := append(slices.Clone(keep), filepath.Base(running.Dir))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after RemoveStale the directory holds %v, want %v", got, want)
	}
}

func TestTempBase(t *testing.T) {
	for name, want := range map[string]string{
		".m.keras.tmp-123":    "m.keras",
		".a.tmp-5.tmp-77":     "a.tmp-5",
		".ckpt.tmp-0":         "ckpt",
		".ckpt.tmp-":          "",
		".ckpt.tmp-1a":        "",
		"ckpt.tmp-1":          "",
		".tmp-1":              "",
		".ckpt.tmp1":          "",
		".ckpt.index.tmp-12x": "",
	} {
		got, ok := tempBase(name)
		if ok != (want != "") || got != want {
			t.Errorf("tempBase(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}

package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/savedmodel"
)

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

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
		if got := listDir(t, dir); !slices.Equal(got, []string{"m.h5"}) {
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
	if got := listDir(t, dir); !slices.Equal(got, []string{"m.h5"}) {
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
	got := listDir(t, dir)
	if slices.Contains(got, filepath.Base(killed.Dir)) {
		t.Errorf("the killed save's directory is still there: %v", got)
	}
	want := append(slices.Clone(keep), filepath.Base(running.Dir))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after RemoveStale the directory holds %v, want %v", got, want)
	}
}

func bundleOf(t *testing.T, v float32) map[string]*savedmodel.Tensor {
	t.Helper()
	ts := map[string]*savedmodel.Tensor{}
	for _, name := range []string{"a", "b", "c"} {
		b := make([]byte, 4)
		copy(b, []byte{byte(v), 0, 0, 0})
		ts[name] = &savedmodel.Tensor{DType: dtypes.Float, Shape: []int64{1}, Data: b}
	}
	return ts
}

func checkBundle(t *testing.T, prefix string, v float32, shards int) {
	t.Helper()
	r, err := savedmodel.OpenBundle(prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n := int(r.Header().GetNumShards()); n != shards {
		t.Errorf("%d shards, want %d", n, shards)
	}
	for _, name := range r.Names() {
		got, err := r.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		if got.Data[0] != byte(v) {
			t.Errorf("%s holds %d, want %v", name, got.Data[0], v)
		}
	}
}

// ReplaceBundle alternates the shard count, so that the new data files
// never take the names the old index references, and leaves only the
// current checkpoint's files.
func TestReplaceBundleAlternatesShards(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "ckpt")
	// Leftovers: data files of a 3-shard checkpoint and of a killed
	// save's 2-shard one, none referenced once the first save commits.
	for _, n := range []string{"ckpt.data-00000-of-00003", "ckpt.data-00001-of-00002", "ckpt.data-x-of-00001", "other.data-00000-of-00002"} {
		os.WriteFile(filepath.Join(dir, n), []byte("old"), 0o644)
	}
	var asked []int
	for i, v := range []float32{1, 2, 3} {
		err := ReplaceBundle(prefix, func(tmp string, n int) error {
			asked = append(asked, n)
			return savedmodel.WriteBundle(tmp, bundleOf(t, v), savedmodel.WriteOptions{NumShards: n})
		})
		if err != nil {
			t.Fatal(err)
		}
		checkBundle(t, prefix, v, asked[i])
		want := []string{"ckpt.data-x-of-00001", "ckpt.index", "other.data-00000-of-00002"}
		for s := range asked[i] {
			want = append(want, filepath.Base(savedmodel.DataFilename(prefix, s, asked[i])))
		}
		slices.Sort(want)
		if got := listDir(t, dir); !slices.Equal(got, want) {
			t.Errorf("after save %d the directory holds %v, want %v", i, got, want)
		}
	}
	if !slices.Equal(asked, []int{1, 2, 1}) {
		t.Errorf("shard counts asked %v, want [1 2 1]", asked)
	}

	// A failing writer, or one writing another shard count, leaves the
	// checkpoint as it was and no temporary.
	boom := errors.New("boom")
	if err := ReplaceBundle(prefix, func(tmp string, n int) error {
		savedmodel.WriteBundle(tmp, bundleOf(t, 9), savedmodel.WriteOptions{NumShards: n})
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if err := ReplaceBundle(prefix, func(tmp string, n int) error {
		return savedmodel.WriteBundle(tmp, bundleOf(t, 9), savedmodel.WriteOptions{NumShards: n + 1})
	}); err == nil {
		t.Fatal("a writer of the wrong shard count was accepted")
	}
	checkBundle(t, prefix, 3, 1)
	if got := listDir(t, dir); len(got) != 4 {
		t.Errorf("failed saves left %v", got)
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

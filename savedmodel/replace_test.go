package savedmodel

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/internal/killtest"
)

func replaceBundleOf(t *testing.T, v float32) map[string]*Tensor {
	t.Helper()
	ts := map[string]*Tensor{}
	for _, name := range []string{"a", "b", "c"} {
		b := make([]byte, 4)
		copy(b, []byte{byte(v), 0, 0, 0})
		ts[name] = &Tensor{DType: dtypes.Float, Shape: []int64{1}, Data: b}
	}
	return ts
}

func checkReplaced(t *testing.T, prefix string, v float32, shards int) {
	t.Helper()
	r, err := OpenBundle(prefix)
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
			return WriteBundle(tmp, replaceBundleOf(t, v), WriteOptions{NumShards: n})
		})
		if err != nil {
			t.Fatal(err)
		}
		checkReplaced(t, prefix, v, asked[i])
		want := []string{"ckpt.data-x-of-00001", "ckpt.index", "other.data-00000-of-00002"}
		for s := range asked[i] {
			want = append(want, filepath.Base(DataFilename(prefix, s, asked[i])))
		}
		slices.Sort(want)
		if got := killtest.DirNames(t, dir); !slices.Equal(got, want) {
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
		WriteBundle(tmp, replaceBundleOf(t, 9), WriteOptions{NumShards: n})
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if err := ReplaceBundle(prefix, func(tmp string, n int) error {
		return WriteBundle(tmp, replaceBundleOf(t, 9), WriteOptions{NumShards: n + 1})
	}); err == nil {
		t.Fatal("a writer of the wrong shard count was accepted")
	}
	checkReplaced(t, prefix, 3, 1)
	if got := killtest.DirNames(t, dir); len(got) != 4 {
		t.Errorf("failed saves left %v", got)
	}
}

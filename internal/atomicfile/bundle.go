package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gotf/gotf/savedmodel"
)

// ReplaceBundle replaces the TensorBundle checkpoint at prefix with the one
// write makes. write gets a prefix inside a new temporary directory and the
// number of data shards to write there (1 or 2): exactly that many, as
// TensorFlow names them (tmp.data-00000-of-0000N), and the index last.
//
// A checkpoint's data files are named after the prefix and the shard
// count only, so a new checkpoint of as many shards as the old one would
// have to be renamed over data files the old index still names, and a
// kill between those renames and the index's would leave the old index
// over new data. ReplaceBundle therefore asks for a shard count other than
// the current checkpoint's: the new data files go in under names the old
// index does not reference, the index is renamed last (the one atomic step
// that switches checkpoints), and only then are the old data files removed.
// At every instant the prefix reads as the old checkpoint or the new one.
func ReplaceBundle(prefix string, write func(tmpPrefix string, numShards int) error) error {
	t, err := NewTemp(prefix)
	if err != nil {
		return err
	}
	defer t.Remove()
	n := 1
	if numShards(prefix) == 1 {
		n = 2
	}
	tmp := filepath.Join(t.Dir, filepath.Base(prefix))
	if err := write(tmp, n); err != nil {
		return err
	}
	r, err := savedmodel.OpenBundle(tmp)
	if err != nil {
		return fmt.Errorf("reading back the new checkpoint: %w", err)
	}
	got := int(r.Header().GetNumShards())
	r.Close()
	if got != n {
		return fmt.Errorf("the new checkpoint %s has %d data shards, want %d", tmp, got, n)
	}
	for i := range n {
		if err := syncFile(savedmodel.DataFilename(tmp, i, n)); err != nil {
			return err
		}
	}
	if err := syncFile(savedmodel.IndexFilename(tmp)); err != nil {
		return err
	}
	for i := range n {
		if err := os.Rename(savedmodel.DataFilename(tmp, i, n), savedmodel.DataFilename(prefix, i, n)); err != nil {
			return fmt.Errorf("committing %s: %w", prefix, err)
		}
	}
	// The data files' entries must be durable before the index naming them.
	if err := syncDir(filepath.Dir(prefix)); err != nil {
		return err
	}
	if err := Commit(savedmodel.IndexFilename(tmp), savedmodel.IndexFilename(prefix)); err != nil {
		return fmt.Errorf("committing %s: %w", prefix, err)
	}
	removeOtherShards(prefix, n)
	return nil
}

// numShards is the shard count of the checkpoint at prefix, 0 when there is
// none or its index does not read (then no data file is in use).
func numShards(prefix string) int {
	r, err := savedmodel.OpenBundle(prefix)
	if err != nil {
		return 0
	}
	defer r.Close()
	return int(r.Header().GetNumShards())
}

// removeOtherShards removes the data files of prefix that a checkpoint of n
// shards does not use: the previous checkpoint's, and those a killed save
// renamed into place before its index.
func removeOtherShards(prefix string, n int) {
	dir, base := filepath.Split(prefix)
	forEntries(dir, func(p string, e os.DirEntry) {
		if of, ok := dataShardCount(e.Name(), base); ok && of != n && !e.IsDir() {
			os.Remove(p)
		}
	})
}

// dataShardCount parses a data file name of the bundle base,
// "<base>.data-SSSSS-of-NNNNN", returning NNNNN.
func dataShardCount(name, base string) (int, bool) {
	rest, ok := strings.CutPrefix(name, base+".data-")
	if !ok {
		return 0, false
	}
	shard, of, ok := strings.Cut(rest, "-of-")
	if !ok || len(shard) < 5 || len(of) < 5 || !digits(shard) || !digits(of) {
		return 0, false
	}
	n, err := strconv.Atoi(of)
	if err != nil {
		return 0, false
	}
	return n, true
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

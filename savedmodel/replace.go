package savedmodel

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gotf/gotf/internal/atomicfile"
)

// ReplaceBundle replaces the bundle at prefix with the one write makes,
// for writers that cannot be pointed at a BundleWriter (TensorFlow's
// SaveV2 op, for one). write gets a prefix inside a new temporary
// directory next to prefix and the number of data shards to write there
// (1 or 2): exactly that many, as TensorFlow names them
// (tmp.data-00000-of-0000N), and the index.
//
// As with BundleWriter, the new data files must not take the names the old
// index references (a kill between their renames and the index's would
// leave the old index over new data): ReplaceBundle asks for a shard count
// other than the current bundle's, so the shard count alternates between 1
// and 2 from one save to the next. The files are synced, the data files
// renamed in, the index renamed last (the one step that switches bundles)
// and only then the other shard counts' data files removed: at every
// instant the prefix reads as the old bundle or the new one. A killed
// save leaves its temporary directory, which the next save of the prefix
// removes (internal/atomicfile).
func ReplaceBundle(prefix string, write func(tmpPrefix string, numShards int) error) error {
	t, err := atomicfile.NewTemp(prefix)
	if err != nil {
		return err
	}
	defer t.Remove()
	n := 1
	if currentShards(prefix) == 1 {
		n = 2
	}
	tmp := filepath.Join(t.Dir, filepath.Base(prefix))
	if err := write(tmp, n); err != nil {
		return err
	}
	if got := bundleShards(tmp); got != n {
		return &Error{Op: "commit", File: IndexFilename(tmp), Err: fmt.Errorf("the new bundle has %d data shards (0: unreadable), want %d", got, n)}
	}
	for i := range n {
		if err := atomicfile.SyncFile(DataFilename(tmp, i, n)); err != nil {
			return &Error{Op: "commit", File: prefix, Err: err}
		}
	}
	for i := range n {
		if err := os.Rename(DataFilename(tmp, i, n), DataFilename(prefix, i, n)); err != nil {
			return &Error{Op: "commit", File: prefix, Err: err}
		}
	}
	// The data files' entries must be durable before the index naming them.
	if err := atomicfile.SyncDir(filepath.Dir(prefix)); err != nil {
		return &Error{Op: "commit", File: prefix, Err: err}
	}
	if err := atomicfile.Commit(IndexFilename(tmp), IndexFilename(prefix)); err != nil {
		return &Error{Op: "commit", File: prefix, Err: err}
	}
	removeOtherShards(prefix, n)
	return nil
}

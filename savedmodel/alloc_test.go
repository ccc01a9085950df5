package savedmodel

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gotf/gotf/dtypes"
	"github.com/gotf/gotf/internal/testutil"
	tsp "github.com/wamuir/graft/tensorflow/core/framework/tensor_slice_go_proto"
	"github.com/wamuir/graft/tensorflow/core/framework/versions_go_proto"
	fcpb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
)

// allocated returns the bytes f allocates on the heap: the least of three
// runs, so that an allocation elsewhere in the process during one run
// does not count.
func allocated(f func()) uint64 {
	least := uint64(1<<64 - 1)
	var before, after runtime.MemStats
	for range 3 {
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// TestHugeClaimsAllocateNothing measures the claim of the package doc
// that nothing is allocated from a size read from a file before that size
// is checked against the file's: index entries claiming tensors of 256 MiB
// and more, next to a 64-byte data shard, are refused by Read and
// ReadInto (buffered and DirectIO) with less than 64 KiB allocated in all.
func TestHugeClaimsAllocateNothing(t *testing.T) {
	const claimed = 256 << 20 // bytes each entry claims, at least
	const bound = 64 << 10    // what opening and failing may allocate
	hdr := &fcpb.BundleHeaderProto{NumShards: 1, Version: &versions_go_proto.VersionDef{Producer: 1}}
	f32, str := dtypes.Float, dtypes.String
	entry := func(dt DataType, shape []int64, off, size int64) *fcpb.BundleEntryProto {
		return &fcpb.BundleEntryProto{Dtype: dt.Proto(), Shape: shp(shape...), Offset: off, Size: size}
	}
	// A data shard whose first string length says 256 MiB.
	data := binary.AppendUvarint(nil, claimed)
	data = append(data, make([]byte, 64-len(data))...)
	half := []Extent{{0, claimed / 8}}
	other := []Extent{{claimed / 8, claimed / 8}}
	cases := map[string]struct {
		entries map[string]*fcpb.BundleEntryProto
		text    string
	}{
		"float tensor": {map[string]*fcpb.BundleEntryProto{
			"x": entry(f32, []int64{claimed / 4}, 0, claimed)}, "outside the 64-byte data file"},
		"float tensor, size in the file": {map[string]*fcpb.BundleEntryProto{
			"x": entry(f32, []int64{claimed / 4}, 0, 64)}, "a float32 tensor of shape [67108864] has 268435456"},
		"many strings": {map[string]*fcpb.BundleEntryProto{
			"x": entry(str, []int64{claimed}, 0, 64)}, "too few for"},
		"long string": {map[string]*fcpb.BundleEntryProto{
			"x": entry(str, []int64{2}, 0, 64)}, "string lengths add up to more than"},
		"partitioned": {map[string]*fcpb.BundleEntryProto{
			"x": {Dtype: f32.Proto(), Shape: shp(claimed / 4), Slices: []*tsp.TensorSliceProto{
				extentsToProto(half), extentsToProto(other)}},
			SliceKey("x", half):  entry(f32, []int64{claimed / 8}, 0, claimed/2),
			SliceKey("x", other): entry(f32, []int64{claimed / 8}, 0, claimed/2),
		}, "outside the 64-byte data file"},
		"partitioned, slices in the file": {map[string]*fcpb.BundleEntryProto{
			"x": {Dtype: str.Proto(), Shape: shp(claimed / 4), Slices: []*tsp.TensorSliceProto{
				extentsToProto(half), extentsToProto(other)}},
			SliceKey("x", half):  entry(str, []int64{claimed / 8}, 0, 32),
			SliceKey("x", other): entry(str, []int64{claimed / 8}, 32, 32),
		}, "too few for"},
	}
	for what, c := range cases {
		prefix := craft(t, hdr, c.entries, data)
		for _, opts := range []ReadOptions{{IO: BufferedIO}, {IO: DirectIO}, {}} {
			var errs []error
			n := allocated(func() {
				errs = errs[:0]
				r, err := OpenBundleWithOptions(prefix, opts)
				if err != nil {
					errs = append(errs, err)
					return
				}
				defer r.Close()
				_, err = r.Read("x")
				errs = append(errs, err)
				errs = append(errs, r.ReadInto("x", io.Discard))
			})
			for i, err := range errs {
				if i == 1 && c.entries["x"].GetDtype() == str.Proto() {
					// ReadInto refuses string tensors before looking.
					if !errors.Is(err, ErrUnsupported) {
						t.Errorf("%s, %v: ReadInto of a string tensor: %v", what, opts.IO, err)
					}
					continue
				}
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.text) {
					t.Errorf("%s, %v: got %v, want an ErrCorrupt saying %q", what, opts.IO, err, c.text)
				}
			}
			if n > bound {
				t.Errorf("%s, %v: refusing an entry that claims %d MiB allocated %d bytes", what, opts.IO, claimed>>20, n)
			}
			t.Logf("%s, %v: %d bytes allocated", what, opts.IO, n)
		}
	}
}

// TestFilesOverTheirBoundsAreRefused: every file read whole (a bundle's
// .index, saved_model.pb and .pbtxt, fingerprint.pb, the checkpoint state)
// is refused with an error wrapping ErrTooLarge and naming it when it is
// over its bound, before its bytes are read: the files here are sparse,
// one byte over, and refusing them allocates almost nothing. A FIFO in a
// file's place is refused instead of blocking the reader.
func TestFilesOverTheirBoundsAreRefused(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "ckpt")
	if err := WriteBundle(prefix, scalarF32(1), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	sparse := func(path string, size int64) {
		t.Helper()
		os.Remove(path)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	check := func(what, file string, read func() error) {
		t.Helper()
		var err error
		n := allocated(func() { err = read() })
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: got %v, want an ErrTooLarge naming %s", what, err, file)
		}
		if n > 64<<10 {
			t.Errorf("%s: refusing the file allocated %d bytes", what, n)
		}
		t.Logf("%s: %v (%d bytes allocated)", what, err, n)
	}

	// A genuine index under a bound set below its size.
	check("index over ReadOptions.MaxIndexBytes", IndexFilename(prefix), func() error {
		_, err := OpenBundleWithOptions(prefix, ReadOptions{MaxIndexBytes: 16})
		return err
	})
	sparse(IndexFilename(prefix), DefaultMaxIndexBytes+1)
	check("index over the default bound", IndexFilename(prefix), func() error {
		_, err := OpenBundle(prefix)
		return err
	})

	sm := filepath.Join(dir, "sm")
	if err := os.MkdirAll(filepath.Join(sm, VariablesDirectory), 0o755); err != nil {
		t.Fatal(err)
	}
	sparse(filepath.Join(sm, SavedModelFilename), MaxSavedModelBytes+1)
	check("saved_model.pb", filepath.Join(sm, SavedModelFilename), func() error {
		_, err := ReadSavedModel(sm)
		return err
	})
	check("saved_model.pb, for ReadMetaGraph", filepath.Join(sm, SavedModelFilename), func() error {
		_, err := ReadMetaGraph(sm, TagServe)
		return err
	})
	check("saved_model.pb, for Fingerprint", filepath.Join(sm, SavedModelFilename), func() error {
		_, err := Fingerprint(sm)
		return err
	})
	os.Remove(filepath.Join(sm, SavedModelFilename))
	sparse(filepath.Join(sm, SavedModelFilenameText), MaxSavedModelBytes+1)
	check("saved_model.pbtxt", filepath.Join(sm, SavedModelFilenameText), func() error {
		_, err := ReadSavedModel(sm)
		return err
	})
	sparse(filepath.Join(sm, FingerprintFilename), MaxFingerprintBytes+1)
	check("fingerprint.pb", filepath.Join(sm, FingerprintFilename), func() error {
		_, err := ReadFingerprint(sm)
		return err
	})
	sparse(filepath.Join(dir, CheckpointStateFilename), MaxCheckpointStateBytes+1)
	check("checkpoint state", filepath.Join(dir, CheckpointStateFilename), func() error {
		_, err := ReadCheckpointState(dir)
		return err
	})
	check("checkpoint state, for LatestCheckpoint", filepath.Join(dir, CheckpointStateFilename), func() error {
		_, err := LatestCheckpoint(dir)
		return err
	})
	check("checkpoint state, for NewCheckpointManager", filepath.Join(dir, CheckpointStateFilename), func() error {
		_, err := NewCheckpointManager(dir, ManagerOptions{})
		return err
	})

	// A FIFO where the index should be: refused at once, not waited on.
	fifo := filepath.Join(dir, "fifo")
	if err := mkfifo(IndexFilename(fifo)); err != nil {
		testutil.Skip(t, "no FIFOs here: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := OpenBundle(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("index that is a FIFO: got %v", err)
		}
	case <-time.After(10 * time.Second):
		// Unblock the reader before failing.
		if w, err := os.OpenFile(IndexFilename(fifo), os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		t.Error("OpenBundle blocked on an index that is a FIFO")
	}
}

package savedmodel

import (
	"fmt"
	"io"
	"os"
)

// Bounds on the files this package reads whole into memory. A file's size
// is checked (from its Stat, then while reading, for a file that grows)
// before its bytes are, so a huge or hostile file is an error wrapping
// ErrTooLarge that names it, not an allocation of whatever size it has.
const (
	// DefaultMaxIndexBytes bounds a bundle's .index file when
	// ReadOptions.MaxIndexBytes is 0: 1 GiB. A genuine index holds about
	// 100 bytes per tensor (a checkpoint of a million tensors stays near
	// 100 MiB); the tensors themselves are in the data shards, which are
	// never read whole.
	DefaultMaxIndexBytes = 1 << 30
	// MaxSavedModelBytes bounds saved_model.pb and saved_model.pbtxt: 2
	// GiB, protobuf's own limit on a message (TensorFlow writes larger
	// SavedModels chunked, which this package does not read).
	MaxSavedModelBytes = 2 << 30
	// MaxFingerprintBytes bounds fingerprint.pb, a FingerprintDef of five
	// numbers and a version: 1 MiB.
	MaxFingerprintBytes = 1 << 20
	// MaxCheckpointStateBytes bounds a directory's "checkpoint" state file,
	// a line or two per kept checkpoint: 64 MiB.
	MaxCheckpointStateBytes = 64 << 20
)

// readFileLimited reads the file at path if it holds at most limit bytes
// (limit < 0: any size). The error is not wrapped in an *Error: callers
// name the file and the operation.
func readFileLimited(path string, limit int64) ([]byte, error) {
	// Stat before opening: opening a FIFO would block until a writer
	// comes, and a device may never end.
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	size := fi.Size()
	if limit >= 0 && size > limit {
		return nil, tooLarge(size, limit)
	}
	// Read one byte more than the limit: a file that grew since the Stat
	// is refused, not read to whatever length it reaches.
	src := io.Reader(f)
	if limit >= 0 {
		src = io.LimitReader(f, limit+1)
	}
	buf := make([]byte, 0, size+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if limit >= 0 && int64(len(buf)) > limit {
		return nil, tooLarge(int64(len(buf)), limit)
	}
	return buf, nil
}

func tooLarge(size, limit int64) error {
	return fmt.Errorf("%w: the file has %d bytes, over the limit of %d", ErrTooLarge, size, limit)
}

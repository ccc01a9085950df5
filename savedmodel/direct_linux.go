package savedmodel

import (
	"io"
	"os"
	"syscall"
)

// openDirect opens name for writing with O_DIRECT, after checking that an
// aligned write is accepted: some file systems (tmpfs before Linux 6.6,
// some FUSE mounts) refuse O_DIRECT at open or only at the first write.
func openDirect(name string) (*os.File, bool) {
	f, err := os.OpenFile(name, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil, false
	}
	probe := alignedBuffer(directAlign)
	if _, err := f.WriteAt(probe, 0); err != nil {
		f.Close()
		return nil, false
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// openDirectRead opens name for reading with O_DIRECT, or returns nil
// where that is refused.
func openDirectRead(name string) *os.File {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	probe := alignedBuffer(directAlign)
	if _, err := f.ReadAt(probe, 0); err != nil && err != io.EOF {
		f.Close()
		return nil
	}
	return f
}

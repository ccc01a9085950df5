package savedmodel

import (
	"io"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openDirect opens name for writing with O_DIRECT, after checking that an
// aligned write is accepted: some file systems (tmpfs before Linux 6.6,
// some FUSE mounts) refuse O_DIRECT at open or only at the first write.
// It returns nil where O_DIRECT is refused.
//
// The check writes a block and cuts the file back to nothing through a
// handle of its own, closed before the one returned is opened: ext4 takes
// a file cut to nothing for one being replaced and, when a handle of it
// is closed, starts writing back all its dirty pages. Closed at once, the
// probe's handle spends that on an empty file; closed at the commit, the
// shard's would make a save that went partly through the page cache wait
// for the disk there (measured: 0.2-0.3 s of a 0.7 s save of 1 GiB).
func openDirect(name string) *os.File {
	probe, err := os.OpenFile(name, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	_, err = probe.WriteAt(alignedBuffer(directAlign), 0)
	if err == nil {
		err = probe.Truncate(0)
	}
	if cerr := probe.Close(); err != nil || cerr != nil {
		return nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}

// directFile is a shard opened for DirectIO reads: the file opened with
// O_DIRECT, and a read-only mapping of it that is never read, only used to
// ask the kernel which pages it caches (mincore). (A buffered read with
// RWF_NOWAIT is no such test: it starts readahead of what is missing.)
type directFile struct {
	f      *os.File
	mapped []byte
}

// openDirectRead opens the shard name of size bytes for DirectIO reads, or
// returns nil where O_DIRECT is refused.
func openDirectRead(name string, size int64) *directFile {
	f, err := os.OpenFile(name, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	if _, err := f.ReadAt(alignedBuffer(directAlign), 0); err != nil && err != io.EOF {
		f.Close()
		return nil
	}
	d := &directFile{f: f}
	if size > 0 && size == int64(int(size)) {
		d.mapped, _ = unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
		runtime.SetFinalizer(d, (*directFile).Close) // a reader never closed
	}
	return d
}

func (d *directFile) Close() error {
	runtime.SetFinalizer(d, nil)
	if d.mapped != nil {
		unix.Munmap(d.mapped)
		d.mapped = nil
	}
	return d.f.Close()
}

// cached returns how many of the n bytes at off the page cache holds
// from off on, in whole pages (at most n).
func (d *directFile) cached(off, n int64) int64 {
	if d.mapped == nil || off >= int64(len(d.mapped)) {
		return 0
	}
	ps := int64(os.Getpagesize())
	start := off / ps * ps
	end := min(off+n, int64(len(d.mapped)))
	vec := make([]byte, (end-start+ps-1)/ps)
	// x/sys/unix of the version this module allows (Go 1.24) has no Mincore.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&d.mapped[start])), uintptr(end-start), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0
	}
	var got int64
	for _, v := range vec {
		if v&1 == 0 {
			break
		}
		got += ps
	}
	return max(min(got-(off-start), n), 0)
}

package savedmodel

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// dropCache writes back and drops the first n bytes of file from the page
// cache, so that DirectIO reads find part of it cached and part not.
func dropCache(t *testing.T, file string, n int64) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		return
	}
	if err := unix.Fadvise(int(f.Fd()), 0, n, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(path string) error { return unix.Mkfifo(path, 0o644) }

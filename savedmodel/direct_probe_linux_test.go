package savedmodel

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// directRefusal returns "" if O_DIRECT works in dir, else why not: the
// file system and the error of the open or of an aligned write.
func directRefusal(t *testing.T, dir string) string {
	t.Helper()
	fs := "unknown file system"
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil {
		fs = fsName(st.Type)
	}
	probe := filepath.Join(dir, "probe-refusal")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(probe)
	f, err := os.OpenFile(probe, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return fmt.Sprintf("%s (%s) refuses O_DIRECT at open: %v", dir, fs, err)
	}
	defer f.Close()
	if _, err := f.WriteAt(alignedBuffer(directAlign), 0); err != nil {
		return fmt.Sprintf("%s (%s) refuses an aligned O_DIRECT write: %v", dir, fs, err)
	}
	return ""
}

func fsName(magic int64) string {
	names := map[int64]string{
		0xEF53: "ext2/3/4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs",
		0x794C7630: "overlayfs", 0x65735546: "fuse", 0x6969: "nfs", 0x2FC12FC1: "zfs", 0x858458F6: "ramfs",
	}
	if n, ok := names[magic]; ok {
		return n
	}
	return fmt.Sprintf("file system magic %#x", magic)
}

// memoryFS reports whether dir is on a file system held in memory (tmpfs,
// ramfs), whose pages cannot be dropped from the page cache.
func memoryFS(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && (st.Type == 0x01021994 || st.Type == 0x858458F6)
}

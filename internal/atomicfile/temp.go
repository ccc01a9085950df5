package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tempInfix separates the target's base name from the random part in the
// names of its temporary directories: ".<base>.tmp-<random>".
const tempInfix = ".tmp-"

// Temp is the temporary directory of one save of a target.
type Temp struct {
	// Dir is the directory, next to the target; write into it.
	Dir    string
	target string
	lock   *os.File
}

// NewTemp removes the stale temporaries of target (see RemoveStale),
// creates target's directory if needed and a new temporary directory next
// to target, locked until Remove.
func NewTemp(target string) (*Temp, error) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return nil, fmt.Errorf("saving %q: the path names a directory, not a file", target)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("saving %s: %w", target, err)
	}
	RemoveStale(target)
	// Another save's RemoveStale may take the directory between its
	// creation and the lock (it is unlocked then): make another one.
	for range 3 {
		d, err := os.MkdirTemp(dir, "."+base+tempInfix+"*")
		if err != nil {
			return nil, fmt.Errorf("saving %s: %w", target, err)
		}
		f, err := os.Open(d)
		if err != nil {
			os.RemoveAll(d)
			return nil, fmt.Errorf("saving %s: %w", target, err)
		}
		if locked, err := tryLock(f); err != nil || !locked {
			f.Close()
			os.RemoveAll(d)
			if err == nil {
				err = errors.New("locked by another process")
			}
			return nil, fmt.Errorf("saving %s: locking the temporary directory %s: %w", target, d, err)
		}
		if held, err := f.Stat(); err == nil {
			if now, err := os.Stat(d); err == nil && os.SameFile(held, now) {
				return &Temp{Dir: d, target: target, lock: f}, nil
			}
		}
		f.Close()
	}
	return nil, fmt.Errorf("saving %s: the temporary directories next to it keep disappearing (another process removing them?)", target)
}

// Remove removes the temporary directory and what is left in it, and
// releases its lock.
func (t *Temp) Remove() {
	if t.lock == nil {
		return
	}
	os.RemoveAll(t.Dir)
	t.lock.Close()
	t.lock = nil
}

// tempBase returns the base name of the target whose temporary directory
// is named name, and whether name is such a name.
func tempBase(name string) (string, bool) {
	i := strings.LastIndex(name, tempInfix)
	if i < 1 || name[0] != '.' || !digits(name[i+len(tempInfix):]) {
		return "", false
	}
	return name[1:i], true
}

// RemoveStale removes the temporary directories that saves of target
// killed before their end left next to it: those named as NewTemp names
// them and not locked by a running save. It is best effort: a directory
// that cannot be removed now endangers no save and is tried again by the
// next one.
func RemoveStale(target string) {
	dir, base := filepath.Split(target)
	RemoveStaleIn(dir, func(b string) bool { return b == base })
}

// RemoveStaleIn is RemoveStale for every target in dir whose base name
// satisfies match: for a caller whose saves go to changing names (one per
// epoch), so that a killed save of one name is cleaned up by the save of
// the next.
func RemoveStaleIn(dir string, match func(base string) bool) {
	RemoveDead(dir, func(e os.DirEntry) bool {
		base, ok := tempBase(e.Name())
		return ok && e.IsDir() && match(base)
	})
}

// LockTemp takes the lock that marks the temporary file or directory at
// path as a live writer's, for a writer that names its temporaries itself
// (savedmodel's bundle shards and indexes, TensorFlow-style): on a
// descriptor of its own, so it holds until Unlock whatever happens to the
// writer's other descriptors, and the kernel drops it when the process
// dies, however it dies. It returns nil if it cannot take the lock (then
// the temporary counts as a dead writer's).
func LockTemp(path string) *os.File {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	if locked, err := tryLock(f); err != nil || !locked {
		f.Close()
		return nil
	}
	return f
}

// Unlock releases a lock taken by LockTemp (nil: none).
func Unlock(lk *os.File) {
	if lk != nil {
		lk.Close()
	}
}

// RemoveDead removes the entries of dir (files or directories) that match
// accepts and that no live writer holds locked (see LockTemp; NewTemp's
// directories are locked the same way): temporaries that writers killed
// before their end left behind. match must accept only names of
// temporaries, which tells them from everything else in dir. It is best
// effort: what cannot be removed now endangers no save and is tried again
// by the next one.
func RemoveDead(dir string, match func(e os.DirEntry) bool) {
	forEntries(dir, func(p string, e os.DirEntry) {
		if !match(e) {
			return
		}
		lk := LockTemp(p)
		if lk == nil {
			return
		}
		if e.IsDir() {
			os.RemoveAll(p)
		} else {
			os.Remove(p)
		}
		lk.Close()
	})
}

// forEntries calls fn with the path and entry of each entry of dir ("" for
// the working directory); an unreadable dir has none.
func forEntries(dir string, fn func(path string, e os.DirEntry)) {
	if dir == "" {
		dir = "."
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fn(filepath.Join(dir, e.Name()), e)
	}
}

// Commit syncs the file src (inside the temporary directory) and renames
// it to dst, then syncs dst's directory so that the rename is durable.
func Commit(src, dst string) error {
	if err := SyncFile(src); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(dst))
}

// SyncFile makes the contents of the file at path durable.
func SyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return nil
}

// SyncDir makes the entries of dir durable. Some platforms and file
// systems cannot sync a directory: that is no error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// WriteFile replaces the file target with what fill writes: fill gets a
// path inside a new temporary directory next to target, creates the file
// there (it may also put scratch files beside it), and the file is then
// synced and renamed to target. When fill fails, or the process dies,
// whatever was at target stays as it was.
func WriteFile(target string, fill func(path string) error) error {
	t, err := NewTemp(target)
	if err != nil {
		return err
	}
	defer t.Remove()
	p := filepath.Join(t.Dir, filepath.Base(target))
	if err := fill(p); err != nil {
		return err
	}
	if err := Commit(p, target); err != nil {
		return fmt.Errorf("replacing %s: %w", target, err)
	}
	return nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

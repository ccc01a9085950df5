package savedmodel

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// TensorFlow Serving's layout: a model's base directory holds one
// SavedModel per version, BASE/<version>/, the version a non-negative
// integer; the server loads the highest (or the ones its version policy
// names) and picks up new versions as they appear. Publish makes a new
// version appear only when it is complete.

// Publish writes d as version of the model at base (BASE/<version>/)
// atomically, as Write does: a server scanning base never sees a partial
// version, because the SavedModel is written and synced in a hidden
// temporary directory of base (".<version>.tmp-*", not a version number
// to TensorFlow Serving) that is renamed to <version> when complete. The
// version must not exist yet. It returns the version's directory.
func Publish(base string, version int64, d *Directory) (string, error) {
	return PublishFunc(base, version, func(dir string) error { return WriteContents(dir, d) })
}

// PublishFunc is Publish with the content written by fill into the
// temporary directory it is given (an existing, empty directory); an
// error from fill leaves base as it was.
func PublishFunc(base string, version int64, fill func(dir string) error) (string, error) {
	if version < 0 {
		return "", &Error{Op: "write", File: base, Err: fmt.Errorf("version %d: versions are non-negative integers", version)}
	}
	dir := filepath.Join(base, strconv.FormatInt(version, 10))
	// Exports and removals of other versions killed before their end.
	removeStale(base, versionTempRE.MatchString)
	if err := publishDir(dir, fill); err != nil {
		return "", err
	}
	return dir, nil
}

// Versions lists the versions under base in increasing order: the
// subdirectories whose names are non-negative integers, as TensorFlow
// Serving sees them (temporary directories are not listed).
func Versions(base string) ([]int64, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, &Error{Op: "open", File: base, Err: err}
	}
	var vs []int64
	for _, e := range entries {
		v, ok := parseVersion(e.Name())
		if !ok {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			fi, err := os.Stat(filepath.Join(base, e.Name()))
			isDir = err == nil && fi.IsDir()
		}
		if isDir {
			vs = append(vs, v)
		}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	return vs, nil
}

func parseVersion(name string) (int64, bool) {
	if name == "" || name[0] < '0' || name[0] > '9' {
		return 0, false
	}
	v, err := strconv.ParseInt(name, 10, 64)
	return v, err == nil && v >= 0
}

// LatestVersion returns the highest version under base and its directory;
// the error wraps ErrNotFound when there is none.
func LatestVersion(base string) (int64, string, error) {
	vs, err := Versions(base)
	if err != nil {
		return 0, "", err
	}
	if len(vs) == 0 {
		return 0, "", &Error{Op: "open", File: base, Err: fmt.Errorf("%w: no version directory", ErrNotFound)}
	}
	v := vs[len(vs)-1]
	return v, filepath.Join(base, strconv.FormatInt(v, 10)), nil
}

// RemoveOldVersions deletes all but the newest keep versions under base
// and returns the versions removed. Each goes at once (renamed to a hidden
// name, then deleted), so a server never sees a half-deleted version.
func RemoveOldVersions(base string, keep int) ([]int64, error) {
	vs, err := Versions(base)
	if err != nil {
		return nil, err
	}
	if keep < 0 {
		keep = 0
	}
	var removed []int64
	for i := 0; i < len(vs)-keep; i++ {
		dir := filepath.Join(base, strconv.FormatInt(vs[i], 10))
		tmp, err := os.MkdirTemp(base, "."+strconv.FormatInt(vs[i], 10)+".removing-")
		if err != nil {
			return removed, &Error{Op: "remove", File: dir, Err: err}
		}
		lock := lockTemp(tmp)
		// Move the version inside a hidden directory, then delete it.
		if err := os.Rename(dir, filepath.Join(tmp, "v")); err != nil {
			os.Remove(tmp)
			unlockTemp(lock)
			return removed, &Error{Op: "remove", File: dir, Err: err}
		}
		syncDir(base)
		err = os.RemoveAll(tmp)
		unlockTemp(lock)
		if err != nil {
			return removed, &Error{Op: "remove", File: tmp, Err: err}
		}
		removed = append(removed, vs[i])
	}
	return removed, nil
}

// Package atomicfile replaces a file, or a TensorFlow checkpoint, so that a
// process killed at any instant (or a machine losing power, the writes
// being synced before each rename) leaves at the target either the previous
// complete artifact or the new complete one, never a half-written file or
// a mix of the two.
//
// Everything a save writes goes into a temporary directory next to the
// target, named ".<base>.tmp-<random>", and only complete, synced files
// are renamed out of it. Whatever the writer made inside (HDF5's and
// TensorFlow's own temporaries included), a killed save leaves that one
// directory, and the next save of the same target recognises it by name
// and removes it. A save holds a lock on its directory while it runs, so
// that a concurrent save of the same target does not remove a directory
// still in use; the lock dies with its process, so a killed save's
// directory is free to go. Files of other names are never touched.
package atomicfile

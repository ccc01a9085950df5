// Package atomicfile is the module's one mechanism for crash-safe writes
// and for cleaning up after killed ones: file-level primitives, no
// knowledge of any file format (it imports nothing of the module, so that
// savedmodel, the lowest package, can use it; bundle replacement lives in
// savedmodel.ReplaceBundle and savedmodel.BundleWriter, on top of it).
//
// WriteFile replaces a file so that a process killed at any instant (or a
// machine losing power, the writes being synced before each rename) leaves
// at the target either the previous complete file or the new complete
// one, never a half-written file or a mix of the two. Everything a save
// writes goes into a temporary directory next to the target (NewTemp),
// named ".<base>.tmp-<random>", and only complete, synced files are
// renamed out of it (Commit). Whatever the writer made inside (HDF5's and
// TensorFlow's own temporaries included), a killed save leaves that one
// directory, and the next save of the same target recognises it by name
// and removes it (RemoveStale, RemoveStaleIn).
//
// Writers that name their temporaries themselves (savedmodel's bundle
// shards, index and state files, its SavedModel version directories) mark
// each with LockTemp and clean up with RemoveDead under a name pattern of
// their own. Either way a temporary is a dead writer's only when its name
// says it is a temporary and no live process holds its lock: a save holds
// a flock on each of its temporaries while it runs, so that a concurrent
// save does not remove one still in use, and the kernel drops the lock
// when its process dies, however it dies. Files of other names are never
// touched. Where there are no flocks every temporary of such a name counts
// as dead (a concurrent save may then lose its temporary and fail; it never
// corrupts its target).
package atomicfile

package savedmodel

import (
	"os"
	"regexp"

	"github.com/gotf/gotf/internal/atomicfile"
)

// A writer killed in the middle of a save leaves its temporary files (or,
// for a SavedModel, its temporary directory) behind. The next save of the
// same kind removes them, under two conditions that make them
// unambiguously a dead writer's: the name has the shape this package (and
// TensorFlow, for bundles) gives its temporaries, and no live process
// holds the lock a writer takes on each temporary for as long as it
// exists (lockTemp: a flock, which the kernel drops when the process dies,
// however it dies). A temporary of a writer still at work, in this process
// or another, is never touched. The lock and the removal are the module's
// one mechanism, internal/atomicfile's (LockTemp, RemoveDead), which
// tfgo's Saver and keraslike's writers use too; where there are no flocks
// every temporary of such a name counts as a dead writer's (a concurrent
// save may then fail, but never corrupts what it replaces).

var (
	// bundleTempRE matches the temporaries of a bundle: PREFIX.index and
	// PREFIX.data-NNNNN-of-NNNNN, followed by ".tempstate" and the random
	// digits of os.CreateTemp (TensorFlow appends a random number too).
	bundleTempRE = regexp.MustCompile(`^(.+)\.(?:index|data-\d{5}-of-\d{5})\.tempstate\d+$`)
	// stateTempRE matches the temporaries of WriteCheckpointState.
	stateTempRE = regexp.MustCompile(`^` + regexp.QuoteMeta(CheckpointStateFilename) + `\.tmp\d+$`)
	// versionTempRE matches the directories Publish and RemoveOldVersions
	// work in: .<version>.tmp-N and .<version>.removing-N.
	versionTempRE = regexp.MustCompile(`^\.\d+\.(?:tmp|removing)-\d+$`)
)

// removeStale removes the entries of dir whose names satisfy match and
// that no live writer holds. Errors are ignored: what cannot be removed
// now is tried again by the next save.
func removeStale(dir string, match func(name string) bool) {
	atomicfile.RemoveDead(dir, func(e os.DirEntry) bool { return match(e.Name()) })
}

// removeStaleBundleTemps removes the dead temporaries of bundles in dir
// whose prefix's base name satisfies base.
func removeStaleBundleTemps(dir string, base func(string) bool) {
	removeStale(dir, func(name string) bool {
		m := bundleTempRE.FindStringSubmatch(name)
		return m != nil && base(m[1])
	})
}

// lockTemp marks the temporary at path as this writer's until unlockTemp
// (nil if the lock cannot be taken).
func lockTemp(path string) *os.File { return atomicfile.LockTemp(path) }

// unlockTemp releases a lock taken by lockTemp (nil: none).
func unlockTemp(lk *os.File) { atomicfile.Unlock(lk) }

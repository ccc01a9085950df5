package savedmodel

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockTemp takes the lock that marks the temporary file or directory at
// path as its writer's, on a descriptor of its own: it holds until
// unlockTemp, whatever happens to the writer's other descriptors, and
// the kernel drops it when the process dies. It returns nil if it cannot.
func lockTemp(path string) *os.File {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		f.Close()
		return nil
	}
	return f
}

// lockIfAbandoned takes the lock of the temporary at path if no writer
// holds it, and returns it (nil if a writer does, or on an error).
func lockIfAbandoned(path string) *os.File { return lockTemp(path) }

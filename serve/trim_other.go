//go:build !linux || !cgo

package serve

import "runtime/debug"

// releaseFreedMemory gives back Go's free heap; malloc_trim is glibc's
// (trim_linux.go).
func releaseFreedMemory() { debug.FreeOSMemory() }

//go:build !linux || !cgo

package procstat

// TrimMalloc does nothing: malloc_trim is glibc's (malloc_linux.go).
func TrimMalloc() {}

// MallocInUse is 0: mallinfo2 is glibc's (malloc_linux.go).
func MallocInUse() int64 { return 0 }

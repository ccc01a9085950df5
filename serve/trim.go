package serve

import (
	"os"
	"runtime/debug"

	"github.com/gotf/gotf/internal/procstat"
)

// useSystemAllocator makes TensorFlow's oneDNN CPU allocator hand every
// tensor to malloc, unless the environment already chooses
// (TF_ONEDNN_USE_SYSTEM_ALLOCATOR). By default that allocator puts blocks of
// 256 KiB and more in a BFC arena that grows and never shrinks, so a
// version's variables stay in the server's RSS after the version is
// unloaded (measured: two versions' worth of RSS after the second replaced
// the first); with malloc they are freed and releaseFreedMemory returns
// them. TensorFlow reads the variable once, at its first oneDNN
// allocation: this must run before any model is loaded. os.Setenv reaches
// the C environment because the binary is linked with cgo.
func useSystemAllocator() {
	if _, set := os.LookupEnv("TF_ONEDNN_USE_SYSTEM_ALLOCATOR"); !set {
		os.Setenv("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")
	}
}

// releaseFreedMemory gives back to the system what an unloaded version
// freed: malloc's free pages (procstat.TrimMalloc) and Go's free heap,
// where the version's request and response buffers were. Measured on 256
// MiB of 1 MiB variables (TestMemoryReturnedAfterUnload): without the trim
// all of the old version stayed, free in the arenas (mallinfo2), and the
// RSS at two versions' worth.
func releaseFreedMemory() {
	procstat.TrimMalloc()
	debug.FreeOSMemory()
}

//go:build linux && cgo

package serve

/*
// stdlib.h first: it defines __GLIBC__ (through features.h) on glibc.
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

// gotf_malloc_trim returns the free pages of every malloc arena to the
// system; only glibc's malloc has malloc_trim.
static void gotf_malloc_trim(void) {
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}
*/
import "C"

import "runtime/debug"

// releaseFreedMemory gives back to the system what an unloaded version
// freed. glibc keeps freed chunks below its mmap threshold (which rises up
// to 32 MiB as large blocks are freed) in the arenas of the threads that
// restored and ran the model, and trims an arena only from its top;
// malloc_trim(0) releases the free pages of every arena, in the middle of
// a heap too. Measured on 256 MiB of 1 MiB variables
// (TestMemoryReturnedAfterUnload): without it all of the old version stayed,
// free in the arenas (mallinfo2), and the RSS at two versions' worth.
// debug.FreeOSMemory does the same for Go's heap, where the version's
// request and response buffers were.
func releaseFreedMemory() {
	C.gotf_malloc_trim()
	debug.FreeOSMemory()
}

//go:build linux && cgo

package procstat

/*
// stdlib.h first: it defines __GLIBC__ (through features.h) on glibc.
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

// Only glibc's malloc has malloc_trim and mallinfo2.
static void gotf_malloc_trim(void) {
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static size_t gotf_malloc_in_use(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
	struct mallinfo2 m = mallinfo2();
	return m.uordblks + m.hblkhd;
#else
	return 0;
#endif
}
*/
import "C"

// TrimMalloc returns the free pages of every malloc arena to the system.
// glibc keeps freed chunks below its mmap threshold (which rises up to 32
// MiB as large blocks are freed) in the arenas of the threads that freed
// them, and trims an arena only from its top by itself; malloc_trim(0)
// releases free pages in the middle of a heap too. The runtime's C
// objects (graphs, sessions, tensors, oneDNN's buffers) come from malloc.
func TrimMalloc() {
	C.gotf_malloc_trim()
}

// MallocInUse is the number of bytes C's malloc has handed out and not had
// back (0 where the C library does not say): a leak of C objects grows it
// exactly, whatever the arenas' slack does to the RSS.
func MallocInUse() int64 {
	return int64(C.gotf_malloc_in_use())
}

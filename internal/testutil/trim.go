package testutil

/*
#include <malloc.h>

static size_t malloc_in_use(void) {
	struct mallinfo2 m = mallinfo2();
	return m.uordblks + m.hblkhd;
}
*/
import "C"

// trimMalloc hands back to the OS the pages glibc's malloc holds free in
// its arenas (malloc_trim(0) releases free pages inside the heaps too, not
// only at their tops). The runtime's C allocations (graphs, sessions,
// tensors, oneDNN's buffers) come from malloc, and what a loop freed stays
// resident, scattered over per-thread arenas, until trimmed: without this,
// 9,000 Keras file loads moved RSS by +1.3k, +10.1k and -1.3k bytes per
// iteration in three windows while the bytes malloc had handed out stayed
// within 0.2 KiB per load.
func trimMalloc() {
	C.malloc_trim(0)
}

// mallocInUse is the number of bytes C's malloc has handed out and not
// had back: a leak of C objects grows it exactly, whatever the arenas do.
func mallocInUse() int64 {
	return int64(C.malloc_in_use())
}

package serve

import "os"

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

//go:build !linux

package savedmodel

import "os"

// Outside Linux, where direct I/O is spelled differently (F_NOCACHE on
// macOS) and not tested, every IOMode reads and writes through the page
// cache.

func openDirect(name string) *os.File { return nil }

type directFile struct{ f *os.File }

func openDirectRead(name string, size int64) *directFile { return nil }

func (d *directFile) Close() error { return d.f.Close() }

func (d *directFile) cached(off, n int64) int64 { return 0 }

//go:build !linux

package savedmodel

import "os"

// openDirect reports that direct I/O is not used outside Linux: other
// systems spell it differently (F_NOCACHE on macOS) and are not tested.
func openDirect(name string) (*os.File, bool) { return nil, false }

func openDirectRead(name string) *os.File { return nil }

//go:build !linux

package savedmodel

import "testing"

func directRefusal(t *testing.T, dir string) string {
	return "the package uses O_DIRECT on Linux only"
}

func memoryFS(dir string) bool { return false }

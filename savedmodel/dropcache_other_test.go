//go:build !linux

package savedmodel

import (
	"errors"
	"testing"
)

func dropCache(t *testing.T, file string, n int64) {}

func mkfifo(path string) error { return errors.ErrUnsupported }

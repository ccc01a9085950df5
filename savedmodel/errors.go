package savedmodel

import (
	"errors"
	"fmt"
)

// Sentinel errors; test for them with errors.Is.
var (
	// ErrNotFound: the bundle has no tensor of that name.
	ErrNotFound = errors.New("not found")
	// ErrCorrupt: a file's content contradicts the format (a checksum
	// mismatch, a bound outside the file, an unparseable entry, ...).
	ErrCorrupt = errors.New("corrupt")
	// ErrUnsupported: the bundle uses something this package does not
	// implement (a DT_VARIANT tensor, a big-endian bundle, ...).
	ErrUnsupported = errors.New("unsupported")
	// ErrTooLarge: a file is larger than the bound this package reads it
	// under (see DefaultMaxIndexBytes, MaxSavedModelBytes and the others).
	ErrTooLarge = errors.New("too large")
)

// Error is the error type of this package's file operations. It names the
// file and, when one is involved, the tensor.
type Error struct {
	// Op is what was being done: "open", "read", "write" or "commit".
	Op string
	// File is the path of the file involved (an .index or .data shard).
	File string
	// Tensor is the tensor's name (with the slice appended, e.g.
	// `part[0,5:-]`, for one slice of a partitioned tensor), or "".
	Tensor string
	// Err is the underlying problem; errors.Is finds ErrNotFound,
	// ErrCorrupt, ErrUnsupported and the os errors through it.
	Err error
}

// Error formats the error as "savedmodel: OP FILE: tensor "NAME": PROBLEM".
func (e *Error) Error() string {
	s := "savedmodel: " + e.Op + " " + e.File
	if e.Tensor != "" {
		s += fmt.Sprintf(": tensor %q", e.Tensor)
	}
	if e.Err == nil {
		return s
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// corruptf returns an error wrapping ErrCorrupt with a formatted message.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

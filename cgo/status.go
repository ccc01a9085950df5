package cgo

// #include "tensorflow/c/c_api.h"
import "C"

import (
	"fmt"
	"regexp"
)

// Code is a TensorFlow status code (tensorflow/core/protobuf/error_codes.proto).
type Code int

// The status codes TensorFlow returns.
const (
	OK                 Code = C.TF_OK
	Cancelled          Code = C.TF_CANCELLED
	Unknown            Code = C.TF_UNKNOWN
	InvalidArgument    Code = C.TF_INVALID_ARGUMENT
	DeadlineExceeded   Code = C.TF_DEADLINE_EXCEEDED
	NotFound           Code = C.TF_NOT_FOUND
	AlreadyExists      Code = C.TF_ALREADY_EXISTS
	PermissionDenied   Code = C.TF_PERMISSION_DENIED
	Unauthenticated    Code = C.TF_UNAUTHENTICATED
	ResourceExhausted  Code = C.TF_RESOURCE_EXHAUSTED
	FailedPrecondition Code = C.TF_FAILED_PRECONDITION
	Aborted            Code = C.TF_ABORTED
	OutOfRange         Code = C.TF_OUT_OF_RANGE
	Unimplemented      Code = C.TF_UNIMPLEMENTED
	Internal           Code = C.TF_INTERNAL
	Unavailable        Code = C.TF_UNAVAILABLE
	DataLoss           Code = C.TF_DATA_LOSS
)

var codeNames = map[Code]string{
	OK: "OK", Cancelled: "CANCELLED", Unknown: "UNKNOWN", InvalidArgument: "INVALID_ARGUMENT",
	DeadlineExceeded: "DEADLINE_EXCEEDED", NotFound: "NOT_FOUND", AlreadyExists: "ALREADY_EXISTS",
	PermissionDenied: "PERMISSION_DENIED", Unauthenticated: "UNAUTHENTICATED",
	ResourceExhausted: "RESOURCE_EXHAUSTED", FailedPrecondition: "FAILED_PRECONDITION",
	Aborted: "ABORTED", OutOfRange: "OUT_OF_RANGE", Unimplemented: "UNIMPLEMENTED",
	Internal: "INTERNAL", Unavailable: "UNAVAILABLE", DataLoss: "DATA_LOSS",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// Error is a failed TensorFlow status. Op names the operation involved when
// it is known: the one being added, or the node a session run reported.
type Error struct {
	Code    Code
	Message string
	Op      string
}

func (e *Error) Error() string {
	if e.Op != "" {
		return fmt.Sprintf("op %q: %s: %s", e.Op, e.Code, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// nodeRef matches the node TensorFlow's runtime names in its messages:
// "... [[{{node foo/bar}}]]" or "... for '{{node foo}} = MatMul[...]'".
var nodeRef = regexp.MustCompile(`\{\{node ([^}]+)\}\}`)

// status is a short-lived TF_Status: created and deleted in one call.
type status struct{ c *C.TF_Status }

func newStatus() status { return status{C.TF_NewStatus()} }

func (s status) close() { C.TF_DeleteStatus(s.c) }

// err returns nil for TF_OK, else an *Error naming op (or the node the
// message names when op is empty).
func (s status) err(op string) error {
	code := Code(C.TF_GetCode(s.c))
	if code == OK {
		return nil
	}
	msg := C.GoString(C.TF_Message(s.c))
	if op == "" {
		if m := nodeRef.FindStringSubmatch(msg); m != nil {
			op = m[1]
		}
	}
	return &Error{Code: code, Message: msg, Op: op}
}

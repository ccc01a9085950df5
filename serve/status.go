package serve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"

	"github.com/gotf/gotf/savedmodel/runner"
	"github.com/gotf/gotf/tfgo"
)

// Code is a canonical status code (tensorflow/core/protobuf/error_codes.proto),
// the codes TF Serving's answers carry.
type Code = tfgo.Code

// The codes the server answers with.
const (
	OK                 = tfgo.OK
	Cancelled          = tfgo.Cancelled
	Unknown            = tfgo.Unknown
	InvalidArgument    = tfgo.InvalidArgument
	DeadlineExceeded   = tfgo.DeadlineExceeded
	NotFound           = tfgo.NotFound
	AlreadyExists      = tfgo.AlreadyExists
	PermissionDenied   = tfgo.PermissionDenied
	ResourceExhausted  = tfgo.ResourceExhausted
	FailedPrecondition = tfgo.FailedPrecondition
	Aborted            = tfgo.Aborted
	OutOfRange         = tfgo.OutOfRange
	Unimplemented      = tfgo.Unimplemented
	Internal           = tfgo.Internal
	Unavailable        = tfgo.Unavailable
	DataLoss           = tfgo.DataLoss
	Unauthenticated    = tfgo.Unauthenticated
)

// Status is an error with a canonical code: what TF Serving returns, and
// what decides the HTTP status of a REST answer.
type Status struct {
	Code    Code
	Message string
}

func (s *Status) Error() string { return s.Message }

func statusf(code Code, format string, args ...any) *Status {
	return &Status{Code: code, Message: fmt.Sprintf(format, args...)}
}

// statusOf gives the code and message an error is answered with: a
// Status as it is, a runtime error with its own code and message (as TF
// Serving passes the session's status on), runner's checks of the inputs
// as InvalidArgument.
func statusOf(err error) *Status {
	var st *Status
	if errors.As(err, &st) {
		return st
	}
	var te *tfgo.Error
	if errors.As(err, &te) {
		return &Status{Code: te.Code, Message: te.Message}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Status{Code: NotFound, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &Status{Code: DeadlineExceeded, Message: err.Error()}
	case errors.Is(err, context.Canceled):
		return &Status{Code: Cancelled, Message: err.Error()}
	case errors.Is(err, runner.ErrInputTooLarge):
		return &Status{Code: ResourceExhausted, Message: err.Error()}
	case errors.Is(err, runner.ErrUnsupported):
		return &Status{Code: Unimplemented, Message: err.Error()}
	case errors.Is(err, runner.ErrUnknownSignature), errors.Is(err, runner.ErrMissingInput),
		errors.Is(err, runner.ErrUnexpectedInput), errors.Is(err, runner.ErrDType),
		errors.Is(err, runner.ErrShape), errors.Is(err, runner.ErrNilInput):
		return &Status{Code: InvalidArgument, Message: err.Error()}
	}
	return &Status{Code: Unknown, Message: err.Error()}
}

// httpCode is TF Serving's mapping of a status code to an HTTP status
// (model_servers/http_server.cc, ToHTTPStatusCode).
func httpCode(c Code) int {
	switch c {
	case OK:
		return http.StatusOK
	case Cancelled:
		return 499 // Client Closed Request
	case InvalidArgument, FailedPrecondition, OutOfRange:
		return http.StatusBadRequest
	case DeadlineExceeded:
		return http.StatusGatewayTimeout
	case NotFound:
		return http.StatusNotFound
	case AlreadyExists, Aborted:
		return http.StatusConflict
	case PermissionDenied:
		return http.StatusForbidden
	case ResourceExhausted:
		return http.StatusTooManyRequests
	case Unimplemented:
		return http.StatusNotImplemented
	case Unavailable:
		return http.StatusServiceUnavailable
	case Unauthenticated:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

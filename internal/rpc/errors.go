package rpc

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/sandboxd/envd/internal/wirekit"
)

// Code is a Connect/gRPC status code; the numbers are gRPC's.
type Code uint32

const (
	CodeCanceled           Code = 1
	CodeUnknown            Code = 2
	CodeInvalidArgument    Code = 3
	CodeDeadlineExceeded   Code = 4
	CodeNotFound           Code = 5
	CodeAlreadyExists      Code = 6
	CodePermissionDenied   Code = 7
	CodeResourceExhausted  Code = 8
	CodeFailedPrecondition Code = 9
	CodeAborted            Code = 10
	CodeOutOfRange         Code = 11
	CodeUnimplemented      Code = 12
	CodeInternal           Code = 13
	CodeUnavailable        Code = 14
	CodeDataLoss           Code = 15
	CodeUnauthenticated    Code = 16
)

var codeNames = [...]string{"ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded",
	"not_found", "already_exists", "permission_denied", "resource_exhausted", "failed_precondition",
	"aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated"}

// String is the Connect name, "not_found".
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "code_" + strconv.FormatUint(uint64(c), 10)
}

// httpStatus is connect-go's unary mapping (PROTOCOL.md 1.2).
func (c Code) httpStatus() int {
	switch c {
	case CodeCanceled:
		return 499
	case CodeInvalidArgument, CodeFailedPrecondition, CodeOutOfRange:
		return http.StatusBadRequest
	case CodeDeadlineExceeded:
		return http.StatusGatewayTimeout
	case CodeNotFound:
		return http.StatusNotFound
	case CodeAlreadyExists, CodeAborted:
		return http.StatusConflict
	case CodePermissionDenied:
		return http.StatusForbidden
	case CodeResourceExhausted:
		return http.StatusTooManyRequests
	case CodeUnimplemented:
		return http.StatusNotImplemented
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// Error is an RPC error: a code and a message for the client.
type Error struct {
	code Code
	err  error
	meta http.Header
}

// NewError builds an error with code; err's text is the message.
func NewError(code Code, err error) *Error { return &Error{code: code, err: err} }

func errorf(code Code, msg string) *Error { return &Error{code: code, err: errors.New(msg)} }

func (e *Error) Error() string {
	if m := e.Message(); m != "" {
		return e.code.String() + ": " + m
	}
	return e.code.String()
}

// Code is the error's status code.
func (e *Error) Code() Code { return e.code }

// Message is what the client sees.
func (e *Error) Message() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *Error) Unwrap() error { return e.err }

// Meta is sent as response headers (unary) or trailers (streams) with the
// error.
func (e *Error) Meta() http.Header {
	if e.meta == nil {
		e.meta = http.Header{}
	}
	return e.meta
}

// CodeOf is err's code: its own for an *Error, canceled or
// deadline_exceeded for context errors, unknown otherwise.
func CodeOf(err error) Code { return asError(err).code }

// asError turns any handler error into an *Error as connect-go does.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, context.Canceled):
		return &Error{code: CodeCanceled, err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{code: CodeDeadlineExceeded, err: err}
	}
	return &Error{code: CodeUnknown, err: err}
}

// appendErrorJSON writes the Connect error object,
// {"code":"not_found","message":"..."}.
func appendErrorJSON(b []byte, e *Error) []byte {
	b = append(b, `{"code":"`...)
	b = append(b, e.code.String()...)
	b = append(b, '"')
	if m := e.Message(); m != "" {
		b = append(b, `,"message":`...)
		b = wirekit.AppendJSONString(b, m)
	}
	return append(b, '}')
}

package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"syscall"

	"connectrpc.com/connect"
)

// kind is an error class callers test with errors.Is. Some classes also
// match their io/fs or context counterpart, so errors.Is(err,
// fs.ErrNotExist) works on a not-found answer.
type kind struct {
	name string
	like []error
}

func (k *kind) Error() string { return k.name }

func (k *kind) Is(target error) bool {
	for _, l := range k.like {
		if target == l {
			return true
		}
	}
	return false
}

// Error classes. Every error the client returns for an envd answer or a
// failed connection wraps exactly one of them.
var (
	ErrNotFound           error = &kind{"not found", []error{fs.ErrNotExist}}                   // not_found, 404
	ErrAlreadyExists      error = &kind{"already exists", []error{fs.ErrExist}}                 // already_exists, 409
	ErrPermission         error = &kind{"permission denied", []error{fs.ErrPermission}}         // permission_denied, 403
	ErrUnauthenticated    error = &kind{"unauthenticated", nil}                                 // unauthenticated, 401 (token, signature or unknown user)
	ErrInvalidArgument    error = &kind{"invalid argument", nil}                                // invalid_argument, out_of_range, 400, 406, 416
	ErrFailedPrecondition error = &kind{"failed precondition", nil}                             // failed_precondition
	ErrResourceExhausted  error = &kind{"resource exhausted", nil}                              // resource_exhausted, 429
	ErrNoSpace            error = &kind{"not enough disk space", nil}                           // 507 (uploads)
	ErrUnavailable        error = &kind{"unavailable", nil}                                     // unavailable, 502, 503, connection failures
	ErrTimeout            error = &kind{"deadline exceeded", []error{context.DeadlineExceeded}} // deadline_exceeded, 504
	ErrCanceled           error = &kind{"canceled", []error{context.Canceled}}                  // canceled
	ErrUnimplemented      error = &kind{"unimplemented", nil}                                   // unimplemented, 501
	ErrInternal           error = &kind{"internal error", nil}                                  // internal, unknown, data_loss, other 5xx
)

// Error is an envd answer that is not a success, or a failed call.
type Error struct {
	Op      string // what the client was doing ("stat", "GET /files")
	Code    string // Connect code ("not_found"); "" for plain HTTP routes
	Status  int    // HTTP status of a plain route; 0 for RPCs
	Message string // envd's message, or the cause's text
	kind    error
	cause   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("envd: ")
	b.WriteString(e.Op)
	switch {
	case e.Code != "":
		b.WriteString(": " + e.Code)
	case e.Status != 0:
		fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Unwrap exposes the class (ErrNotFound, ...) and the underlying cause.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, 2)
	if e.kind != nil {
		out = append(out, e.kind)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

var codeKinds = map[connect.Code]error{
	connect.CodeNotFound: ErrNotFound, connect.CodeAlreadyExists: ErrAlreadyExists,
	connect.CodePermissionDenied: ErrPermission, connect.CodeUnauthenticated: ErrUnauthenticated,
	connect.CodeInvalidArgument: ErrInvalidArgument, connect.CodeOutOfRange: ErrInvalidArgument,
	connect.CodeFailedPrecondition: ErrFailedPrecondition, connect.CodeResourceExhausted: ErrResourceExhausted,
	connect.CodeUnavailable: ErrUnavailable, connect.CodeDeadlineExceeded: ErrTimeout,
	connect.CodeCanceled: ErrCanceled, connect.CodeUnimplemented: ErrUnimplemented,
	connect.CodeInternal: ErrInternal, connect.CodeUnknown: ErrInternal, connect.CodeDataLoss: ErrInternal,
	connect.CodeAborted: ErrInternal,
}

// wrapErr turns any error of a call into an *Error with its class.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		k := codeKinds[ce.Code()]
		if connFailure(err) {
			k = ErrUnavailable
		}
		return &Error{Op: op, Code: ce.Code().String(), Message: ce.Message(), kind: k, cause: ce.Unwrap()}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Op: op, Message: err.Error(), kind: ErrTimeout, cause: err}
	case errors.Is(err, context.Canceled):
		return &Error{Op: op, Message: err.Error(), kind: ErrCanceled, cause: err}
	case connFailure(err):
		return &Error{Op: op, Message: err.Error(), kind: ErrUnavailable, cause: err}
	}
	return &Error{Op: op, Message: err.Error(), cause: err}
}

// connFailure reports whether err means the connection failed (refused,
// reset, closed early), as opposed to an answer from envd.
func connFailure(err error) bool {
	var op *net.OpError
	switch {
	case errors.As(err, &op),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	return strings.Contains(err.Error(), "server closed idle connection")
}

// statusKinds classes the HTTP statuses of the plain routes (PROTOCOL.md 4.0).
func statusKind(status int) error {
	switch status {
	case http.StatusBadRequest, http.StatusNotAcceptable, http.StatusRequestedRangeNotSatisfiable,
		http.StatusRequestEntityTooLarge:
		return ErrInvalidArgument
	case http.StatusUnauthorized:
		return ErrUnauthenticated
	case http.StatusForbidden:
		return ErrPermission
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrAlreadyExists
	case http.StatusTooManyRequests:
		return ErrResourceExhausted
	case http.StatusNotImplemented:
		return ErrUnimplemented
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return ErrUnavailable
	case http.StatusGatewayTimeout:
		return ErrTimeout
	case http.StatusInsufficientStorage:
		return ErrNoSpace
	}
	if status >= 500 {
		return ErrInternal
	}
	return nil
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 4 << 10

// httpError reads a non-success answer of a plain route: JSON
// {"code","message"} or plain text (PROTOCOL.md 4.0, 4.5).
func httpError(op string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := strings.TrimSpace(string(body))
	var j struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &j) == nil && j.Message != "" {
		msg = j.Message
	}
	return &Error{Op: op, Status: resp.StatusCode, Message: oneLine(msg), kind: statusKind(resp.StatusCode)}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

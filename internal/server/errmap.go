package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"connectrpc.com/connect"

	"github.com/sandboxd/envd/internal/errs"
)

// toConnect is the one place a subsystem error becomes a Connect error.
func toConnect(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	return connect.NewError(connectCode(err), errors.New(err.Error()))
}

func connectCode(err error) connect.Code {
	switch {
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded
	}
	switch errs.Kind(err) {
	case errs.NotFound:
		return connect.CodeNotFound
	case errs.Exists:
		return connect.CodeAlreadyExists
	case errs.Invalid:
		return connect.CodeInvalidArgument
	case errs.Precondition:
		return connect.CodeFailedPrecondition
	case errs.Permission:
		return connect.CodePermissionDenied
	case errs.Unauthenticated:
		return connect.CodeUnauthenticated
	case errs.Exhausted:
		return connect.CodeResourceExhausted
	case errs.Unavailable:
		return connect.CodeUnavailable
	case errs.Unsupported:
		return connect.CodeUnimplemented
	case errs.Unknown:
		return connect.CodeUnknown
	}
	// errs.NoSpace included: RPCs report disk-full as internal (PROTOCOL.md 3.4).
	return connect.CodeInternal
}

// httpStatus is the one place a subsystem error becomes an HTTP status.
func httpStatus(err error) int {
	switch errs.Kind(err) {
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Exists:
		return http.StatusConflict
	case errs.Invalid, errs.Precondition:
		return http.StatusBadRequest
	case errs.Permission:
		return http.StatusForbidden
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.Exhausted:
		return http.StatusTooManyRequests
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	case errs.Unsupported:
		return http.StatusNotImplemented
	case errs.NoSpace:
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// writeError writes the JSON error body both peers use:
// {"code":<status>,"message":"..."} (PROTOCOL.md 4.0).
func writeError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{status, msg})
}

// writeErr maps err to its status and writes it.
func writeErr(w http.ResponseWriter, err error) {
	writeError(w, httpStatus(err), err.Error())
}

// writeJSON writes a 200 JSON answer that must not be cached.
func writeJSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

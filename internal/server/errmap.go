package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/sandboxd/envd/internal/rpc"

	"github.com/sandboxd/envd/internal/errs"
)

// toConnect is the one place a subsystem error becomes a Connect error.
func toConnect(err error) error {
	if err == nil {
		return nil
	}
	var ce *rpc.Error
	if errors.As(err, &ce) {
		return ce
	}
	return rpc.NewError(connectCode(err), errors.New(err.Error()))
}

func connectCode(err error) rpc.Code {
	switch {
	case errors.Is(err, context.Canceled):
		return rpc.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return rpc.CodeDeadlineExceeded
	}
	switch errs.Kind(err) {
	case errs.NotFound:
		return rpc.CodeNotFound
	case errs.Exists:
		return rpc.CodeAlreadyExists
	case errs.Invalid:
		return rpc.CodeInvalidArgument
	case errs.Precondition:
		return rpc.CodeFailedPrecondition
	case errs.Permission:
		return rpc.CodePermissionDenied
	case errs.Unauthenticated:
		return rpc.CodeUnauthenticated
	case errs.Exhausted:
		return rpc.CodeResourceExhausted
	case errs.Unavailable:
		return rpc.CodeUnavailable
	case errs.Unsupported:
		return rpc.CodeUnimplemented
	case errs.Unknown:
		return rpc.CodeUnknown
	}
	// errs.NoSpace included: RPCs report disk-full as internal (PROTOCOL.md 3.4).
	return rpc.CodeInternal
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

// Package errs is envd's one error vocabulary. Subsystems wrap one of the
// sentinels below; internal/server maps them to Connect codes and HTTP
// statuses in exactly one place each. Anything that wraps no sentinel is
// an internal error.
package errs

import (
	"errors"
	"fmt"
)

// The closed set of error kinds. Compare with errors.Is.
var (
	NotFound        = errors.New("not found")
	Exists          = errors.New("already exists")
	Invalid         = errors.New("invalid argument")
	Precondition    = errors.New("failed precondition")
	Permission      = errors.New("permission denied")
	Unauthenticated = errors.New("unauthenticated")
	Exhausted       = errors.New("resource exhausted")
	Unavailable     = errors.New("unavailable")
	Unsupported     = errors.New("unsupported")   // E2B answers some bad inputs with unimplemented
	NoSpace         = errors.New("no space left") // disk full: 507 on HTTP, internal on RPC
	Unknown         = errors.New("unknown")       // kept only where E2B answers "unknown"
)

// kindError carries a client-facing message and a kind.
type kindError struct {
	kind error
	msg  string
	err  error // optional cause, for errors.Is/As on OS errors
}

func (e *kindError) Error() string { return e.msg }

func (e *kindError) Is(target error) bool { return target == e.kind }

func (e *kindError) Unwrap() error { return e.err }

// New returns an error of the given kind whose message is the formatted text.
// If an argument is an error it becomes the cause (for errors.Is/As).
func New(kind error, format string, args ...any) error {
	e := &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			e.err = err
			break
		}
	}
	return e
}

// Kind returns the sentinel the error wraps, or nil for an internal error.
func Kind(err error) error {
	for _, k := range []error{NotFound, Exists, Invalid, Precondition, Permission,
		Unauthenticated, Exhausted, Unavailable, Unsupported, NoSpace, Unknown} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// Package safe keeps a panic in one goroutine from ending the daemon: a
// guest agent that crashes as PID 1 kills the VM.
package safe

import (
	"log/slog"
	"runtime/debug"
)

// Recover must be deferred at the top of every goroutine envd starts. It
// logs the panic with its stack and lets the goroutine end normally.
func Recover(log *slog.Logger, what string) {
	if v := recover(); v != nil {
		log.Error("recovered panic", "in", what, "panic", v, "stack", string(debug.Stack()))
	}
}

// Go runs fn in a new goroutine that recovers from panics. The caller owns
// the goroutine and must arrange to wait for it (fn should honour a context
// or a close signal).
func Go(log *slog.Logger, what string, fn func()) {
	go func() {
		defer Recover(log, what)
		fn()
	}()
}

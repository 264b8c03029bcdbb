// Package client drives an envd (the guest agent of an E2B or Wrenn
// sandbox) from Go: processes, files, the filesystem and the lifecycle
// routes, over envd's one port (Connect RPC plus plain HTTP).
//
//	c, err := client.New("localhost:49983", client.WithToken(token), client.WithUser("root"))
//	res, err := c.Run(ctx, client.Command{Cmd: "uname", Args: []string{"-a"}})
//	fmt.Printf("%s (exit %d)", res.Stdout, res.Code)
//
// # Processes
//
// Run collects a command's output and exit status. Start returns a
// Process whose output arrives through Command.Stdout/Stderr (any
// io.Writer, or a WriterFunc callback) or, when those are nil, through the
// Process.Stdout/Stderr readers; Wait returns the exit status. Connect
// attaches to a running process by PID or Tag. Commands are not run
// through a shell. A process outlives its stream: closing it or cancelling
// its context stops the output, not the process; Kill stops the process.
// A deadline on the context given to Start (or Command.Timeout) is the
// process's lifetime: envd kills it when it passes.
//
// # Files
//
// Read and Write stream file contents through GET and POST /files without
// holding a whole file in memory; WriteFiles sends several files in one
// streamed multipart request. Stat, ListDir, MakeDir, Move and Remove are
// the filesystem RPCs, and Watch streams a directory's changes. FileURL
// returns a download or upload URL signed with the access token, usable
// without it (by a browser or curl).
//
// # Errors
//
// Failures are *Error values that wrap one class: ErrNotFound,
// ErrAlreadyExists, ErrPermission, ErrUnauthenticated, ErrInvalidArgument,
// ErrUnavailable, ErrTimeout and the others; test them with errors.Is.
// ErrNotFound also matches fs.ErrNotExist, ErrAlreadyExists fs.ErrExist.
//
// # Retries
//
// Idempotent calls (List, Stat, ListDir, Remove, Resize, CloseStdin,
// opening a Read, Health, Metrics, Envs) are retried with exponential
// back-off when the connection fails, at most WithRetry attempts. Streams
// (Start, Connect, Watch), uploads, and calls a repeat would change
// (MakeDir, Move, SendSignal, input, Init) are never retried.
//
// # Transport
//
// HTTP/1.1 by default (one connection per stream), or cleartext HTTP/2
// with WithH2C; binary protobuf by default, or JSON with WithJSON.
package client

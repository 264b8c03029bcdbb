package client

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"connectrpc.com/connect"

	pb "github.com/sandboxd/envd/internal/gen/process"
)

// eventStream is a Start or Connect stream, which carry the same events.
type eventStream struct {
	receive func() bool
	event   func() *pb.ProcessEvent
	err     func() error
	close   func() error
}

func streamOf[T any, PT interface {
	*T
	GetEvent() *pb.ProcessEvent
}](s *connect.ServerStreamForClient[T]) eventStream {
	return eventStream{
		receive: s.Receive,
		event:   func() *pb.ProcessEvent { return PT(s.Msg()).GetEvent() },
		err:     s.Err,
		close:   s.Close,
	}
}

// Process is a started or attached process. Its output is delivered by one
// goroutine that the Process owns; Wait and Close wait for it.
type Process struct {
	c      *Client
	pid    uint32
	tag    string
	pty    atomic.Bool
	cancel context.CancelFunc // ends the stream (never the process)

	stdout, stderr io.Writer      // where the pump writes
	outR, errR     *io.PipeReader // set when the caller reads instead
	outW, errW     *io.PipeWriter

	done chan struct{} // closed when the pump has finished
	exit *Exit         // valid after done; nil if the stream failed
	err  error         // valid after done
}

func newProcess(c *Client, stdout, stderr io.Writer, pty bool, cancel context.CancelFunc) *Process {
	p := &Process{c: c, cancel: cancel, stdout: stdout, stderr: stderr, done: make(chan struct{})}
	p.pty.Store(pty)
	if p.stdout == nil {
		p.outR, p.outW = io.Pipe()
		p.stdout = p.outW
	}
	if p.stderr == nil {
		p.errR, p.errW = io.Pipe()
		p.stderr = p.errW
	}
	return p
}

// begin reads the start event (it must come first, PROTOCOL.md 3.3.1) and
// hands the rest of the stream to the pump goroutine.
func (p *Process) begin(op string, s eventStream) error {
	if !s.receive() {
		err := s.err()
		if err == nil {
			err = &Error{Op: op, Message: "stream ended before the start event", kind: ErrInternal}
		}
		p.abort(s)
		return wrapErr(op, err)
	}
	start := s.event().GetStart()
	if start == nil {
		p.abort(s)
		return &Error{Op: op, Message: fmt.Sprintf("expected the start event, got %T", s.event().GetEvent()), kind: ErrInternal}
	}
	p.pid = start.GetPid()
	go p.pump(op, s)
	return nil
}

func (p *Process) abort(s eventStream) {
	_ = s.close()
	p.cancel()
	p.closePipes(io.ErrClosedPipe)
	close(p.done)
}

// pump delivers output in order until the stream ends. A sink that fails
// (a closed reader, a broken stdout) is dropped; output for it is then
// discarded so the exit still arrives.
func (p *Process) pump(op string, s eventStream) {
	var err error
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("envd client: process output panic: %v", r)
		}
		_ = s.close()
		p.cancel()
		if p.exit == nil && err == nil {
			err = &Error{Op: op, Message: "stream ended without an exit event", kind: ErrUnavailable}
		}
		p.err = err
		p.closePipes(err)
		close(p.done)
	}()
	out, errw := p.stdout, p.stderr
	write := func(w *io.Writer, b []byte) {
		if *w != nil {
			if _, werr := (*w).Write(b); werr != nil {
				*w = nil
			}
		}
	}
	for s.receive() {
		switch e := s.event().GetEvent().(type) {
		case *pb.ProcessEvent_Data:
			switch o := e.Data.GetOutput().(type) {
			case *pb.ProcessEvent_DataEvent_Stdout:
				write(&out, o.Stdout)
			case *pb.ProcessEvent_DataEvent_Stderr:
				write(&errw, o.Stderr)
			case *pb.ProcessEvent_DataEvent_Pty:
				p.pty.Store(true)
				write(&out, o.Pty)
			}
		case *pb.ProcessEvent_End:
			p.exit = exitFrom(e.End)
		}
	}
	if serr := s.err(); serr != nil && p.exit == nil {
		err = wrapErr(op, serr)
	}
}

func (p *Process) closePipes(err error) {
	if p.outW != nil {
		p.outW.CloseWithError(err)
	}
	if p.errW != nil {
		p.errW.CloseWithError(err)
	}
}

// PID is the process id in the guest.
func (p *Process) PID() uint32 { return p.pid }

// Tag is the tag the process was started or selected with.
func (p *Process) Tag() string { return p.tag }

// IsPTY reports whether input goes to a terminal.
func (p *Process) IsPTY() bool { return p.pty.Load() }

// Stdout reads the process's stdout (a PTY's output) when Command.Stdout
// was nil. Read Stdout and Stderr to EOF before or while calling Wait: an
// unread stream holds the others back, as envd applies backpressure rather
// than drop output.
func (p *Process) Stdout() io.Reader {
	if p.outR == nil {
		return strings.NewReader("")
	}
	return p.outR
}

// Stderr reads the process's stderr when Command.Stderr was nil (always
// empty for a PTY process). See Stdout.
func (p *Process) Stderr() io.Reader {
	if p.errR == nil {
		return strings.NewReader("")
	}
	return p.errR
}

// Wait returns how the process ended, once its output has been delivered.
// The error is set when the stream ended without an exit: the context was
// cancelled (ErrCanceled), the process's lifetime ran out (ErrTimeout), or
// the connection failed (ErrUnavailable).
func (p *Process) Wait() (*Exit, error) {
	<-p.done
	return p.exit, p.err
}

// Done is closed when Wait would return.
func (p *Process) Done() <-chan struct{} { return p.done }

// Close stops the output stream and waits for its goroutine. The process
// keeps running.
func (p *Process) Close() error {
	p.cancel()
	p.closeReaders()
	<-p.done
	return nil
}

// closeReaders unblocks a pump stuck writing to a reader nobody reads.
func (p *Process) closeReaders() {
	if p.outR != nil {
		p.outR.CloseWithError(io.ErrClosedPipe)
	}
	if p.errR != nil {
		p.errR.CloseWithError(io.ErrClosedPipe)
	}
}

func (p *Process) sel() Selector { return PID(p.pid) }

// Kill sends SIGKILL.
func (p *Process) Kill(ctx context.Context) error { return p.c.Kill(ctx, p.sel()) }

// Signal sends SIGTERM or SIGKILL.
func (p *Process) Signal(ctx context.Context, sig Signal) error {
	return p.c.SendSignal(ctx, p.sel(), sig)
}

// SendInput writes data to the process's terminal (PTY processes) or its
// stdin (started with Command.Stdin).
func (p *Process) SendInput(ctx context.Context, data []byte) error {
	if p.IsPTY() {
		return p.c.SendPTY(ctx, p.sel(), data)
	}
	return p.c.SendStdin(ctx, p.sel(), data)
}

// CloseStdin closes stdin; for a PTY process it sends Ctrl-D instead.
func (p *Process) CloseStdin(ctx context.Context) error {
	if p.IsPTY() {
		return p.c.SendPTY(ctx, p.sel(), []byte{0x04})
	}
	return p.c.CloseStdin(ctx, p.sel())
}

// Resize sets the terminal size of a PTY process.
func (p *Process) Resize(ctx context.Context, size Size) error {
	return p.c.Resize(ctx, p.sel(), size)
}

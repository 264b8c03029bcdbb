package client

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"connectrpc.com/connect"

	pb "github.com/sandboxd/envd/internal/gen/process"
)

// Command describes a process to start. Cmd is not run through a shell:
// it is looked up on the guest's PATH and gets Args as they are (wrap it in
// "/bin/sh", "-c", ... for shell syntax).
type Command struct {
	Cmd  string
	Args []string
	Envs map[string]string // added to envd's environment
	Cwd  string            // "" means the default workdir, else the user's home
	Tag  string            // a label for Connect and the selector calls
	// Stdin keeps the process's stdin open for SendInput and CloseStdin;
	// without it stdin is /dev/null (PTY processes always take input).
	Stdin bool
	// PTY, when set, runs the process on a pseudo-terminal of that size;
	// its output then arrives as stdout.
	PTY *Size
	// Timeout, when > 0, is the process's lifetime: envd kills it that long
	// after the start (PROTOCOL.md 3.3.1). A deadline on the context given
	// to Start has the same effect.
	Timeout time.Duration
	// Stdout and Stderr, when set, receive the output as it arrives (a
	// writer is a callback; see WriterFunc). When nil, read Process.Stdout
	// and Process.Stderr instead.
	Stdout, Stderr io.Writer
	// MaxOutput bounds what Run keeps of each stream (default 16 MiB);
	// the rest is dropped and Result.Truncated is set.
	MaxOutput int
}

// Size is a terminal size in character cells.
type Size struct{ Cols, Rows uint32 }

// WriterFunc makes a callback an io.Writer. The slice is only valid during
// the call.
type WriterFunc func(p []byte)

func (f WriterFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// Selector names a process by pid or by tag (tags need not be unique; envd
// picks one).
type Selector struct {
	pid uint32
	tag string
}

// PID selects a process by pid.
func PID(pid uint32) Selector { return Selector{pid: pid} }

// Tag selects a process by tag.
func Tag(tag string) Selector { return Selector{tag: tag} }

func (s Selector) String() string {
	if s.tag != "" {
		return "tag " + strconv.Quote(s.tag)
	}
	return "pid " + strconv.FormatUint(uint64(s.pid), 10)
}

func (s Selector) wire() *pb.ProcessSelector {
	if s.tag != "" {
		return &pb.ProcessSelector{Selector: &pb.ProcessSelector_Tag{Tag: s.tag}}
	}
	return &pb.ProcessSelector{Selector: &pb.ProcessSelector_Pid{Pid: s.pid}}
}

// Exit is how a process ended (PROTOCOL.md 3.3.1 EndEvent).
type Exit struct {
	Code   int    // exit code; -1 when killed by a signal
	Exited bool   // false when killed by a signal
	Status string // "exit status 1", "signal: killed"
	Error  string // set for a non-zero code or a signal
}

// Success reports a zero exit code.
func (e Exit) Success() bool { return e.Exited && e.Code == 0 }

// Result is what Run collects.
type Result struct {
	Exit
	Stdout, Stderr []byte
	Truncated      bool // output beyond Command.MaxOutput was dropped
}

// ProcessInfo is one entry of List.
type ProcessInfo struct {
	PID  uint32
	Tag  string // "" when untagged
	Cmd  string
	Args []string
	Envs map[string]string
	Cwd  string // as requested; "" when it was not given
}

// defaultMaxOutput is Run's per-stream bound when Command.MaxOutput is 0.
const defaultMaxOutput = 16 << 20

// Run starts cmd, waits for it and returns its output and exit status. A
// non-zero exit is not an error; check Result.Code.
func (c *Client) Run(ctx context.Context, cmd Command) (*Result, error) {
	limit := cmd.MaxOutput
	if limit <= 0 {
		limit = defaultMaxOutput
	}
	res := &Result{}
	out := &capBuffer{limit: limit, dst: &res.Stdout, trunc: &res.Truncated}
	errb := &capBuffer{limit: limit, dst: &res.Stderr, trunc: &res.Truncated}
	cmd.Stdout, cmd.Stderr = tee(out, cmd.Stdout), tee(errb, cmd.Stderr)
	p, err := c.Start(ctx, cmd)
	if err != nil {
		return nil, err
	}
	exit, err := p.Wait()
	if err != nil {
		return nil, err
	}
	res.Exit = *exit
	return res, nil
}

// capBuffer keeps the first limit bytes; the pump writes from one goroutine.
type capBuffer struct {
	limit int
	dst   *[]byte
	trunc *bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	room := b.limit - len(*b.dst)
	if len(p) > room {
		*b.trunc = true
		*b.dst = append(*b.dst, p[:max(room, 0)]...)
		return len(p), nil
	}
	*b.dst = append(*b.dst, p...)
	return len(p), nil
}

func tee(a, b io.Writer) io.Writer {
	if b == nil {
		return a
	}
	return io.MultiWriter(a, b)
}

// Start starts cmd and returns once envd reports its pid. Output flows to
// Command.Stdout/Stderr or the Process readers until Wait returns. The
// process outlives the stream: cancelling ctx or Process.Close stops the
// output, not the process (use Kill). Start is never retried.
func (c *Client) Start(ctx context.Context, cmd Command) (*Process, error) {
	req := &pb.StartRequest{
		Process: &pb.ProcessConfig{Cmd: cmd.Cmd, Args: cmd.Args, Envs: cmd.Envs},
		Stdin:   &cmd.Stdin,
	}
	if cmd.Cwd != "" {
		req.Process.Cwd = &cmd.Cwd
	}
	if cmd.Tag != "" {
		req.Tag = &cmd.Tag
	}
	if cmd.PTY != nil {
		req.Pty = &pb.PTY{Size: &pb.PTY_Size{Cols: cmd.PTY.Cols, Rows: cmd.PTY.Rows}}
	}
	sctx, cancel := context.WithCancel(ctx)
	if cmd.Timeout > 0 {
		var cancelT context.CancelFunc
		sctx, cancelT = context.WithTimeout(sctx, cmd.Timeout)
		cancel = chain(cancelT, cancel)
	}
	s, err := c.proc.Start(sctx, connect.NewRequest(req))
	if err != nil {
		cancel()
		return nil, wrapErr("start", err)
	}
	p := newProcess(c, cmd.Stdout, cmd.Stderr, cmd.PTY != nil, cancel)
	p.tag = cmd.Tag
	if err := p.begin("start", streamOf(s)); err != nil {
		return nil, err
	}
	return p, nil
}

// ConnectOptions say where the output of an attached process goes.
type ConnectOptions struct {
	Stdout, Stderr io.Writer // nil: read Process.Stdout and Process.Stderr
	// PTY makes SendInput write to the process's terminal. It is also set
	// once PTY output arrives.
	PTY bool
}

// Connect attaches to a running process: its output from now on (no
// history), then its exit. A process that ended in the last 30 s still
// reports its exit. Connect is never retried.
func (c *Client) Connect(ctx context.Context, sel Selector, o ConnectOptions) (*Process, error) {
	sctx, cancel := context.WithCancel(ctx)
	s, err := c.proc.Connect(sctx, connect.NewRequest(&pb.ConnectRequest{Process: sel.wire()}))
	if err != nil {
		cancel()
		return nil, wrapErr("connect", err)
	}
	p := newProcess(c, o.Stdout, o.Stderr, o.PTY, cancel)
	p.tag = sel.tag
	if err := p.begin("connect", streamOf(s)); err != nil {
		return nil, err
	}
	return p, nil
}

// List returns every process envd knows, in no particular order.
func (c *Client) List(ctx context.Context) ([]ProcessInfo, error) {
	var out []ProcessInfo
	err := c.idempotent(ctx, "list", func(ctx context.Context) error {
		resp, err := c.proc.List(ctx, connect.NewRequest(&pb.ListRequest{}))
		if err != nil {
			return err
		}
		out = out[:0]
		for _, p := range resp.Msg.GetProcesses() {
			cfg := p.GetConfig()
			out = append(out, ProcessInfo{PID: p.GetPid(), Tag: p.GetTag(), Cmd: cfg.GetCmd(),
				Args: cfg.GetArgs(), Envs: cfg.GetEnvs(), Cwd: cfg.GetCwd()})
		}
		return nil
	})
	return out, err
}

// Signal is a signal envd can send (only these two, PROTOCOL.md 3.3.5).
type Signal int

const (
	SIGTERM Signal = 15
	SIGKILL Signal = 9
)

// SendSignal sends sig to the selected process (the pid only, not its
// group). Not retried: a second SIGKILL could hit a new process.
func (c *Client) SendSignal(ctx context.Context, sel Selector, sig Signal) error {
	return c.once(ctx, "signal", func(ctx context.Context) error {
		_, err := c.proc.SendSignal(ctx, connect.NewRequest(&pb.SendSignalRequest{
			Process: sel.wire(), Signal: pb.Signal(sig)}))
		return err
	})
}

// Kill sends SIGKILL to the selected process.
func (c *Client) Kill(ctx context.Context, sel Selector) error {
	return c.SendSignal(ctx, sel, SIGKILL)
}

// SendStdin writes data to the selected process's stdin (started with
// Command.Stdin). It returns once envd has written it.
func (c *Client) SendStdin(ctx context.Context, sel Selector, data []byte) error {
	return c.sendInput(ctx, sel, &pb.ProcessInput{Input: &pb.ProcessInput_Stdin{Stdin: data}})
}

// SendPTY writes data to the selected process's terminal, as typed keys
// (Ctrl-D is 0x04, Ctrl-C 0x03).
func (c *Client) SendPTY(ctx context.Context, sel Selector, data []byte) error {
	return c.sendInput(ctx, sel, &pb.ProcessInput{Input: &pb.ProcessInput_Pty{Pty: data}})
}

func (c *Client) sendInput(ctx context.Context, sel Selector, in *pb.ProcessInput) error {
	return c.once(ctx, "send input", func(ctx context.Context) error {
		_, err := c.proc.SendInput(ctx, connect.NewRequest(&pb.SendInputRequest{Process: sel.wire(), Input: in}))
		return err
	})
}

// CloseStdin closes the selected process's stdin (it reads EOF). Not for
// PTY processes: send Ctrl-D (0x04) with SendPTY instead.
func (c *Client) CloseStdin(ctx context.Context, sel Selector) error {
	return c.idempotent(ctx, "close stdin", func(ctx context.Context) error {
		_, err := c.proc.CloseStdin(ctx, connect.NewRequest(&pb.CloseStdinRequest{Process: sel.wire()}))
		return err
	})
}

// Resize sets the terminal size of the selected PTY process.
func (c *Client) Resize(ctx context.Context, sel Selector, size Size) error {
	return c.idempotent(ctx, "resize", func(ctx context.Context) error {
		_, err := c.proc.Update(ctx, connect.NewRequest(&pb.UpdateRequest{Process: sel.wire(),
			Pty: &pb.PTY{Size: &pb.PTY_Size{Cols: size.Cols, Rows: size.Rows}}}))
		return err
	})
}

func chain(fs ...context.CancelFunc) context.CancelFunc {
	return func() {
		for _, f := range fs {
			f()
		}
	}
}

// exitFrom converts the wire end event.
func exitFrom(e *pb.ProcessEvent_EndEvent) *Exit {
	return &Exit{Code: int(e.GetExitCode()), Exited: e.GetExited(), Status: e.GetStatus(), Error: e.GetError()}
}

func (e Exit) String() string {
	if e.Status != "" {
		return e.Status
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

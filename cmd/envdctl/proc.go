package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sandboxd/envd/client"
)

func processCommands() []*command {
	return []*command{
		{name: "run", args: "[flags] [--] CMD [ARGS...]", short: "run a command, stream its output, exit with its status",
			long: `Runs CMD with ARGS in the sandbox and streams its stdout and stderr.
CMD is run directly, not through a shell, unless --shell is given (then
the arguments are joined into one /bin/sh -c script). envdctl exits with
the remote exit status (128+N when a signal N ended it). The first Ctrl-C
sends SIGTERM to the remote process, the second SIGKILL.`,
			ownSignals: true, setup: setupRun},
		{name: "shell", args: "[flags] [CMD [ARGS...]]", short: "interactive shell on a terminal",
			long: `Opens an interactive login shell (bash, else sh) in the sandbox on a
pseudo-terminal, or runs CMD on one. The local terminal is put in raw mode
and its size follows along. Ctrl-D at the prompt ends the shell;
envdctl exits with the shell's exit status.`,
			ownSignals: true, setup: setupShell},
		{name: "ps", args: "", short: "list processes",
			long:  `Lists the processes envd started (pid, tag, command, working directory).`,
			setup: func(*flag.FlagSet) runFunc { return runPs }},
		{name: "attach", args: "[flags] PID|TAG", short: "attach to a running process",
			long: `Streams a running process's output from now on and exits with its exit
status. TARGET is a pid, or a tag (anything that is not a number, or any
value with --tag). With -i local stdin is forwarded; with --pty the
process is a terminal one and the local terminal is used raw. Ctrl-C
detaches (without --pty) and leaves the process running.`,
			ownSignals: true, setup: setupAttach},
		{name: "kill", args: "[--signal TERM|KILL] [--tag] PID|TAG...", short: "signal processes",
			long: `Sends SIGTERM (default) or SIGKILL to each process, named by pid or
tag. envd can send only these two signals, to the process itself (not
its group).`, setup: setupKill},
	}
}

// procFlags are shared by run and shell.
type procFlags struct {
	tag, cwd string
	envs     stringList
	timeout  time.Duration
}

func (p *procFlags) declare(fs *flag.FlagSet) {
	fs.StringVar(&p.tag, "tag", "", "tag the process (for attach and kill)")
	fs.StringVar(&p.cwd, "cwd", "", "working directory (default: the user's home)")
	fs.Var(&p.envs, "env", "set an environment variable `KEY=VALUE` (repeatable)")
	fs.DurationVar(&p.timeout, "timeout", 0, "kill the process after this long (0: never)")
}

func (p *procFlags) command(cmd string, args []string) (client.Command, error) {
	envs, err := envMap(p.envs)
	return client.Command{Cmd: cmd, Args: args, Tag: p.tag, Cwd: p.cwd, Envs: envs, Timeout: p.timeout}, err
}

func setupRun(fs *flag.FlagSet) runFunc {
	var pf procFlags
	pf.declare(fs)
	shell := fs.Bool("shell", false, "run the arguments as a /bin/sh -c script")
	stdin := fs.Bool("i", false, "forward local stdin to the process (EOF closes its stdin)")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) == 0 {
			return usagef("missing CMD")
		}
		cmdName, cmdArgs := args[0], args[1:]
		if *shell {
			cmdName, cmdArgs = "/bin/sh", []string{"-c", strings.Join(args, " ")}
		}
		cmd, err := pf.command(cmdName, cmdArgs)
		if err != nil {
			return err
		}
		// A broken local stdout (envdctl run -- yes | head -1) stops the
		// remote process, as SIGPIPE would in a local pipeline.
		guard := &pipeGuard{}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = *stdin, guard.wrap(a.stdout), guard.wrap(a.stderr)
		// Catch signals before the start: one that arrives meanwhile waits
		// in the channel for the process. SIGPIPE turns into EPIPE errors.
		sigs, pipes := make(chan os.Signal, 2), make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		signal.Notify(pipes, syscall.SIGPIPE)
		defer signal.Stop(sigs)
		defer signal.Stop(pipes)
		p, err := a.c.Start(ctx, cmd)
		if err != nil {
			return err
		}
		guard.attach(p)
		stopSig := forwardSignals(a, p, sigs)
		defer stopSig()
		if *stdin {
			in := startInput(a.stdin, func(b []byte) error { return p.SendInput(ctx, b) },
				func() { _ = p.CloseStdin(ctx) })
			defer in.stop()
		}
		err = waitExit(p)
		if guard.isBroken() {
			return exitCode(128 + int(syscall.SIGPIPE))
		}
		if pf.timeout > 0 && errors.Is(err, client.ErrTimeout) {
			fmt.Fprintf(a.stderr, "envdctl run: timed out after %s; the process was killed\n", pf.timeout)
			return exitCode(124) // as timeout(1)
		}
		return err
	}
}

// pipeGuard sends SIGTERM to the process once writing its output locally
// fails (a closed pipe); the output after that is dropped.
type pipeGuard struct {
	mu     sync.Mutex // guards p and broken
	p      *client.Process
	broken bool
}

func (g *pipeGuard) wrap(w io.Writer) io.Writer {
	return client.WriterFunc(func(b []byte) {
		if !g.isBroken() {
			if _, err := w.Write(b); err != nil {
				g.fail()
			}
		}
	})
}

func (g *pipeGuard) isBroken() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.broken
}

func (g *pipeGuard) fail() {
	g.mu.Lock()
	g.broken = true
	p := g.p
	g.mu.Unlock()
	if p != nil {
		terminate(p)
	}
}

// attach names the process once started; output may already have failed.
func (g *pipeGuard) attach(p *client.Process) {
	g.mu.Lock()
	g.p = p
	broken := g.broken
	g.mu.Unlock()
	if broken {
		terminate(p)
	}
}

func terminate(p *client.Process) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.Signal(ctx, client.SIGTERM)
}

// forwardSignals turns the first SIGINT/SIGTERM from ch into a remote
// SIGTERM and the next into SIGKILL. The returned func stops it and waits.
func forwardSignals(a *app, p *client.Process, ch <-chan os.Signal) func() {
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		sig := client.SIGTERM
		for {
			select {
			case <-ch:
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := p.Signal(ctx, sig); err != nil {
					fmt.Fprintf(a.stderr, "envdctl: %s\n", oneLine(err.Error()))
				}
				cancel()
				sig = client.SIGKILL
			case <-quit:
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// waitExit waits for the process and turns its end into envdctl's status.
func waitExit(p *client.Process) error {
	exit, err := p.Wait()
	if err != nil {
		return err
	}
	return exitStatus(exit)
}

// exitStatus maps a remote exit to a local one: the code, or 128+signal.
func exitStatus(e *client.Exit) error {
	if e.Exited {
		if e.Code == 0 {
			return nil
		}
		return exitCode(e.Code & 0xff)
	}
	name := strings.TrimPrefix(e.Status, "signal: ")
	for n := 1; n < 65; n++ {
		if syscall.Signal(n).String() == name {
			return exitCode(128 + n)
		}
	}
	return exitCode(255)
}

func setupShell(fs *flag.FlagSet) runFunc {
	var pf procFlags
	pf.declare(fs)
	return func(ctx context.Context, a *app, args []string) error {
		name, rest := "/bin/sh", []string{"-c",
			"if command -v bash >/dev/null 2>&1; then exec bash -i -l; else exec sh -i -l; fi"}
		if len(args) > 0 {
			name, rest = args[0], args[1:]
		}
		cmd, err := pf.command(name, rest)
		if err != nil {
			return err
		}
		envs := map[string]string{"TERM": envOr("TERM", "xterm-256color"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
		for k, v := range cmd.Envs {
			envs[k] = v
		}
		cmd.Envs = envs
		return runTerminal(ctx, a, cmd)
	}
}

func runPs(ctx context.Context, a *app, args []string) error {
	if len(args) != 0 {
		return usagef("ps takes no arguments")
	}
	list, err := a.c.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tTAG\tCOMMAND\tCWD")
	for _, p := range list {
		cmd := quoteArg(p.Cmd)
		for _, s := range p.Args {
			cmd += " " + quoteArg(s)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", p.PID, orDash(p.Tag), cmd, orDash(p.Cwd))
	}
	return tw.Flush()
}

func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?;&|<>()") {
		return s
	}
	return strconv.Quote(s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// target reads a PID|TAG argument.
func target(s string, tag bool) client.Selector {
	if !tag {
		if n, err := strconv.ParseUint(s, 10, 32); err == nil {
			return client.PID(uint32(n))
		}
	}
	return client.Tag(s)
}

func setupAttach(fs *flag.FlagSet) runFunc {
	tag := fs.Bool("tag", false, "the target is a tag even if it is a number")
	pty := fs.Bool("pty", false, "the process runs on a terminal: raw local terminal, input and resizes")
	stdin := fs.Bool("i", false, "forward local stdin to the process's stdin")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) != 1 {
			return usagef("want one PID or TAG")
		}
		sel := target(args[0], *tag)
		if *pty {
			return attachTerminal(ctx, a, sel)
		}
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		p, err := a.c.Connect(ctx, sel, client.ConnectOptions{Stdout: a.stdout, Stderr: a.stderr})
		if err != nil {
			return err
		}
		if *stdin {
			in := startInput(a.stdin, func(b []byte) error { return p.SendInput(ctx, b) },
				func() { _ = p.CloseStdin(ctx) })
			defer in.stop()
		}
		err = waitExit(p)
		if ctx.Err() != nil {
			return exitCode(130) // detached by Ctrl-C; the process runs on
		}
		return err
	}
}

func setupKill(fs *flag.FlagSet) runFunc {
	sigName := fs.String("signal", "TERM", "TERM or KILL")
	tag := fs.Bool("tag", false, "targets are tags even if they are numbers")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) == 0 {
			return usagef("want at least one PID or TAG")
		}
		var sig client.Signal
		switch strings.TrimPrefix(strings.ToUpper(*sigName), "SIG") {
		case "TERM", "15":
			sig = client.SIGTERM
		case "KILL", "9":
			sig = client.SIGKILL
		default:
			return usagef("--signal must be TERM or KILL, not %q", *sigName)
		}
		for _, t := range args {
			if err := a.c.SendSignal(ctx, target(t, *tag), sig); err != nil {
				return err
			}
		}
		return nil
	}
}

// Command envdctl drives an envd from a terminal: run commands, open a
// shell, copy files both ways and inspect the filesystem and the sandbox.
//
//	envdctl [--addr HOST:PORT] [--token T] [--user U] COMMAND [ARGS]
//
// Global flags also read ENVD_ADDR, ENVD_TOKEN and ENVD_USER. (envd itself
// reads ENVD_<FLAG> for its own flags; it has no addr, token or user flag,
// so the names do not clash.) Run "envdctl help" for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sandboxd/envd/client"
)

// app is what every command gets: the client and the standard streams.
type app struct {
	c      *client.Client
	stdin  *os.File
	stdout *os.File
	stderr *os.File
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("envdctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", envOr("ENVD_ADDR", client.DefaultAddr), "envd address (host:port or http://host:port) ($ENVD_ADDR)")
	token := fs.String("token", os.Getenv("ENVD_TOKEN"), "access token set by /init ($ENVD_TOKEN)")
	user := fs.String("user", os.Getenv("ENVD_USER"), "run as this user; default: envd's default user ($ENVD_USER)")
	useJSON := fs.Bool("json", false, "use the Connect JSON codec instead of protobuf")
	h2c := fs.Bool("h2c", false, "use cleartext HTTP/2 instead of HTTP/1.1")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(os.Stdout, fs)
		return 0
	case err != nil:
		fmt.Fprintf(os.Stderr, "envdctl: %v (see 'envdctl help')\n", err)
		return 2
	case fs.NArg() == 0:
		printUsage(os.Stderr, fs)
		return 2
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		return help(rest, fs)
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(os.Stderr, "envdctl: unknown command %q (see 'envdctl help')\n", name)
		return 2
	}
	opts := []client.Option{client.WithToken(*token), client.WithUser(*user)}
	if *useJSON {
		opts = append(opts, client.WithJSON())
	}
	if *h2c {
		opts = append(opts, client.WithH2C())
	}
	c, err := client.New(*addr, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "envdctl:", oneLine(err.Error()))
		return 2
	}
	defer c.Close()
	a := &app{c: c, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	return a.exec(cmd, rest)
}

// exec parses the command's flags and runs it; the result is the exit code.
func (a *app) exec(cmd *command, args []string) int {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runFn := cmd.setup(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommand(a.stdout, cmd, fs)
			return 0
		}
		fmt.Fprintf(a.stderr, "envdctl %s: %v (see 'envdctl help %s')\n", cmd.name, err, cmd.name)
		return 2
	}
	ctx := context.Background()
	if !cmd.ownSignals {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	err := runFn(ctx, a, fs.Args())
	var code exitCode
	var usage usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &usage):
		fmt.Fprintf(a.stderr, "envdctl %s: %s (see 'envdctl help %s')\n", cmd.name, usage, cmd.name)
		return 2
	case ctx.Err() != nil && errors.Is(err, client.ErrCanceled):
		return 130
	}
	fmt.Fprintf(a.stderr, "envdctl %s: %s\n", cmd.name, strings.TrimPrefix(oneLine(err.Error()), "envd: "))
	return 1
}

// exitCode ends envdctl with that status and no message (a remote exit).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a wrong invocation: exit status 2.
type usageError string

func (e usageError) Error() string { return string(e) }

func usagef(format string, args ...any) error { return usageError(fmt.Sprintf(format, args...)) }

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// oneLine keeps every error on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

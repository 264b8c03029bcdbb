package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand. setup declares its flags on fs and returns
// the function that runs it with the remaining arguments.
type command struct {
	name  string
	args  string // synopsis after the name
	short string // one line for the command list
	long  string // the help text
	// ownSignals: the command handles SIGINT/SIGTERM itself (forwarding
	// them, or a raw terminal where Ctrl-C is a key).
	ownSignals bool
	setup      func(fs *flag.FlagSet) runFunc
}

type runFunc func(ctx context.Context, a *app, args []string) error

// commands is the one command table, in the order help lists them.
var commands []*command

func init() {
	commands = append(commands, processCommands()...)
	commands = append(commands, fileCommands()...)
	commands = append(commands, cpCommand())
	commands = append(commands, lifecycleCommands()...)
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

const usageHead = `envdctl drives an envd (the sandbox guest agent) from a terminal.

Usage:
  envdctl [--addr HOST:PORT] [--token T] [--user U] COMMAND [ARGS]

Remote paths in cp carry a leading ':' (envdctl cp ./a.txt :/tmp/a.txt).
Relative remote paths are relative to the user's home.
`

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usageHead)
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.short)
	}
	fmt.Fprintln(w, "\nGlobal flags:")
	printFlags(w, fs)
	fmt.Fprint(w, `
ENVD_ADDR, ENVD_TOKEN and ENVD_USER are read by envdctl only: envd reads
ENVD_<FLAG> for its own flags, and has no addr, token or user flag.

Run 'envdctl help COMMAND' for a command's flags.
`)
}

func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if len(f.Name) == 1 {
			line = "  -" + f.Name
		}
		if name != "" {
			line += " " + name
		}
		if len(line) > 22 {
			line += "\n" + strings.Repeat(" ", 22)
		} else {
			line += strings.Repeat(" ", 22-len(line))
		}
		line += usage
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0s" && f.DefValue != "0" {
			line += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintln(w, line)
	})
}

func printCommand(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: envdctl %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.long))
	has := false
	fs.VisitAll(func(*flag.Flag) { has = true })
	if has {
		fmt.Fprintln(w, "\nFlags:")
		printFlags(w, fs)
	}
}

// help is "envdctl help [COMMAND]".
func help(args []string, global *flag.FlagSet) int {
	if len(args) == 0 {
		printUsage(os.Stdout, global)
		return 0
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(os.Stderr, "envdctl help: unknown command %q\n", args[0])
		return 2
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.setup(fs)
	printCommand(os.Stdout, c, fs)
	return 0
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// envMap turns repeated K=V flags into a map.
func envMap(list stringList) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--env wants KEY=VALUE, got %q", kv)
		}
		m[k] = v
	}
	return m, nil
}

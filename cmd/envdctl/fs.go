package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sandboxd/envd/client"
)

func fileCommands() []*command {
	return []*command{
		{name: "ls", args: "[-l] [--depth N] [PATH...]", short: "list a directory",
			long: `Lists directories in the sandbox (default: the user's home). Directories
get a trailing '/'. With --depth N entries down to N levels are listed,
as paths relative to the directory.`, setup: setupLs},
		{name: "stat", args: "PATH...", short: "describe files",
			long: `Prints each path's type, size, mode, owner and group, modification time,
and for a symlink its fully resolved target. A final symlink is not
followed.`,
			setup: func(*flag.FlagSet) runFunc { return runStat }},
		{name: "mkdir", args: "[-p] PATH...", short: "create directories (with parents)",
			long: `Creates each directory and its missing parents. An existing directory
is an error unless -p is given.`, setup: setupMkdir},
		{name: "mv", args: "SRC DST", short: "move or rename",
			long: `Renames SRC to DST in the sandbox (an existing file DST is replaced);
DST's missing parents are created.`, setup: func(*flag.FlagSet) runFunc { return runMv }},
		{name: "rm", args: "PATH...", short: "remove files and directory trees",
			long: `Removes files, symlinks and whole directory trees. A missing path is not
an error.`, setup: func(*flag.FlagSet) runFunc { return runRm }},
		{name: "cat", args: "PATH...", short: "print files",
			long: `Streams the files' contents to stdout, one after the other, without
holding them in memory (envdctl cp :PATH - does the same for one file).`,
			setup: func(*flag.FlagSet) runFunc { return runCat }},
		{name: "watch", args: "[-r] [-l] PATH", short: "print filesystem events",
			long: `Prints one line per change under the directory PATH ("CREATE sub/a.txt")
until interrupted. -r watches subdirectories too; -l adds the entry's
size and mode where envd still could stat it.`, setup: setupWatch},
	}
}

func setupLs(fs *flag.FlagSet) runFunc {
	long := fs.Bool("l", false, "long format: mode, owner, group, size, time")
	depth := fs.Int("depth", 1, "levels to list")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) == 0 {
			args = []string{""}
		}
		for i, dir := range args {
			list, err := a.c.ListDir(ctx, dir, *depth)
			if err != nil {
				return err
			}
			root := dir
			if *depth > 1 && !path.IsAbs(dir) {
				// Entries carry resolved paths: learn what dir resolved to.
				if st, err := a.c.Stat(ctx, dir); err == nil {
					root = st.Path
				}
			}
			if len(args) > 1 {
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				fmt.Fprintf(a.stdout, "%s:\n", dir)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 8, 1, ' ', 0)
			for _, e := range list {
				name := relName(root, e)
				if e.IsDir() {
					name += "/"
				}
				if e.SymlinkTarget != "" {
					name += " -> " + e.SymlinkTarget
				}
				if *long {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", e.Permissions, e.Owner, e.Group, e.Size,
						e.ModTime.Local().Format("2006-01-02 15:04"), name)
				} else {
					fmt.Fprintln(tw, name)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		return nil
	}
}

// relName is an entry's path relative to the listed directory root (its
// name when it is not below it).
func relName(root string, e client.EntryInfo) string {
	prefix := strings.TrimSuffix(root, "/") + "/"
	if root != "" && strings.HasPrefix(e.Path, prefix) {
		return e.Path[len(prefix):]
	}
	return e.Name
}

func runStat(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usagef("missing PATH")
	}
	for i, p := range args {
		e, err := a.c.Stat(ctx, p)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(a.stdout)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 8, 1, ' ', 0)
		fmt.Fprintf(tw, "Path:\t%s\n", e.Path)
		fmt.Fprintf(tw, "Type:\t%s\n", e.Type)
		fmt.Fprintf(tw, "Size:\t%d\n", e.Size)
		fmt.Fprintf(tw, "Mode:\t%s (%04o)\n", e.Permissions, uint32(e.Mode))
		fmt.Fprintf(tw, "Owner:\t%s:%s\n", e.Owner, e.Group)
		fmt.Fprintf(tw, "Modified:\t%s\n", e.ModTime.Local().Format(time.RFC3339Nano))
		if e.SymlinkTarget != "" {
			fmt.Fprintf(tw, "Target:\t%s\n", e.SymlinkTarget)
		}
		for k, v := range e.Metadata {
			fmt.Fprintf(tw, "Metadata:\t%s=%s\n", k, v)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func setupMkdir(fs *flag.FlagSet) runFunc {
	parents := fs.Bool("p", false, "no error if a directory exists")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) == 0 {
			return usagef("missing PATH")
		}
		for _, p := range args {
			if _, err := a.c.MakeDir(ctx, p); err != nil && !(*parents && errors.Is(err, client.ErrAlreadyExists)) {
				return err
			}
		}
		return nil
	}
}

func runMv(ctx context.Context, a *app, args []string) error {
	if len(args) != 2 {
		return usagef("want SRC and DST")
	}
	_, err := a.c.Move(ctx, args[0], args[1])
	return err
}

func runRm(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usagef("missing PATH")
	}
	for _, p := range args {
		if err := a.c.Remove(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func runCat(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usagef("missing PATH")
	}
	for _, p := range args {
		r, err := a.c.Read(ctx, p)
		if err != nil {
			return err
		}
		_, err = io.Copy(a.stdout, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("cat %s: %w", p, err)
		}
	}
	return nil
}

func setupWatch(fs *flag.FlagSet) runFunc {
	recursive := fs.Bool("r", false, "watch subdirectories too")
	long := fs.Bool("l", false, "print size and mode of created and written entries")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) != 1 {
			return usagef("want one directory")
		}
		w, err := a.c.Watch(ctx, args[0], client.WatchOptions{Recursive: *recursive, IncludeEntry: *long})
		if err != nil {
			return err
		}
		defer w.Close()
		fmt.Fprintf(a.stderr, "watching %s (Ctrl-C to stop)\n", args[0])
		for ev := range w.Events() {
			line := ev.Op.String() + " " + ev.Name
			if ev.Entry != nil {
				line += fmt.Sprintf(" (%s %d)", ev.Entry.Permissions, ev.Entry.Size)
			}
			if _, err := fmt.Fprintln(a.stdout, line); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return nil // interrupted: the normal way to end
		}
		return w.Err()
	}
}

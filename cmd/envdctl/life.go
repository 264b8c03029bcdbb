package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/sandboxd/envd/client"
)

func lifecycleCommands() []*command {
	return []*command{
		{name: "health", args: "", short: "check that envd answers",
			long: `Asks GET /health. Prints "ok" and envd's version (Wrenn flavour) or
"ok (no content)" (E2B flavour); exits 1 when envd does not answer.`,
			setup: func(*flag.FlagSet) runFunc { return runHealth }},
		{name: "metrics", args: "", short: "CPU, memory and disk of the sandbox",
			long: `Prints GET /metrics as a table: CPU use since the previous sample and
the core count, memory used and total, the page cache, and the use of
the root filesystem.`,
			setup: func(*flag.FlagSet) runFunc { return runMetrics }},
		{name: "envs", args: "", short: "sandbox-wide environment variables",
			long: `Prints envd's sandbox-wide environment, sorted, as KEY=VALUE lines: its
own variables (WRENN_SANDBOX, ...) and those set by init. Every process
gets these, plus its own.`,
			setup: func(*flag.FlagSet) runFunc { return runEnvs }},
		{name: "init", args: "[flags]", short: "initialise envd (env, default user, token)",
			long: `Sends POST /init, as a host does after boot. --env replaces the whole
set of init variables. Setting --access-token makes every later call need
--token (or ENVD_TOKEN).`, setup: setupInit},
		{name: "sign", args: "[--write] [--expires DURATION] PATH", short: "print a signed /files URL",
			long: `Prints a URL that downloads PATH (or uploads to it, with --write) without
the access token, signed with --token for --user. --expires limits it in
time. Without a token envd needs no signature and the URL is unsigned.
  curl -s "$(envdctl sign /tmp/a.txt)"
  curl -s -XPOST -H 'Content-Type: application/octet-stream' --data-binary @f "$(envdctl sign --write /tmp/f)"`,
			setup: setupSign},
	}
}

func runHealth(ctx context.Context, a *app, args []string) error {
	if len(args) != 0 {
		return usagef("health takes no arguments")
	}
	h, err := a.c.Health(ctx)
	if err != nil {
		return err
	}
	if h.NoContent {
		fmt.Fprintln(a.stdout, "ok (no content)")
	} else {
		fmt.Fprintln(a.stdout, "ok, version", h.Version)
	}
	return nil
}

func runMetrics(ctx context.Context, a *app, args []string) error {
	if len(args) != 0 {
		return usagef("metrics takes no arguments")
	}
	m, err := a.c.Metrics(ctx)
	if err != nil {
		return err
	}
	pct := func(used, total uint64) float64 { return 100 * float64(used) / float64(max(total, 1)) }
	tw := tabwriter.NewWriter(a.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tUSED\tTOTAL\tUSE%")
	fmt.Fprintf(tw, "cpu\t%.2f cores\t%d cores\t%.1f%%\n", m.CPUUsedPct/100*float64(m.CPUCount), m.CPUCount, m.CPUUsedPct)
	fmt.Fprintf(tw, "memory\t%s\t%s\t%.1f%%\n", human(float64(m.MemUsed)), human(float64(m.MemTotal)), pct(m.MemUsed, m.MemTotal))
	fmt.Fprintf(tw, "page cache\t%s\t\t\n", human(float64(m.MemCache)))
	fmt.Fprintf(tw, "disk /\t%s\t%s\t%.1f%%\n", human(float64(m.DiskUsed)), human(float64(m.DiskTotal)), pct(m.DiskUsed, m.DiskTotal))
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "sampled at %s\n", m.Time().Local().Format(time.RFC3339))
	return err
}

func runEnvs(ctx context.Context, a *app, args []string) error {
	if len(args) != 0 {
		return usagef("envs takes no arguments")
	}
	envs, err := a.c.Envs(ctx)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(envs))
	for k := range envs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(a.stdout, "%s=%s\n", k, envs[k])
	}
	return nil
}

func setupInit(fs *flag.FlagSet) runFunc {
	var envs stringList
	fs.Var(&envs, "env", "set a sandbox-wide variable `KEY=VALUE` (repeatable)")
	user := fs.String("default-user", "", "default user for processes and files")
	workdir := fs.String("default-workdir", "", "default working directory")
	token := fs.String("access-token", "", "access token to require from now on")
	stamp := fs.Bool("timestamp", false, "send the current time (replay guard and guest clock)")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) != 0 {
			return usagef("init takes flags only")
		}
		m, err := envMap(envs)
		if err != nil {
			return err
		}
		req := client.InitRequest{EnvVars: m, DefaultUser: *user, DefaultWorkdir: *workdir, AccessToken: *token}
		if *stamp {
			now := time.Now()
			req.Timestamp = &now
		}
		return a.c.Init(ctx, req)
	}
}

func setupSign(fs *flag.FlagSet) runFunc {
	write := fs.Bool("write", false, "an upload URL (POST) instead of a download URL (GET)")
	expires := fs.Duration("expires", 0, "the URL stops working after this long (needs --token)")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) != 1 {
			return usagef("want one PATH")
		}
		op := client.URLRead
		if *write {
			op = client.URLWrite
		}
		var exp time.Time
		if *expires > 0 {
			exp = time.Now().Add(*expires)
		}
		u, err := a.c.FileURL(op, args[0], exp)
		if err != nil {
			return usagef("%v", err)
		}
		fmt.Fprintln(a.stdout, u)
		return nil
	}
}

// Package config parses envd's command line. Every flag of both peers is
// accepted with its name and default; each also reads an ENVD_* variable
// (flag wins over variable, variable over default).
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the daemon's whole configuration.
type Config struct {
	Port        int
	ListenAddr  string // host part only; "" = all interfaces
	IsNotFC     bool
	Flavor      Flavor
	MMDSAddr    string // host[:port] of Firecracker's metadata service
	ForwardAddr string // address localhost services are mirrored onto
	RunDir      string // overrides the flavour's run dir (tests)
	CgroupRoot  string
	NoCgroups   bool
	Cmd         string // process started at boot (Wrenn's --cmd)
	LogFormat   string // "json" or "text"
	Verbose     bool   // E2B: accepted, logs always go to stderr
	// ResumeHandover is E2B's live-upgrade flag. Accepted so a host that
	// passes it does not fail; envd does not implement live upgrade.
	ResumeHandover bool
	// ReapOrphans is not a flag: cmd/envd sets it so the real binary reaps
	// every child (subreaper); in-process tests leave it off.
	ReapOrphans bool

	// PortScanInterval is how often loopback listeners are looked for.
	PortScanInterval time.Duration

	PrintVersion bool
	PrintCommit  bool
}

// Addr is the listen address in host:port form.
func (c Config) Addr() string { return net.JoinHostPort(c.ListenAddr, strconv.Itoa(c.Port)) }

// ErrHelp is returned when -h or --help was asked for.
var ErrHelp = flag.ErrHelp

// Parse parses args (without the program name). defaultFlavor is the
// build-time default; getenv supplies ENVD_* variables. Usage and errors are
// written to out.
func Parse(args []string, defaultFlavor string, getenv func(string) string, out io.Writer) (Config, error) {
	var c Config
	var flavor string
	fs := flag.NewFlagSet("envd", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.IntVar(&c.Port, "port", 49983, "listen port")
	fs.StringVar(&c.ListenAddr, "listen-addr", "", "listen address (default all interfaces)")
	fs.BoolVar(&c.IsNotFC, "isnotfc", false, "not running in Firecracker: no MMDS polling, text logs")
	fs.StringVar(&flavor, "flavor", defaultFlavor, "host flavour: wrenn or e2b")
	fs.StringVar(&c.MMDSAddr, "mmds-addr", "169.254.169.254", "Firecracker metadata service address (host[:port])")
	fs.StringVar(&c.ForwardAddr, "forward-addr", "169.254.0.21", "address that localhost services are forwarded onto")
	fs.DurationVar(&c.PortScanInterval, "port-scan-interval", time.Second, "how often to look for loopback listeners to forward")
	fs.StringVar(&c.RunDir, "run-dir", "", "run directory for marker files (default per flavour)")
	fs.StringVar(&c.CgroupRoot, "cgroup-root", "/sys/fs/cgroup", "cgroup v2 mount point")
	fs.BoolVar(&c.NoCgroups, "no-cgroups", false, "do not use cgroups")
	fs.StringVar(&c.Cmd, "cmd", "", "command to start at boot")
	fs.StringVar(&c.LogFormat, "log-format", "", "log format: json or text (default json, text with --isnotfc)")
	fs.BoolVar(&c.Verbose, "verbose", false, "accepted for E2B compatibility")
	fs.BoolVar(&c.ResumeHandover, "resume-handover", false, "accepted for E2B compatibility (live upgrade is not implemented)")
	fs.BoolVar(&c.PrintVersion, "version", false, "print the version and exit")
	fs.BoolVar(&c.PrintCommit, "commit", false, "print the source commit and exit")

	// Environment first, so that flags given on the command line win.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "ENVD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("invalid value %q for %s: %v", v, name, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if c.Flavor, err = FlavorByName(flavor); err != nil {
		return c, err
	}
	if c.RunDir == "" {
		c.RunDir = c.Flavor.RunDir
	}
	if c.Port < 0 || c.Port > 65535 {
		return c, fmt.Errorf("invalid port %d", c.Port)
	}
	switch c.LogFormat {
	case "":
		c.LogFormat = "json"
		if c.IsNotFC {
			c.LogFormat = "text"
		}
	case "json", "text":
	default:
		return c, errors.New("invalid --log-format (want json or text)")
	}
	return c, nil
}

// ParseOS is Parse over os.Args and the process environment.
func ParseOS(defaultFlavor string) (Config, error) {
	return Parse(os.Args[1:], defaultFlavor, os.Getenv, os.Stderr)
}

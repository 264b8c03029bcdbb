// Command envd is the guest agent of a sandbox microVM: processes,
// filesystem, file transfer, port forwarding and VM lifecycle over one port.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sandboxd/envd/internal/config"
	"github.com/sandboxd/envd/internal/daemon"
)

// Set at link time by `make build`.
var (
	version       = "0.7.0"
	commit        = "unknown"
	defaultFlavor = "wrenn"
)

func main() { os.Exit(run()) }

func run() int {
	cfg, err := config.ParseOS(defaultFlavor)
	if errors.Is(err, config.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "envd:", err)
		return 2
	}
	cfg.ReapOrphans = true // the binary owns every child it starts (internal/reaper)
	if cfg.PrintVersion {
		fmt.Println(version)
		return 0
	}
	if cfg.PrintCommit {
		fmt.Println(commit)
		return 0
	}
	log := newLogger(cfg)
	var termBy time.Time // PID 1: when processes were sent SIGTERM
	if os.Getpid() == 1 {
		bootPID1(log, cfg.CgroupRoot)
		defer func() { exitPID1(log, recover(), termBy) }() // init never exits
	}

	d, err := daemon.New(cfg, log, daemon.Build{Version: version, Commit: commit})
	if err != nil {
		log.Error("envd cannot start", "err", err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		log.Error("envd cannot listen", "addr", cfg.Addr(), "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- d.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		log.Info("envd shutting down")
		if os.Getpid() == 1 { // end the workload so its streams end too
			termBy = time.Now().Add(termGrace)
			signalAll(syscall.SIGTERM)
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = d.Shutdown(sctx)
		cancel()
		<-served
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Error("envd stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(cfg config.Config) *slog.Logger {
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, nil))
}

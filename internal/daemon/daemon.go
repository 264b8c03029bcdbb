// Package daemon is envd's composition root: it builds every subsystem from
// the configuration, wires them into the server and owns their lifetimes.
// cmd/envd and the test harness both start envd through it, so tests run
// exactly what ships.
package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sandboxd/envd/internal/auth"
	"github.com/sandboxd/envd/internal/config"
	"github.com/sandboxd/envd/internal/execctx"
	"github.com/sandboxd/envd/internal/files"
	"github.com/sandboxd/envd/internal/filesystem"
	"github.com/sandboxd/envd/internal/lifecycle"
	"github.com/sandboxd/envd/internal/metrics"
	"github.com/sandboxd/envd/internal/process"
	"github.com/sandboxd/envd/internal/server"
	"github.com/sandboxd/envd/internal/users"
)

// Build identifies the binary.
type Build struct {
	Version string
	Commit  string
}

// Daemon is one running envd.
type Daemon struct {
	cfg  config.Config
	log  *slog.Logger
	http *http.Server
	// closers stop the subsystems after the server, in reverse build order.
	closers []func() error
}

// New builds every subsystem. It does not listen yet.
func New(cfg config.Config, log *slog.Logger, b Build) (*Daemon, error) {
	sandbox := "true"
	if cfg.IsNotFC {
		sandbox = "false"
	}
	marker := cfg.Flavor.Env("SANDBOX")
	defaults := execctx.New(map[string]string{marker: sandbox})
	writeMarker(log, cfg.RunDir, marker, sandbox)

	mc, err := metrics.New(metrics.Options{UsedFromAvailable: cfg.Flavor.Name == config.Wrenn.Name})
	if err != nil {
		return nil, err
	}
	procs, err := process.New(process.Options{})
	if err != nil {
		return nil, err
	}
	fsys, err := filesystem.New(filesystem.Options{})
	if err != nil {
		return nil, err
	}
	fileSvc, err := files.New(files.Options{})
	if err != nil {
		return nil, err
	}
	lc, err := lifecycle.New(lifecycle.Options{})
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Deps{
		Log:      log,
		Version:  b.Version,
		Flavor:   cfg.Flavor,
		Users:    users.New("", ""),
		Defaults: defaults,
		Token:    &auth.Token{},
		Metrics:  mc,

		Process:   procs,
		FS:        fsys,
		Files:     fileSvc,
		Lifecycle: lc,
	})
	if err != nil {
		return nil, err
	}
	hs := &http.Server{
		Handler: srv.Handler(),
		// No read or write timeouts: streams live for hours. The idle
		// timeout outlives the host proxies' (PROTOCOL.md 1.1).
		IdleTimeout:       640 * time.Second,
		ReadHeaderTimeout: 60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	hs.Protocols = new(http.Protocols)
	hs.Protocols.SetHTTP1(true)
	hs.Protocols.SetUnencryptedHTTP2(true)
	return &Daemon{cfg: cfg, log: log, http: hs,
		closers: []func() error{lc.Close, fsys.Close, procs.Close}}, nil
}

// writeMarker writes <rundir>/.<P>_SANDBOX, mode 0444 (BEHAVIOR.md 1.5).
// Failures are logged: a read-only /run must not stop envd.
func writeMarker(log *slog.Logger, dir, name, value string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Warn("cannot create run dir", "dir", dir, "err", err)
		return
	}
	p := filepath.Join(dir, "."+name)
	_ = os.Remove(p)
	if err := os.WriteFile(p, []byte(value), 0o444); err != nil {
		log.Warn("cannot write marker file", "path", p, "err", err)
	}
}

// Serve serves on ln until Shutdown. It returns nil after a clean shutdown.
func (d *Daemon) Serve(ln net.Listener) error {
	d.log.Info("envd serving", "addr", ln.Addr().String(), "flavor", d.cfg.Flavor.Name)
	err := d.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, waits for in-flight requests until ctx ends,
// then closes what is left and stops every subsystem.
func (d *Daemon) Shutdown(ctx context.Context) error {
	err := d.http.Shutdown(ctx)
	if err != nil {
		_ = d.http.Close()
	}
	for _, c := range d.closers {
		if cerr := c(); cerr != nil {
			d.log.Warn("subsystem close failed", "err", cerr)
		}
	}
	return err
}

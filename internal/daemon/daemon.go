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
	"slices"
	"time"

	"github.com/sandboxd/envd/internal/auth"
	"github.com/sandboxd/envd/internal/config"
	"github.com/sandboxd/envd/internal/execctx"
	"github.com/sandboxd/envd/internal/files"
	"github.com/sandboxd/envd/internal/filesystem"
	"github.com/sandboxd/envd/internal/lifecycle"
	"github.com/sandboxd/envd/internal/memtrim"
	"github.com/sandboxd/envd/internal/metrics"
	"github.com/sandboxd/envd/internal/process"
	"github.com/sandboxd/envd/internal/reaper"
	"github.com/sandboxd/envd/internal/safe"
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
	// procs is ended first on shutdown: its streams hold connections open.
	procs *process.Manager
	// The idle trimmer gives memory back when no request came for a while;
	// its goroutine runs from New until Shutdown cancels it.
	stopIdle context.CancelFunc
	idleDone chan struct{}
	// closers stop the subsystems after the server, in reverse build order
	// (lifecycle and ports first, the reaper last: process needs it to close).
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

	// undo stops what was built so far, in reverse order, when a later step
	// fails; on success it becomes the shutdown order.
	var undo []func() error
	fail := func(err error) (*Daemon, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			_ = undo[i]()
		}
		return nil, err
	}
	mc, err := metrics.New(metrics.Options{UsedFromAvailable: cfg.Flavor.Name == config.Wrenn.Name})
	if err != nil {
		return nil, err
	}
	rp, err := reaper.New(reaper.Options{Log: log, ReapOrphans: cfg.ReapOrphans})
	if err != nil {
		return nil, err
	}
	undo = append(undo, rp.Close)
	cg, err := newCgroups(cfg, log)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, cg.Close)
	procs, err := process.New(process.Options{Log: log, Reaper: rp, Cgroups: cgroupFDs{cg}})
	if err != nil {
		return fail(err)
	}
	undo = append(undo, procs.Close)
	userDB := users.New("", "") // one id→name cache for the server and the filesystem
	fsys, err := filesystem.New(filesystem.Options{Log: log, Names: userDB})
	if err != nil {
		return fail(err)
	}
	undo = append(undo, fsys.Close)
	fileSvc, err := files.New(files.Options{Log: log})
	if err != nil {
		return fail(err)
	}
	undo = append(undo, fileSvc.Close)
	token := &auth.Token{}
	fwd, err := newPorts(cfg, log)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, fwd.Close)
	lo := lifecycleOptions(cfg, log, defaults, token, rp)
	lo.Ports, lo.ThawWorkload = fwd, cg.ThawWorkload
	lc, err := lifecycle.New(lo)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, lc.Close)
	srv, err := server.New(server.Deps{
		Log:      log,
		Version:  b.Version,
		Flavor:   cfg.Flavor,
		Users:    userDB,
		Defaults: defaults,
		Token:    token,
		Metrics:  mc,

		Process:   procs,
		FS:        fsys,
		Files:     fileSvc,
		Lifecycle: lc,
		Cgroups:   cg,
	})
	if err != nil {
		return fail(err)
	}
	idle := memtrim.NewIdle(log, 0)
	hs := &http.Server{
		Handler: touching(idle, srv.Handler()),
		// No read or write timeouts: streams live for hours. The idle
		// timeout outlives the host proxies' (PROTOCOL.md 1.1).
		IdleTimeout:       640 * time.Second,
		ReadHeaderTimeout: 60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	hs.Protocols = new(http.Protocols)
	hs.Protocols.SetHTTP1(true)
	hs.Protocols.SetUnencryptedHTTP2(true)
	lc.Bind(hs) // connection tracking and the post-restore trigger
	if cfg.Cmd != "" {
		if err := startBootCmd(cfg.Cmd, procs, userDB, defaults); err != nil {
			return fail(err)
		}
	}
	idleCtx, stopIdle := context.WithCancel(context.Background())
	slices.Reverse(undo)
	d := &Daemon{cfg: cfg, log: log, http: hs, procs: procs, stopIdle: stopIdle,
		idleDone: make(chan struct{}), closers: undo}
	go func() {
		defer close(d.idleDone)
		defer safe.Recover(log, "idle memory trim")
		idle.Run(idleCtx)
	}()
	return d, nil
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

// Shutdown stops accepting and, at the same time, sends SIGTERM to every
// process group it started (SIGKILL to what is left when ctx ends), so that
// their streams end; it waits for in-flight requests until ctx ends, then
// closes what is left and stops every subsystem.
func (d *Daemon) Shutdown(ctx context.Context) error {
	terminated := make(chan int, 1)
	go func() {
		killed := 0
		defer func() { terminated <- killed }()
		defer safe.Recover(d.log, "terminate workload")
		killed = d.procs.Terminate(ctx)
	}()
	err := d.http.Shutdown(ctx)
	if err != nil {
		_ = d.http.Close()
	}
	if killed := <-terminated; killed > 0 {
		d.log.Warn("processes ignored SIGTERM and were killed", "count", killed)
	}
	d.stopIdle()
	<-d.idleDone
	for _, c := range d.closers {
		if cerr := c(); cerr != nil {
			d.log.Warn("subsystem close failed", "err", cerr)
		}
	}
	return err
}

// touching marks activity for the idle trimmer: one atomic store per request.
func touching(idle *memtrim.Idle, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idle.Touch()
		next.ServeHTTP(w, r)
	})
}

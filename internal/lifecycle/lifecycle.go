// Package lifecycle implements the VM lifecycle: POST /init (BEHAVIOR.md 7.2),
// MMDS polling (7.1), snapshot prepare and recovery after restore (7.5),
// and E2B's pause hooks /fsfreeze, /fsthaw and /collapse (10.9, 10.10).
//
// It takes and returns plain Go values; internal/server owns the wire.
package lifecycle

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandboxd/envd/internal/auth"
	"github.com/sandboxd/envd/internal/config"
	"github.com/sandboxd/envd/internal/execctx"
	"github.com/sandboxd/envd/internal/safe"
	"golang.org/x/sys/unix"
)

// Ports is the port-forwarding subsystem as the snapshot cycle sees it:
// stopped before a snapshot, started again after restore. Both calls must
// be idempotent and must not block for long.
type Ports interface {
	Stop()
	Start()
}

// Options configure a Lifecycle. Zero values pick the production defaults
// noted per field; tests override paths, clocks and timings.
type Options struct {
	Log      *slog.Logger
	Flavor   config.Flavor
	RunDir   string // .<P>_SANDBOX_ID / .<P>_TEMPLATE_ID go here
	IsNotFC  bool   // no MMDS at all
	MMDSAddr string // host[:port]; port 80 when absent
	Defaults *execctx.Defaults
	Token    *auth.Token

	// Ports is stopped by snapshot prepare and started on restore; nil-safe.
	Ports Ports
	// ThawWorkload thaws the workload cgroups at the end of every authorised
	// /init, stale ones included (BEHAVIOR.md 10.8). Owned by the cgroups
	// subsystem; nil means nothing to thaw.
	ThawWorkload func()
	// SingleThreadWhilePaused sets GOMAXPROCS(1) after a snapshot prepare
	// until recovery (Wrenn-Go's guard, BEHAVIOR.md 7.6 item 1).
	SingleThreadWhilePaused bool
	// RestoreAfter runs recovery by itself this long after a prepare when
	// no request arrived (a failed pause, or a host that sends nothing).
	// Default 5 s.
	RestoreAfter time.Duration

	// Now and SetClock read and set the wall clock (default: time.Now and
	// clock_settime(CLOCK_REALTIME)). Tests inject fakes.
	Now      func() time.Time
	SetClock func(time.Time) error

	HostsPath     string // default /etc/hosts
	CABundlePath  string // default /etc/ssl/certs/ca-certificates.crt
	CAPersistPath string // default /usr/local/share/ca-certificates/<flavour>-ca.crt
	// FreezeRoot is the mount point /fsfreeze and /fsthaw act on. Empty
	// disables them (daemon sets "/" except with --isnotfc).
	FreezeRoot string
	MountCmd   string // default "mount"
	UmountCmd  string // default "umount"
	// RunCommand runs a helper (mount, umount) to completion and returns
	// its combined output, bounded. The daemon passes a runner that forks
	// through the reaper (an os/exec Wait would race the reaper); without
	// one, volume mounts fail as unavailable.
	RunCommand func(ctx context.Context, name string, args ...string) (string, error)

	// MMDS timings (defaults 50 ms, 10 s, 60 s: BEHAVIOR.md 7.1).
	MMDSInterval   time.Duration
	MMDSTimeout    time.Duration
	MMDSRepollSpan time.Duration
}

// Lifecycle owns init state and the snapshot cycle.
type Lifecycle struct {
	o   Options
	log *slog.Logger

	// initLock serialises /init; a channel so waiting honours the caller's
	// context (BEHAVIOR.md 11.3 E18).
	initLock    chan struct{}
	lastApplied time.Time   // newest applied timestamp; guarded by initLock
	initialized atomic.Bool // an authorised /init completed

	mmds  *mmdsClient
	poll  *poller
	hosts *hostsWriter
	ca    *caInstaller
	vols  *volumes
	snap  *snapshot
	fs    *fsFreezer

	cancel context.CancelFunc
	wg     sync.WaitGroup // the background goroutines below
}

// New returns a Lifecycle and starts its background work: the MMDS start-up
// poll (unless IsNotFC), the hyperloop writer and the restore timer.
func New(o Options) (*Lifecycle, error) {
	if o.Log == nil || o.Defaults == nil || o.Token == nil {
		return nil, errors.New("lifecycle: missing Log, Defaults or Token")
	}
	setDefaults(&o)
	ctx, cancel := context.WithCancel(context.Background())
	l := &Lifecycle{o: o, log: o.Log, initLock: make(chan struct{}, 1), cancel: cancel}
	if !o.IsNotFC {
		l.mmds = newMMDSClient(o.MMDSAddr, o.MMDSTimeout)
	}
	l.poll = newPoller(l)
	l.hosts = &hostsWriter{path: o.HostsPath, host: o.Flavor.EventsHost, log: o.Log, want: make(chan string, 1)}
	l.ca = newCAInstaller(o.CABundlePath, o.CAPersistPath, o.Log)
	l.vols = newVolumes(o.MountCmd, o.UmountCmd, o.RunCommand, o.Log)
	l.snap = newSnapshot(l)
	l.fs = newFSFreezer(o.FreezeRoot)

	l.goRun("mmds poller", func() { l.poll.run(ctx) })
	l.goRun("hyperloop writer", func() { l.hosts.run(ctx, l.setEventsAddress) })
	l.goRun("snapshot restore timer", func() { l.snap.runTimer(ctx) })
	l.goRun("ca bundle cleanup", func() { l.ca.run(ctx) })
	if l.mmds != nil {
		l.poll.kick(0) // start-up poll: until success
	}
	return l, nil
}

func setDefaults(o *Options) {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	defDur := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&o.MMDSAddr, "169.254.169.254")
	def(&o.HostsPath, "/etc/hosts")
	def(&o.CABundlePath, "/etc/ssl/certs/ca-certificates.crt")
	def(&o.CAPersistPath, "/usr/local/share/ca-certificates/"+o.Flavor.Name+"-ca.crt")
	def(&o.MountCmd, "mount")
	def(&o.UmountCmd, "umount")
	defDur(&o.RestoreAfter, 5*time.Second)
	defDur(&o.MMDSInterval, 50*time.Millisecond)
	defDur(&o.MMDSTimeout, 10*time.Second)
	defDur(&o.MMDSRepollSpan, 60*time.Second)
	if o.RunCommand == nil {
		o.RunCommand = noRunner
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SetClock == nil {
		o.SetClock = setRealtime
	}
	if o.Flavor.EnvPrefix == "" {
		o.Flavor = config.Wrenn
	}
}

// setRealtime sets CLOCK_REALTIME (needs CAP_SYS_TIME).
func setRealtime(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.ClockSettime(unix.CLOCK_REALTIME, &ts)
}

// goRun starts a goroutine that Close waits for.
func (l *Lifecycle) goRun(what string, fn func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer safe.Recover(l.log, what)
		fn()
	}()
}

// Initialized reports whether an authorised /init has completed.
func (l *Lifecycle) Initialized() bool { return l.initialized.Load() }

// Close stops background polling and waits for every goroutine it started.
// A GOMAXPROCS(1) guard still in force is lifted: it is process-wide.
func (l *Lifecycle) Close() error {
	l.cancel()
	l.wg.Wait()
	l.snap.mu.Lock()
	procs := l.snap.savedProcs
	l.snap.savedProcs, l.snap.prepared = 0, false
	l.snap.mu.Unlock()
	if procs > 0 {
		runtime.GOMAXPROCS(procs)
	}
	return nil
}

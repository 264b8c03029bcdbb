package lifecycle

import (
	"context"
	"net/netip"
	"time"

	"github.com/sandboxd/envd/internal/auth"
	"github.com/sandboxd/envd/internal/errs"
)

// VolumeMount is one NFS volume of /init volumeMounts.
type VolumeMount struct {
	Target string // nfs_target, host:/export
	Path   string // mount point in the guest
}

// InitRequest is a decoded /init body (PROTOCOL.md 4.4). Nil pointers and
// maps mean "field absent", which differs from empty for the token and env.
type InitRequest struct {
	AccessToken    *string
	EnvVars        map[string]string
	DefaultUser    string
	DefaultWorkdir string
	Timestamp      *time.Time
	HyperloopIP    string // hyperloopIP or hyperloopIp
	VolumeMounts   []VolumeMount
	LifecycleID    string
	CABundle       string
}

// InitResult tells the caller what happened.
type InitResult struct {
	Stale bool // older than the last applied timestamp: nothing applied
}

// Clock thresholds: set the guest clock when it is more than clockBehind
// behind or clockAhead ahead of the host's timestamp (BEHAVIOR.md 7.4).
const (
	clockBehind = 50 * time.Millisecond
	clockAhead  = 5 * time.Second
)

// Init runs POST /init (BEHAVIOR.md 7.2): lock (giving up with the caller),
// token decision, then, unless stale, clock, env, token, hyperloop, user,
// workdir, CA bundle and volumes in that order; then the workload thaw (even
// when stale) and a bounded MMDS re-poll.
func (l *Lifecycle) Init(ctx context.Context, req InitRequest) (InitResult, error) {
	select {
	case l.initLock <- struct{}{}:
	case <-ctx.Done():
		return InitResult{}, errs.New(errs.Unavailable, "init already in progress")
	}
	defer func() { <-l.initLock }()

	if err := l.authorize(ctx, req.AccessToken); err != nil {
		return InitResult{}, err
	}
	if l.o.ThawWorkload != nil {
		defer l.o.ThawWorkload()
	}
	if req.Timestamp != nil && req.Timestamp.Before(l.lastApplied) {
		l.log.Info("stale init ignored")
		l.finishInit()
		return InitResult{Stale: true}, nil
	}
	if err := l.apply(ctx, req); err != nil {
		return InitResult{}, err
	}
	l.finishInit()
	return InitResult{}, nil
}

func (l *Lifecycle) finishInit() {
	l.initialized.Store(true)
	l.poll.kick(l.o.MMDSRepollSpan)
}

func (l *Lifecycle) apply(ctx context.Context, req InitRequest) error {
	if ts := req.Timestamp; ts != nil {
		l.lastApplied = *ts
		l.syncClock(*ts)
	}
	if req.EnvVars != nil {
		l.o.Defaults.ReplaceUserEnv(req.EnvVars)
	}
	if req.AccessToken != nil {
		l.o.Token.Set(*req.AccessToken)
	} else {
		l.o.Token.Clear()
	}
	if req.HyperloopIP != "" {
		if _, err := netip.ParseAddr(req.HyperloopIP); err != nil {
			l.log.Warn("ignoring invalid hyperloop address")
		} else {
			l.hosts.set(req.HyperloopIP)
		}
	}
	l.o.Defaults.SetUser(req.DefaultUser)
	l.o.Defaults.SetWorkdir(req.DefaultWorkdir)
	if req.CABundle != "" {
		if err := l.ca.install(ctx, req.CABundle); err != nil {
			return err
		}
	}
	if len(req.VolumeMounts) > 0 {
		if err := l.vols.mount(ctx, req.LifecycleID, req.VolumeMounts); err != nil {
			return err
		}
	}
	return nil
}

// syncClock steps the wall clock to ts when it is off by more than the
// thresholds. Failure is only logged (E2B).
func (l *Lifecycle) syncClock(ts time.Time) {
	now := l.o.Now()
	if !now.Before(ts.Add(-clockBehind)) && !now.After(ts.Add(clockAhead)) {
		return
	}
	if err := l.o.SetClock(ts); err != nil {
		l.log.Warn("cannot set the clock", "err", err)
		return
	}
	l.log.Info("clock set from init timestamp", "skew", now.Sub(ts).String())
}

// authorize applies the /init token rules (PROTOCOL.md 5.3). MMDS is asked
// for the token hash only when the fast path (request token equals the
// stored one) fails.
func (l *Lifecycle) authorize(ctx context.Context, r *string) error {
	if r != nil && l.o.Token.Equal(*r) {
		return nil
	}
	var hash string
	known := false
	if l.mmds != nil {
		md, err := l.mmds.fetch(ctx)
		if err != nil {
			l.log.Warn("mmds token hash lookup failed", "err", err)
		}
		hash, known = md.AccessTokenHash, err == nil
	}
	return auth.DecideInit(l.o.Token, r, hash, known)
}

// setEventsAddress publishes <P>_EVENTS_ADDRESS once /etc/hosts is written.
func (l *Lifecycle) setEventsAddress(ip string) {
	host := ip
	if a, err := netip.ParseAddr(ip); err == nil && a.Is6() && !a.Is4In6() {
		host = "[" + ip + "]"
	}
	l.o.Defaults.SetInternal(l.o.Flavor.Env("EVENTS_ADDRESS"), "http://"+host)
}

package cgroups

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sandboxd/envd/internal/errs"
)

// Freeze modes (PROTOCOL.md 4.7).
const (
	ModeLegacy    = "legacy"    // user and ptys only
	ModeHierarchy = "hierarchy" // every cgroup off envd's chain and not allow-listed
)

const (
	// DefaultMaxCgroups bounds a hierarchy walk when the request does not.
	DefaultMaxCgroups = 512
	// maxThaw bounds how many cgroups one manager remembers to thaw (10.8);
	// a walk bound above it is clamped to it.
	maxThaw = 8192
	// MaxWait caps one freeze's confirmation wait: the wait holds the lock
	// every freeze and thaw shares.
	MaxWait = 30 * time.Second
	// pollEvery is the cgroup.events poll period while confirming (10.8).
	pollEvery = 2 * time.Millisecond
)

// allowlist names, relative to the root, the cgroups a resume needs
// running (10.8). "socats" is kept for hosts that still run socat there.
var allowlist = []string{
	"init.scope",
	"system.slice/systemd-journald.service",
	"system.slice/rpcbind.service",
	"system.slice/rpcbind.socket",
	"system.slice/rpc-statd.service",
	"socats",
}

// FreezeRequest is one POST /freeze.
type FreezeRequest struct {
	Mode       string        // "" = legacy
	MaxCgroups int           // hierarchy walk bound; ≤0 = DefaultMaxCgroups
	MaxWait    time.Duration // >0: poll cgroup.events until frozen or this passes (capped at MaxWait)
}

// FreezeResult counts what one freeze did. Frozen+NotFrozen+Unobservable
// equals Requested when the request waited, and all three are 0 otherwise.
type FreezeResult struct {
	Mode         string
	Visited      int  // cgroups looked at
	Allowlisted  int  // skipped by the allowlist
	Truncated    bool // the walk stopped at MaxCgroups
	PreFrozen    int  // already frozen before the sweep (the guest's own: left frozen on thaw)
	Requested    int  // cgroup.freeze=1 written
	Frozen       int  // confirmed "frozen 1" within the wait
	NotFrozen    int  // still not frozen when the wait ended
	Failed       int  // could not be read or written
	Unobservable int  // cgroup.events unreadable while waiting
	Sweep, Wait  time.Duration
}

// ThawResult counts one thaw.
type ThawResult struct{ Thawed, Failed int }

// Freeze writes cgroup.freeze=1 to the workload (BEHAVIOR.md 10.8) and, if
// asked, waits for the kernel to confirm. It fails only when the shared
// lock cannot be taken before ctx ends (errs.Unavailable) or the mode is
// unknown (errs.Invalid); per-cgroup failures are counted. Every freeze
// arms the watchdog. envd's own group and its ancestors are never frozen.
func (m *Manager) Freeze(ctx context.Context, req FreezeRequest) (FreezeResult, error) {
	mode := req.Mode
	if mode == "" {
		mode = ModeLegacy
	}
	if mode != ModeLegacy && mode != ModeHierarchy {
		return FreezeResult{}, errs.New(errs.Invalid, "unknown freeze mode %q (want legacy or hierarchy)", mode)
	}
	select {
	case m.lock <- struct{}{}:
	case <-ctx.Done():
		return FreezeResult{}, errs.New(errs.Unavailable, "freeze lock busy: %v", ctx.Err())
	}
	defer func() { <-m.lock }()
	res := FreezeResult{Mode: mode}
	if m.root == "" {
		return res, nil
	}
	if mode == ModeHierarchy && !m.known {
		m.log.Warn("envd's own cgroup is unknown: hierarchy freeze done as legacy")
		mode, res.Mode = ModeLegacy, ModeLegacy
	}
	m.wd.arm()
	start := time.Now()
	var targets []string
	if mode == ModeLegacy {
		targets = m.planLegacy(&res)
	} else {
		limit := req.MaxCgroups
		if limit <= 0 {
			limit = DefaultMaxCgroups
		}
		targets = m.planHierarchy(&res, min(limit, maxThaw))
	}
	// Close the spawn gate first: Lock waits for clones in flight, and no
	// new one starts into a group about to freeze (E16).
	m.spawnMu.Lock()
	for k, dir := range m.dirs {
		if contains(targets, dir) {
			m.frozen[k] = true
		}
	}
	m.spawnMu.Unlock()
	written := targets[:0]
	for _, dir := range targets {
		if err := writeFreeze(dir, "1"); err != nil {
			res.Failed++
			m.log.Info("cannot freeze cgroup", "cgroup", dir, "err", err)
			continue
		}
		res.Requested++
		written = append(written, dir)
		if len(m.ours) < maxThaw {
			m.ours[dir] = true
		}
	}
	res.Sweep = time.Since(start)
	if req.MaxWait > 0 {
		m.await(ctx, written, min(req.MaxWait, MaxWait), &res)
	}
	return res, nil
}

// planLegacy returns user and ptys, unless envd itself lives in one.
func (m *Manager) planLegacy(res *FreezeResult) []string {
	var out []string
	for _, dir := range m.dirs {
		if m.chain[dir] {
			continue
		}
		res.Visited++
		if requestedFrozen(dir) {
			res.PreFrozen++
		}
		out = append(out, dir)
	}
	return out
}

// planHierarchy walks the tree breadth-first from the root and returns
// the top of every subtree to freeze: it descends into envd's chain and
// into the parents of allow-listed cgroups (freezing a parent would freeze
// them too), skips allow-listed subtrees, and leaves cgroups the guest
// froze itself alone so a thaw does not wake them.
func (m *Manager) planHierarchy(res *FreezeResult, limit int) []string {
	descend := map[string]bool{}
	for p := range m.chain {
		if under(m.root, p) {
			descend[p] = true
		}
	}
	for _, a := range allowlist {
		for p := filepath.Dir(filepath.Join(m.root, a)); under(m.root, p); p = filepath.Dir(p) {
			descend[p] = true
		}
	}
	var out []string
	queue := []string{m.root}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		ents, err := os.ReadDir(cur)
		if err != nil {
			continue // removed mid-walk: nothing left to freeze
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			if res.Visited >= limit {
				res.Truncated = true
				return out
			}
			res.Visited++
			p := filepath.Join(cur, e.Name())
			switch {
			case allowlisted(m.root, p):
				res.Allowlisted++
			case descend[p]:
				queue = append(queue, p)
			case requestedFrozen(p):
				res.PreFrozen++
			default:
				out = append(out, p)
			}
		}
	}
	return out
}

// under reports whether p is strictly below root.
func under(root, p string) bool { return strings.HasPrefix(p, root+"/") }

func allowlisted(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return false
	}
	for _, a := range allowlist {
		if rel == a || strings.HasPrefix(rel, a+"/") {
			return true
		}
	}
	return false
}

func requestedFrozen(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.freeze"))
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

func writeFreeze(dir, v string) error {
	f, err := os.OpenFile(filepath.Join(dir, "cgroup.freeze"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// await polls cgroup.events of every written cgroup until all report
// "frozen 1", the budget passes or the caller goes away.
func (m *Manager) await(ctx context.Context, dirs []string, budget time.Duration, res *FreezeResult) {
	start := time.Now()
	deadline := time.NewTimer(budget)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	pending := append([]string(nil), dirs...)
	for {
		left := pending[:0]
		for _, dir := range pending {
			frozen, err := eventsFrozen(dir)
			switch {
			case err != nil:
				res.Unobservable++
			case frozen:
				res.Frozen++
			default:
				left = append(left, dir)
			}
		}
		pending = left
		if len(pending) == 0 {
			break
		}
		select {
		case <-tick.C:
			continue
		case <-deadline.C:
		case <-ctx.Done():
		}
		break
	}
	res.NotFrozen = len(pending)
	res.Wait = time.Since(start)
}

// Thaw undoes every freeze of ours: user and ptys always (a stale freeze
// from an earlier envd included) and every cgroup a hierarchy sweep froze.
// Cgroups the guest froze itself stay frozen. It waits for the lock
// without a deadline: a dropped thaw would strand the workload frozen.
// It fails (with the counts) when some cgroup could not be thawed.
func (m *Manager) Thaw() (ThawResult, error) {
	m.lock <- struct{}{}
	defer func() { <-m.lock }()
	var res ThawResult
	if m.root == "" {
		return res, nil
	}
	var firstErr error
	targets := make([]string, 0, len(m.ours)+len(m.dirs))
	for dir := range m.ours {
		targets = append(targets, dir)
	}
	for _, dir := range m.dirs {
		if !m.chain[dir] && !m.ours[dir] {
			targets = append(targets, dir)
		}
	}
	for _, dir := range targets {
		err := writeFreeze(dir, "0")
		switch {
		case err == nil:
			res.Thawed++
		case errors.Is(err, os.ErrNotExist): // removed while frozen: nothing to thaw
		default:
			res.Failed++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	clear(m.ours)
	m.spawnMu.Lock()
	m.frozen = [2]bool{}
	m.spawnMu.Unlock()
	m.wd.disarm()
	if firstErr != nil {
		return res, fmt.Errorf("thaw: %d cgroups failed, first: %w", res.Failed, firstErr)
	}
	return res, nil
}

// ThawWorkload is the thaw at the end of every authorised /init.
func (m *Manager) ThawWorkload() {
	res, err := m.Thaw()
	if err != nil {
		m.log.Warn("workload thaw failed", "thawed", res.Thawed, "failed", res.Failed, "err", err)
	}
}

func (m *Manager) watchdogThaw() {
	m.log.Warn("workload frozen too long without a thaw: watchdog thaws it")
	m.ThawWorkload()
}

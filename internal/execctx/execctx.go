// Package execctx holds the sandbox-wide defaults every request runs with:
// the default user, the default workdir and the global environment
// (internal variables set by envd plus the user set from /init). It is a
// leaf: lifecycle writes it, server reads it and passes plain values on.
package execctx

import (
	"maps"
	"sync"
)

// Defaults is safe for concurrent use.
type Defaults struct {
	mu       sync.RWMutex // guards the fields below
	user     string
	workdir  string
	internal map[string]string // set by envd; /init cannot override them
	userEnv  map[string]string // replaced as a whole by /init envVars
}

// New returns defaults with user root, no workdir and the given internal vars.
func New(internal map[string]string) *Defaults {
	return &Defaults{user: "root", internal: maps.Clone(internal), userEnv: map[string]string{}}
}

// User returns the default user name.
func (d *Defaults) User() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.user
}

// Workdir returns the default workdir ("" when unset).
func (d *Defaults) Workdir() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.workdir
}

// SetUser sets the default user; empty is ignored (E2B: non-empty only).
func (d *Defaults) SetUser(name string) {
	if name == "" {
		return
	}
	d.mu.Lock()
	d.user = name
	d.mu.Unlock()
}

// SetWorkdir sets the default workdir; empty is ignored.
func (d *Defaults) SetWorkdir(dir string) {
	if dir == "" {
		return
	}
	d.mu.Lock()
	d.workdir = dir
	d.mu.Unlock()
}

// SetInternal sets one internal variable (marker, MMDS ids, events address).
func (d *Defaults) SetInternal(key, value string) {
	d.mu.Lock()
	d.internal[key] = value
	d.mu.Unlock()
}

// ReplaceUserEnv replaces the whole user set (E2B semantics, BEHAVIOR.md 2.6).
// Keys that name internal variables are dropped.
func (d *Defaults) ReplaceUserEnv(env map[string]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.userEnv = make(map[string]string, len(env))
	for k, v := range env {
		if _, internal := d.internal[k]; !internal {
			d.userEnv[k] = v
		}
	}
}

// Env returns internal plus user variables as one new map.
func (d *Defaults) Env() map[string]string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make(map[string]string, len(d.internal)+len(d.userEnv))
	maps.Copy(out, d.userEnv)
	maps.Copy(out, d.internal)
	return out
}

package config

import "fmt"

// Flavor holds the names that differ between the two hosts (BEHAVIOR.md 0.1).
// One binary serves both; the flavour only picks names and the /health answer.
type Flavor struct {
	Name       string // "wrenn" or "e2b"
	RunDir     string // /run/wrenn or /run/e2b
	EnvPrefix  string // WRENN or E2B: <P>_SANDBOX, <P>_SANDBOX_ID, ...
	EventsHost string // events.wrenn.local or events.e2b.local
	// HealthNoContent makes GET /health answer 204 with no body (E2B's
	// orchestrator accepts nothing else); otherwise 200 {"version": ...}.
	HealthNoContent bool
}

// Flavors are the two supported hosts.
var (
	Wrenn = Flavor{Name: "wrenn", RunDir: "/run/wrenn", EnvPrefix: "WRENN", EventsHost: "events.wrenn.local"}
	E2B   = Flavor{Name: "e2b", RunDir: "/run/e2b", EnvPrefix: "E2B", EventsHost: "events.e2b.local", HealthNoContent: true}
)

// FlavorByName returns the flavour with that name.
func FlavorByName(name string) (Flavor, error) {
	switch name {
	case "wrenn":
		return Wrenn, nil
	case "e2b":
		return E2B, nil
	}
	return Flavor{}, fmt.Errorf("unknown flavor %q (want wrenn or e2b)", name)
}

// Env returns the flavoured name of an internal variable, e.g. Env("SANDBOX_ID").
func (f Flavor) Env(suffix string) string { return f.EnvPrefix + "_" + suffix }

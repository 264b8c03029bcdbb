package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/envd/internal/auth"
	"github.com/sandboxd/envd/internal/config"
	"github.com/sandboxd/envd/internal/errs"
)

func awaitPoll(t *testing.T, l *Lifecycle) {
	t.Helper()
	select {
	case <-l.poll.done:
	case <-time.After(10 * time.Second):
		t.Fatal("mmds poll did not succeed")
	}
}

func fcLC(t *testing.T, sim *mmdsSim, mutate func(*Options)) (*Lifecycle, *logBuf) {
	return newLC(t, func(o *Options) {
		o.IsNotFC = false
		o.MMDSAddr = sim.addr
		o.MMDSInterval = 5 * time.Millisecond
		if mutate != nil {
			mutate(o)
		}
	})
}

func checkIDFile(t *testing.T, dir, name, want string) {
	t.Helper()
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("%s = %q, want %q (no newline)", name, b, want)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o666 {
		t.Errorf("%s mode %v, want 0666", name, st.Mode().Perm())
	}
}

// The start-up poll runs the v2 session flow (token PUT with a TTL, GET with
// the token, JSON) and stores the ids as internal variables and 0666 files.
func TestMMDSPollStoresIDsAsEnvAndFiles(t *testing.T) {
	sim := newMMDSSim(t, map[string]any{"instanceID": "sbx-1", "envID": "tpl-1", "address": "", "accessTokenHash": ""})
	l, _ := fcLC(t, sim, nil)
	awaitPoll(t, l)
	env := l.o.Defaults.Env()
	if env["WRENN_SANDBOX_ID"] != "sbx-1" || env["WRENN_TEMPLATE_ID"] != "tpl-1" {
		t.Fatalf("env after poll: %v", env)
	}
	checkIDFile(t, l.o.RunDir, ".WRENN_SANDBOX_ID", "sbx-1")
	checkIDFile(t, l.o.RunDir, ".WRENN_TEMPLATE_ID", "tpl-1")
	puts, gets, noTTL, noToken := sim.counts()
	if puts != 1 || gets != 1 || noTTL != 0 || noToken != 0 {
		t.Fatalf("mmds saw puts=%d gets=%d noTTL=%d noToken=%d; want one clean exchange", puts, gets, noTTL, noToken)
	}
	// Internal ids cannot be overridden by /init envVars (PROTOCOL.md 7.1).
	if _, err := l.Init(context.Background(), InitRequest{EnvVars: map[string]string{"WRENN_SANDBOX_ID": "x"}}); err != nil {
		t.Fatal(err)
	}
	if got := l.o.Defaults.Env()["WRENN_SANDBOX_ID"]; got != "sbx-1" {
		t.Fatalf("internal id overridden: %q", got)
	}
}

// BEHAVIOR.md 11.3 W6: an MMDS answer without address/accessTokenHash still
// yields the ids. E2B flavour names the variables and files E2B_*.
func TestMMDSMissingKeysStillStoreIDs(t *testing.T) {
	sim := newMMDSSim(t, map[string]any{"instanceID": "i-2", "envID": "e-2"})
	l, _ := fcLC(t, sim, func(o *Options) { o.Flavor = config.E2B })
	awaitPoll(t, l)
	env := l.o.Defaults.Env()
	if env["E2B_SANDBOX_ID"] != "i-2" || env["E2B_TEMPLATE_ID"] != "e-2" {
		t.Fatalf("env: %v", env)
	}
	checkIDFile(t, l.o.RunDir, ".E2B_SANDBOX_ID", "i-2")
}

// BEHAVIOR.md 11.3 E23: failures are retried every interval and logged as
// a summary only, never one line per failure.
func TestMMDSPollRetriesQuietly(t *testing.T) {
	sim := newMMDSSim(t, map[string]any{"instanceID": "i-3"})
	sim.failNext = 20
	l, logs := fcLC(t, sim, nil)
	awaitPoll(t, l)
	if got := l.o.Defaults.Env()["WRENN_SANDBOX_ID"]; got != "i-3" {
		t.Fatalf("id %q", got)
	}
	if n := strings.Count(logs.String(), "mmds"); n != 0 {
		t.Fatalf("%d mmds log lines for 20 transient failures:\n%s", n, logs)
	}
}

// BEHAVIOR.md 11.3 E23: a host that never answers (a DROP rule) cannot hang
// the poll: each request has its own timeout, and the poll succeeds as
// soon as MMDS answers again.
func TestMMDSRequestTimeoutUnsticksPoll(t *testing.T) {
	sim := newMMDSSim(t, map[string]any{"instanceID": "i-4"})
	hang := make(chan struct{})
	sim.hang = hang
	l, _ := fcLC(t, sim, func(o *Options) { o.MMDSTimeout = 100 * time.Millisecond })
	waitFor(t, "two timed-out attempts", func() bool {
		sim.mu.Lock()
		defer sim.mu.Unlock()
		return sim.abandoned >= 2
	})
	sim.mu.Lock()
	close(hang)
	sim.hang = nil
	sim.mu.Unlock()
	awaitPoll(t, l)
	if got := l.o.Defaults.Env()["WRENN_SANDBOX_ID"]; got != "i-4" {
		t.Fatalf("id %q", got)
	}
}

// BEHAVIOR.md 11.3 W5: every /init re-polls MMDS, so a snapshot resumed as
// a new sandbox gets its new ids.
func TestInitRepollsMMDSForNewIDs(t *testing.T) {
	sim := newMMDSSim(t, map[string]any{"instanceID": "old", "envID": "tpl"})
	l, _ := fcLC(t, sim, nil)
	awaitPoll(t, l)
	sim.set(map[string]any{"instanceID": "new", "envID": "tpl"})
	if _, err := l.Init(context.Background(), InitRequest{}); err != nil {
		t.Fatal(err)
	}
	awaitPoll(t, l)
	if got := l.o.Defaults.Env()["WRENN_SANDBOX_ID"]; got != "new" {
		t.Fatalf("id after re-poll %q", got)
	}
	checkIDFile(t, l.o.RunDir, ".WRENN_SANDBOX_ID", "new")
}

// The re-poll after /init is bounded; when it gives up it logs one line.
func TestMMDSRepollGivesUpWithOneLogLine(t *testing.T) {
	sim := newMMDSSim(t, map[string]any{"instanceID": "i"})
	l, logs := fcLC(t, sim, func(o *Options) { o.MMDSRepollSpan = 150 * time.Millisecond })
	awaitPoll(t, l)
	sim.mu.Lock()
	sim.failNext = 1 << 30
	sim.mu.Unlock()
	if _, err := l.Init(context.Background(), InitRequest{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the give-up line", func() bool { return strings.Contains(logs.String(), "mmds poll gave up") })
	_ = l.Close()
	if n := strings.Count(logs.String(), "mmds poll gave up"); n != 1 {
		t.Fatalf("%d give-up lines:\n%s", n, logs)
	}
}

// With --isnotfc nothing ever talks to MMDS, /init included.
func TestNoMMDSWithIsNotFC(t *testing.T) {
	sim := newMMDSSim(t, map[string]any{"instanceID": "i"})
	l, _ := newLC(t, func(o *Options) { o.MMDSAddr = sim.addr })
	if _, err := l.Init(context.Background(), InitRequest{AccessToken: ptr("tok")}); err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	if puts, gets, _, _ := sim.counts(); puts+gets != 0 {
		t.Fatalf("mmds contacted with --isnotfc: puts=%d gets=%d", puts, gets)
	}
}

// PROTOCOL.md 5.3: the MMDS accessTokenHash authorises token rotation and
// resets; without a match /init is refused with E2B's exact texts.
func TestInitTokenRulesWithMMDSHash(t *testing.T) {
	sim := newMMDSSim(t, map[string]any{"instanceID": "i", "accessTokenHash": auth.HashToken("new-token")})
	l, _ := fcLC(t, sim, nil)
	awaitPoll(t, l)
	ctx := context.Background()
	l.o.Token.Set("old-token")

	_, err := l.Init(ctx, InitRequest{AccessToken: ptr("wrong")})
	if !isUnauth(err, "access token validation failed") {
		t.Fatalf("wrong token: %v", err)
	}
	_, err = l.Init(ctx, InitRequest{})
	if !isUnauth(err, "access token reset not authorized") {
		t.Fatalf("reset without hash of empty: %v", err)
	}
	if !l.o.Token.Equal("old-token") {
		t.Fatal("refused /init changed the token")
	}
	if _, err := l.Init(ctx, InitRequest{AccessToken: ptr("new-token")}); err != nil {
		t.Fatalf("rotation via hash: %v", err)
	}
	if !l.o.Token.Equal("new-token") {
		t.Fatal("token not rotated")
	}
	sim.set(map[string]any{"accessTokenHash": auth.HashToken("")})
	if _, err := l.Init(ctx, InitRequest{}); err != nil {
		t.Fatalf("authorised reset: %v", err)
	}
	if l.o.Token.IsSet() {
		t.Fatal("token not cleared by an authorised reset")
	}
	// A hash for a real token protects even a first boot.
	sim.set(map[string]any{"accessTokenHash": auth.HashToken("t")})
	if _, err := l.Init(ctx, InitRequest{AccessToken: ptr("other")}); !isUnauth(err, "access token validation failed") {
		t.Fatalf("first boot with a hash: %v", err)
	}
}

func isUnauth(err error, msg string) bool {
	return err != nil && errs.Kind(err) == errs.Unauthenticated && err.Error() == msg
}

// BEHAVIOR.md 11.3 E25: a kept-alive MMDS connection can be half-dead after
// pause/resume, so every MMDS request opens a fresh connection.
func TestMMDSNeverReusesConnections(t *testing.T) {
	sim := newMMDSSim(t, map[string]any{"instanceID": "i-25", "envID": "e-25"})
	sim.mu.Lock()
	sim.failNext = 3 // three failed rounds first: more requests on the same client
	sim.mu.Unlock()
	l, _ := fcLC(t, sim, nil)
	awaitPoll(t, l)
	sim.mu.Lock()
	defer sim.mu.Unlock()
	if requests := sim.reqs; sim.conns != requests || requests < 5 {
		t.Fatalf("%d requests over %d connections: MMDS connections must not be reused", requests, sim.conns)
	}
}

// The MMDS document is read as encoding/json would read it into Metadata:
// the four keys in any case, everything else ignored, a non-string value
// for one of them refused.
func TestMMDSDecodeMetadataAsEncodingJSONDoes(t *testing.T) {
	md, err := decodeMetadata([]byte(`{"instanceID":"i-1","ENVID":"e-1","address":null,"extra":{"a":[1,true]},"accessTokenHash":"h"}`))
	if err != nil || md != (Metadata{InstanceID: "i-1", EnvID: "e-1", AccessTokenHash: "h"}) {
		t.Fatalf("decoded %+v %v", md, err)
	}
	for _, bad := range []string{`{"instanceID":1}`, `[]`, `{"envID":"x"`, `{} {}`} {
		if _, err := decodeMetadata([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

package lifecycle

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/envd/internal/errs"
)

// BEHAVIOR.md 11.3 E20 / 2.6: envVars replace the user set; internal
// variables survive and cannot be overridden; absent envVars change nothing.
func TestInitEnvVarsReplaceNotMerge(t *testing.T) {
	l, _ := newLC(t, nil)
	ctx := context.Background()
	if _, err := l.Init(ctx, InitRequest{EnvVars: map[string]string{"A": "1", "B": "2", "WRENN_SANDBOX": "no"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Init(ctx, InitRequest{EnvVars: map[string]string{"A": "3"}}); err != nil {
		t.Fatal(err)
	}
	env := l.o.Defaults.Env()
	if env["A"] != "3" || env["B"] != "" || env["WRENN_SANDBOX"] != "true" {
		t.Fatalf("env after {A,B} then {A}: %v", env)
	}
	if _, err := l.Init(ctx, InitRequest{DefaultUser: "nobody", DefaultWorkdir: "/tmp"}); err != nil {
		t.Fatal(err)
	}
	if env := l.o.Defaults.Env(); env["A"] != "3" {
		t.Fatalf("init without envVars changed env: %v", env)
	}
	if l.o.Defaults.User() != "nobody" || l.o.Defaults.Workdir() != "/tmp" {
		t.Fatalf("user %q workdir %q", l.o.Defaults.User(), l.o.Defaults.Workdir())
	}
	// Empty user/workdir leave the defaults alone (E2B: non-empty only).
	if _, err := l.Init(ctx, InitRequest{}); err != nil {
		t.Fatal(err)
	}
	if l.o.Defaults.User() != "nobody" || l.o.Defaults.Workdir() != "/tmp" {
		t.Fatal("empty defaultUser/defaultWorkdir reset the defaults")
	}
}

// BEHAVIOR.md 7.3: an /init older than the last applied one answers success
// but changes nothing; an equal timestamp is applied again. The workload
// thaw runs either way.
func TestInitStaleTimestampChangesNothing(t *testing.T) {
	thaws := 0
	l, _ := newLC(t, func(o *Options) {
		o.SetClock = func(time.Time) error { return nil }
		o.ThawWorkload = func() { thaws++ }
	})
	ctx := context.Background()
	t2 := time.Now()
	t1 := t2.Add(-time.Second)
	if _, err := l.Init(ctx, InitRequest{Timestamp: &t2, DefaultUser: "new", EnvVars: map[string]string{"V": "2"}, AccessToken: ptr("tok2")}); err != nil {
		t.Fatal(err)
	}
	res, err := l.Init(ctx, InitRequest{Timestamp: &t1, DefaultUser: "old", EnvVars: map[string]string{"V": "1"}, AccessToken: ptr("tok2")})
	if err != nil || !res.Stale {
		t.Fatalf("stale init: %+v %v", res, err)
	}
	if l.o.Defaults.User() != "new" || l.o.Defaults.Env()["V"] != "2" {
		t.Fatalf("stale init applied: user %q V %q", l.o.Defaults.User(), l.o.Defaults.Env()["V"])
	}
	res, err = l.Init(ctx, InitRequest{Timestamp: &t2, DefaultUser: "again", AccessToken: ptr("tok2")})
	if err != nil || res.Stale || l.o.Defaults.User() != "again" {
		t.Fatalf("equal timestamp not applied: %+v %v user %q", res, err, l.o.Defaults.User())
	}
	if thaws != 3 {
		t.Fatalf("thaw ran %d times for 3 authorised inits", thaws)
	}
	// A refused /init does not thaw (BEHAVIOR.md 7.2 step 4).
	if _, err := l.Init(ctx, InitRequest{AccessToken: ptr("bad")}); err == nil {
		t.Fatal("wrong token accepted")
	}
	if thaws != 3 {
		t.Fatal("refused init thawed the workload")
	}
}

// BEHAVIOR.md 7.4 / 11.3 E27: the clock is set when it is more than 50 ms
// behind or more than 5 s ahead of the host's timestamp, not otherwise. A
// failing clock_settime is logged and /init still succeeds.
func TestInitClockThresholds(t *testing.T) {
	host := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		guest time.Duration // guest clock minus host timestamp
		set   bool
	}{
		{-time.Second, true}, {-60 * time.Millisecond, true}, {-40 * time.Millisecond, false},
		{0, false}, {4 * time.Second, false}, {6 * time.Second, true},
	}
	for _, c := range cases {
		t.Run(c.guest.String(), func(t *testing.T) {
			var got []time.Time
			l, _ := newLC(t, func(o *Options) {
				o.Now = func() time.Time { return host.Add(c.guest) }
				o.SetClock = func(ts time.Time) error { got = append(got, ts); return nil }
			})
			if _, err := l.Init(context.Background(), InitRequest{Timestamp: &host}); err != nil {
				t.Fatal(err)
			}
			if c.set != (len(got) == 1) || (c.set && !got[0].Equal(host)) {
				t.Fatalf("guest %v: clock set to %v, want set=%v", c.guest, got, c.set)
			}
		})
	}
	l, logs := newLC(t, func(o *Options) {
		o.Now = func() time.Time { return host.Add(-time.Hour) }
		o.SetClock = func(time.Time) error { return errors.New("operation not permitted") }
	})
	if _, err := l.Init(context.Background(), InitRequest{Timestamp: &host, DefaultUser: "u"}); err != nil {
		t.Fatalf("failing clock_settime failed /init: %v", err)
	}
	if l.o.Defaults.User() != "u" || !strings.Contains(logs.String(), "cannot set the clock") {
		t.Fatalf("clock failure not logged or init not applied:\n%s", logs)
	}
}

// BEHAVIOR.md 11.3 E18: while one /init is slow, retries whose callers give
// up get Unavailable (503) instead of piling up; goroutines stay bounded.
func TestInitLockGivesUpWithCaller(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	l, _ := newLC(t, func(o *Options) {
		o.ThawWorkload = func() {
			select {
			case entered <- struct{}{}:
				<-release
			default:
			}
		}
	})
	done := make(chan error, 1)
	go func() { _, err := l.Init(context.Background(), InitRequest{}); done <- err }()
	<-entered
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	var unavailable sync.Map
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			defer cancel()
			_, err := l.Init(ctx, InitRequest{})
			if errs.Kind(err) == errs.Unavailable {
				unavailable.Store(i, true)
			}
		}()
	}
	wg.Wait()
	n := 0
	unavailable.Range(func(any, any) bool { n++; return true })
	if n != 200 {
		t.Fatalf("%d of 200 abandoned retries got Unavailable", n)
	}
	if after := runtime.NumGoroutine(); after > before+5 {
		t.Fatalf("goroutines grew from %d to %d: abandoned retries pile up", before, after)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := l.Init(context.Background(), InitRequest{}); err != nil {
		t.Fatalf("lock not released: %v", err)
	}
}

// PROTOCOL.md 5.3 without MMDS: first-time setup is allowed; afterwards the
// same token passes, another one or none is refused.
func TestInitTokenRulesWithoutMMDS(t *testing.T) {
	l, _ := newLC(t, nil)
	ctx := context.Background()
	if _, err := l.Init(ctx, InitRequest{AccessToken: ptr("t1")}); err != nil {
		t.Fatal(err)
	}
	if !l.o.Token.Equal("t1") {
		t.Fatal("token not set")
	}
	if _, err := l.Init(ctx, InitRequest{AccessToken: ptr("t1")}); err != nil {
		t.Fatalf("same token refused: %v", err)
	}
	if _, err := l.Init(ctx, InitRequest{AccessToken: ptr("t2")}); !isUnauth(err, "access token validation failed") {
		t.Fatalf("other token: %v", err)
	}
	if _, err := l.Init(ctx, InitRequest{}); !isUnauth(err, "access token reset not authorized") {
		t.Fatalf("no token: %v", err)
	}
	if !l.o.Token.Equal("t1") || l.Initialized() != true {
		t.Fatal("state changed by refused inits")
	}
}

// BEHAVIOR.md 10.5 / 11.3 E21: the hyperloop address replaces every entry
// of the events host in /etc/hosts and keeps other lines; concurrent
// /inits leave exactly one well-formed entry; the variable follows.
func TestInitHyperloopWritesHostsSerialised(t *testing.T) {
	l, _ := newLC(t, nil)
	orig := "127.0.0.1\tlocalhost\n10.0.0.9 events.wrenn.local other\n# comment\n::1 ip6-localhost"
	if err := os.WriteFile(l.o.HostsPath, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := InitRequest{HyperloopIP: fmt.Sprintf("10.1.0.%d", i)}
			if _, err := l.Init(context.Background(), req); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, err := l.Init(context.Background(), InitRequest{HyperloopIP: "192.168.7.7"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "WRENN_EVENTS_ADDRESS", func() bool {
		return l.o.Defaults.Env()["WRENN_EVENTS_ADDRESS"] == "http://192.168.7.7"
	})
	b, _ := os.ReadFile(l.o.HostsPath)
	want := "127.0.0.1\tlocalhost\n# comment\n::1 ip6-localhost\n192.168.7.7\tevents.wrenn.local\n"
	if string(b) != want {
		t.Fatalf("hosts:\n%s\nwant:\n%s", b, want)
	}
	// Same address again: file untouched (no-op).
	st1, _ := os.Stat(l.o.HostsPath)
	if err := l.hosts.write("192.168.7.7"); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(l.o.HostsPath); !os.SameFile(st1, st2) {
		t.Fatal("rewrote /etc/hosts for an unchanged address")
	}
	// IPv6 gives a bracketed URL; an invalid address is ignored.
	if _, err := l.Init(context.Background(), InitRequest{HyperloopIP: "fd00::5"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "IPv6 events address", func() bool {
		return l.o.Defaults.Env()["WRENN_EVENTS_ADDRESS"] == "http://[fd00::5]"
	})
	if _, err := l.Init(context.Background(), InitRequest{HyperloopIP: "not-an-ip\nevil"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(l.o.HostsPath); strings.Contains(string(b), "evil") {
		t.Fatal("invalid hyperloop address written")
	}
}

func testCert(t *testing.T, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// waitCA waits until the background half of the last install is done.
func waitCA(l *Lifecycle) {
	l.ca.lock <- struct{}{}
	<-l.ca.lock
}

// BEHAVIOR.md 10.4: the CA is appended to the bundle, persisted, the
// previous one removed; the same PEM again is a no-op; invalid PEM is 400.
func TestInitCABundleInstall(t *testing.T) {
	l, _ := newLC(t, nil)
	system := "-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----" // no trailing newline
	if err := os.MkdirAll(strings.TrimSuffix(l.o.CABundlePath, "/ca-certificates.crt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.o.CABundlePath, []byte(system), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, b := testCert(t, "a"), testCert(t, "b")
	if _, err := l.Init(ctx, InitRequest{CABundle: a + "\n\n"}); err != nil {
		t.Fatal(err)
	}
	waitCA(l)
	bundle, _ := os.ReadFile(l.o.CABundlePath)
	if string(bundle) != system+"\n"+a {
		t.Fatalf("bundle after install:\n%s", bundle)
	}
	if p, _ := os.ReadFile(l.o.CAPersistPath); string(p) != a {
		t.Fatalf("persisted:\n%s", p)
	}
	st1, _ := os.Stat(l.o.CABundlePath)
	if _, err := l.Init(ctx, InitRequest{CABundle: a}); err != nil {
		t.Fatal(err)
	}
	waitCA(l)
	if st2, _ := os.Stat(l.o.CABundlePath); st2.Size() != st1.Size() || !os.SameFile(st1, st2) {
		t.Fatal("same CA again changed the bundle")
	}
	if _, err := l.Init(ctx, InitRequest{CABundle: b}); err != nil {
		t.Fatal(err)
	}
	waitCA(l)
	bundle, _ = os.ReadFile(l.o.CABundlePath)
	if strings.Contains(string(bundle), a) || !strings.HasSuffix(string(bundle), b) || !strings.HasPrefix(string(bundle), system) {
		t.Fatalf("bundle after rotation:\n%s", bundle)
	}
	if st, _ := os.Stat(l.o.CABundlePath); st.Mode().Perm() != 0o644 {
		t.Fatalf("bundle mode %v", st.Mode().Perm())
	}
	if _, err := l.Init(ctx, InitRequest{CABundle: "not a certificate"}); errs.Kind(err) != errs.Invalid {
		t.Fatalf("invalid PEM: %v", err)
	}
}

// BEHAVIOR.md 11.3 E19: a CA install that cannot get its lock before the
// caller gives up is Unavailable (503, retryable), not 400.
func TestInitCABundleBusyIsUnavailable(t *testing.T) {
	l, _ := newLC(t, nil)
	l.ca.lock <- struct{}{} // a background cleanup in progress
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := l.Init(ctx, InitRequest{CABundle: testCert(t, "c")})
	<-l.ca.lock
	if errs.Kind(err) != errs.Unavailable {
		t.Fatalf("busy CA lock: %v", err)
	}
}

// BEHAVIOR.md 7.4 / 10.6: a volume that cannot be mounted fails /init with
// 400 and a message naming the target and the mount point.
func TestInitVolumeMountFailureIsInvalid(t *testing.T) {
	l, _ := newLC(t, nil)
	dir := t.TempDir() + "/vol"
	_, err := l.Init(context.Background(), InitRequest{LifecycleID: "lc1",
		VolumeMounts: []VolumeMount{{Target: "127.0.0.1:/no-such-export", Path: dir}}})
	if errs.Kind(err) != errs.Invalid || !strings.Contains(err.Error(), "cannot mount volume 127.0.0.1:/no-such-export on "+dir) {
		t.Fatalf("failing mount: %v", err)
	}
	if testing.Verbose() {
		t.Log(err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatal("mount point not created first")
	}
	_, err = l.Init(context.Background(), InitRequest{VolumeMounts: []VolumeMount{{Target: "h:/x", Path: "relative"}}})
	if errs.Kind(err) != errs.Invalid {
		t.Fatalf("relative mount path: %v", err)
	}
}

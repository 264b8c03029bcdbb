package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sandboxd/envd/internal/testenv"
)

func TestLifecycleCommands(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	if r := ctl(t, e, "", "health").ok(t); r.stdout != "ok, version "+testenv.Version+"\n" {
		t.Fatalf("health: %q", r.stdout)
	}
	e2b := testenv.Start(t, testenv.Options{Args: []string{"--flavor", "e2b"}})
	if r := ctl(t, e2b, "", "health").ok(t); r.stdout != "ok (no content)\n" {
		t.Fatalf("e2b health: %q", r.stdout)
	}
	r := ctl(t, e, "", "metrics").ok(t)
	for _, want := range []string{"RESOURCE", "cpu ", "memory ", "disk / ", " GiB", "%"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("metrics lacks %q:\n%s", want, r.stdout)
		}
	}
	dir := t.TempDir()
	ctl(t, e, "", "init", "--env", "STAGE=test", "--env", "EMPTY=", "--default-workdir", dir, "--timestamp").ok(t)
	if r := ctl(t, e, "", "envs").ok(t); !strings.Contains(r.stdout, "EMPTY=\nSTAGE=test\n") ||
		!strings.Contains(r.stdout, "WRENN_SANDBOX=false\n") {
		t.Fatalf("envs:\n%s", r.stdout)
	}
	if r := ctl(t, e, "", "run", "pwd").ok(t); r.stdout != dir+"\n" {
		t.Fatalf("default workdir: %q", r.stdout)
	}
	ctl(t, e, "", "init", "--env", "bad").fails(t, 2, "KEY=VALUE")

	// A token: tokenless calls fail in one line; --token and ENVD_TOKEN work.
	ctl(t, e, "", "init", "--access-token", "tok-1").ok(t)
	ctl(t, e, "", "envs").fails(t, 1, "401 Unauthorized")
	ctl(t, e, "", "ps").fails(t, 1, "unauthenticated")
	ctl(t, e, "", "--token", "tok-1", "ps").ok(t)
	ctlEnv(t, e, []string{"ENVD_TOKEN=tok-1"}, "", "envs").ok(t)

	// sign: the URL works without the token, for GET and POST.
	write(t, dir+"/signed.txt", "signed content")
	u := strings.TrimSpace(ctl(t, e, "", "--token", "tok-1", "--user", "root", "sign", "--expires", "1h", dir+"/signed.txt").ok(t).stdout)
	if !strings.Contains(u, "signature=v1_") || !strings.Contains(u, "signature_expiration=") || !strings.Contains(u, "username=root") {
		t.Fatalf("sign: %s", u)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "signed content" {
		t.Fatalf("signed GET: %d %q", resp.StatusCode, b)
	}
	up := strings.TrimSpace(ctl(t, e, "", "--token", "tok-1", "sign", "--write", dir+"/up.txt").ok(t).stdout)
	resp, err = http.Post(up, "application/octet-stream", strings.NewReader("uploaded"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || read(t, dir+"/up.txt") != "uploaded" {
		t.Fatalf("signed POST: %d", resp.StatusCode)
	}
	if resp, err := http.Get(strings.Replace(u, "signed.txt", "other.txt", 1)); err != nil || resp.StatusCode != 401 {
		t.Fatalf("tampered URL: %v %v", err, resp)
	}
	ctl(t, e, "", "sign", "--expires", "1h", "/x").fails(t, 2, "needs an access token")
}

func TestHelpAndUsageErrors(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	r := ctl(t, e, "", "help").ok(t)
	for _, c := range commands {
		if !strings.Contains(r.stdout, "\n  "+c.name+" ") {
			t.Fatalf("help lacks %s", c.name)
		}
		h := ctl(t, e, "", "help", c.name).ok(t)
		if !strings.HasPrefix(h.stdout, "Usage: envdctl "+c.name) || len(h.stdout) < 60 {
			t.Fatalf("help %s:\n%s", c.name, h.stdout)
		}
		if d := ctl(t, e, "", c.name, "-h").ok(t); d.stdout != h.stdout {
			t.Fatalf("%s -h differs from help %s", c.name, c.name)
		}
	}
	for _, want := range []string{"ENVD_ADDR", "ENVD_TOKEN", "ENVD_USER", "--addr"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("help lacks %s", want)
		}
	}
	ctl(t, e, "", "frobnicate").fails(t, 2, `unknown command "frobnicate"`)
	ctl(t, e, "", "ls", "--bogus").fails(t, 2, "flag provided but not defined: -bogus")
	ctl(t, e, "", "--bogus").fails(t, 2, "flag provided but not defined")
	ctl(t, e, "", "help", "nope").fails(t, 2, "unknown command")
	if r := ctl(t, e, ""); r.code != 2 || !strings.Contains(r.stderr, "Commands:") {
		t.Fatalf("no command: %+v", r)
	}
	// --addr beats ENVD_ADDR; a dead address is one line and exit 1.
	ctlEnv(t, e, []string{"ENVD_ADDR=127.0.0.1:1"}, "", "--addr", e.Addr, "health").ok(t)
	dead := ctlEnv(t, e, []string{"ENVD_ADDR=127.0.0.1:1"}, "", "health")
	dead.fails(t, 1, "connection refused")
}

package client_test

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/envd/client"
	"github.com/sandboxd/envd/internal/testenv"
)

func TestHealthBothFlavours(t *testing.T) {
	w := testenv.Start(t, testenv.Options{})
	h, err := newClient(t, w).Health(ctxT(t))
	if err != nil || h.Version != testenv.Version || h.NoContent {
		t.Fatalf("wrenn: %v %+v", err, h)
	}
	e := testenv.Start(t, testenv.Options{Args: []string{"--flavor", "e2b"}})
	h, err = newClient(t, e).Health(ctxT(t))
	if err != nil || h.Version != "" || !h.NoContent {
		t.Fatalf("e2b: %v %+v", err, h)
	}
}

func TestMetricsAndEnvs(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e)
	m, err := c.Metrics(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.CPUCount != runtime.NumCPU() || m.MemTotal == 0 || m.MemUsed == 0 || m.MemUsed > m.MemTotal ||
		m.DiskTotal == 0 || m.DiskUsed > m.DiskTotal || time.Since(m.Time()) > time.Minute {
		t.Fatalf("metrics %+v", m)
	}
	envs, err := c.Envs(ctxT(t))
	if err != nil || envs["WRENN_SANDBOX"] != "false" {
		t.Fatalf("%v %v", err, envs)
	}
}

func TestInitTokenAndUser(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e)
	dir := t.TempDir()
	err := c.Init(ctxT(t), client.InitRequest{EnvVars: map[string]string{"FROM_INIT": "yes"}, DefaultWorkdir: dir,
		AccessToken: "s3cret", Timestamp: ptr(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	// The token gate now refuses the tokenless client, on RPCs and routes.
	if _, err := c.Envs(ctxT(t)); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("envs without token: %v", err)
	}
	if _, err := c.List(ctxT(t)); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("list without token: %v", err)
	}
	if _, err := c.Health(ctxT(t)); err != nil {
		t.Fatalf("health is open: %v", err)
	}
	// A wrong token cannot re-init.
	if err := newClient(t, e).Init(ctxT(t), client.InitRequest{AccessToken: "other"}); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("re-init with a wrong token: %v", err)
	}
	tc := newClient(t, e, client.WithToken("s3cret"))
	envs, err := tc.Envs(ctxT(t))
	if err != nil || envs["FROM_INIT"] != "yes" {
		t.Fatalf("%v %v", err, envs)
	}
	res, err := tc.Run(ctxT(t), client.Command{Cmd: "/bin/sh", Args: []string{"-c", `echo "$FROM_INIT $PWD"`}})
	if err != nil || string(res.Stdout) != "yes "+dir+"\n" {
		t.Fatalf("%v %+v", err, res)
	}
}

func ptr[T any](v T) *T { return &v }

// The spec's worked examples (PROTOCOL.md 5.4), byte for byte.
func TestSignatureWorkedExamples(t *testing.T) {
	const token = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	if got := client.Signature("/home/user/hello.txt", client.URLRead, "user", token, 0); got != "v1_0+/dLxVunJbGExBzQBg8Lk3itjbX8C7YCojaH5GudSM" {
		t.Fatalf("example 1: %s", got)
	}
	if got := client.Signature("hello.txt", client.URLWrite, "", token, 1767225600); got != "v1_dbHncD2QCV6DDdqLd6GvJWD+OocJOEM07FqdxHW1iic" {
		t.Fatalf("example 2: %s", got)
	}
	c, err := client.New("localhost:49983", client.WithToken(token), client.WithUser("user"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.FileURL(client.URLRead, "/home/user/hello.txt", time.Time{})
	if want := "http://localhost:49983/files?path=%2Fhome%2Fuser%2Fhello.txt&username=user&signature=v1_0%2B%2FdLxVunJbGExBzQBg8Lk3itjbX8C7YCojaH5GudSM"; err != nil || u != want {
		t.Fatalf("url 1: %v\n got %s\nwant %s", err, u, want)
	}
	c2, _ := client.New("localhost:49983", client.WithToken(token))
	u, err = c2.FileURL(client.URLWrite, "hello.txt", time.Unix(1767225600, 0))
	if want := "http://localhost:49983/files?path=hello.txt&signature=v1_dbHncD2QCV6DDdqLd6GvJWD%2BOocJOEM07FqdxHW1iic&signature_expiration=1767225600"; err != nil || u != want {
		t.Fatalf("url 2: %v\n got %s\nwant %s", err, u, want)
	}
	// No token: no signature, and an expiry is refused (as the JS SDK does).
	c3, _ := client.New("localhost:49983")
	if u, err := c3.FileURL(client.URLRead, "a b+c", time.Time{}); err != nil || u != "http://localhost:49983/files?path=a+b%2Bc" {
		t.Fatalf("unsigned: %v %s", err, u)
	}
	if _, err := c3.FileURL(client.URLRead, "a", time.Now().Add(time.Hour)); err == nil {
		t.Fatal("expiring URL without a token")
	}
}

// Signed URLs against the daemon: GET and POST work without the token;
// tampered, expired or re-targeted URLs are refused.
func TestSignedURLsAgainstEnvd(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	if err := newClient(t, e).Init(ctxT(t), client.InitRequest{AccessToken: "tok-123"}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, e, client.WithToken("tok-123"), client.WithUser("root"))
	dir := t.TempDir()
	target := filepath.Join(dir, "up load+1.txt")
	up, err := c.FileURL(client.URLWrite, target, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.HTTP.Post(up, "application/octet-stream", strings.NewReader("signed body"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("signed upload: %d", resp.StatusCode)
	}
	if b, _ := os.ReadFile(target); string(b) != "signed body" {
		t.Fatalf("uploaded %q", b)
	}
	down, err := c.FileURL(client.URLRead, target, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, e, down); code != 200 || body != "signed body" {
		t.Fatalf("signed download: %d %q", code, body)
	}
	// The upload URL does not download, and tampering breaks the signature.
	tampered := []string{
		strings.Replace(down, "signature=v1_", "signature=v1_A", 1),
		strings.Replace(down, "up+load", "up+loae", 1),
		strings.Replace(down, "username=root", "username=nobody", 1),
		strings.Replace(up, "signature_expiration=", "signature_expiration=1", 1),
		up,
	}
	for _, u := range tampered {
		if code, _ := get(t, e, u); code != http.StatusUnauthorized {
			t.Fatalf("%s: %d, want 401", u, code)
		}
	}
	expired, _ := c.FileURL(client.URLRead, target, time.Now().Add(-time.Minute))
	if code, _ := get(t, e, expired); code != http.StatusUnauthorized {
		t.Fatalf("expired: %d", code)
	}
}

func get(t *testing.T, e *testenv.Env, u string) (int, string) {
	t.Helper()
	resp, err := e.HTTP.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

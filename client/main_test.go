package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/sandboxd/envd/client"
	"github.com/sandboxd/envd/internal/config"
	"github.com/sandboxd/envd/internal/daemon"
	"github.com/sandboxd/envd/internal/testenv"
)

// addr is the envd the runnable examples talk to; exampleDir is a scratch
// directory for them. TestMain starts that envd in-process (tests start
// their own with testenv.Start).
var (
	addr       string
	exampleDir string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "envd-client-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	exampleDir = dir
	cfg, err := config.Parse([]string{"--isnotfc", "--no-cgroups", "--listen-addr", "127.0.0.1",
		"--run-dir", dir + "/run", "--mmds-addr", "127.0.0.1:1", "--forward-addr", "127.0.0.1"},
		"wrenn", func(string) string { return "" }, io.Discard)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.Build{Version: testenv.Version})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- d.Serve(ln) }()
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.Shutdown(ctx)
	if err := <-served; err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return code
}

// newClient returns a client for e, closed at cleanup.
func newClient(t testing.TB, e *testenv.Env, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(e.Addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// codecOpts is the client configuration for each of testenv.Codecs.
func codecOpts(cd testenv.Codec) []client.Option {
	var o []client.Option
	if cd.JSON {
		o = append(o, client.WithJSON())
	}
	if cd.H2C {
		o = append(o, client.WithH2C())
	}
	return o
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// within fails the test when ch is not closed in time (an event, not a sleep).
func within(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sandboxd/envd/client"
	"github.com/sandboxd/envd/internal/testenv"
)

func TestNewAddresses(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "http://localhost:49983",
		"10.0.0.2:49983":         "http://10.0.0.2:49983",
		"http://127.0.0.1:1234/": "http://127.0.0.1:1234",
		"https://edge.example":   "https://edge.example",
	} {
		c, err := client.New(in)
		if err != nil || c.BaseURL() != want {
			t.Fatalf("New(%q): %v %q, want %q", in, err, c.BaseURL(), want)
		}
	}
	for _, bad := range []string{"ftp://x:1", "http://", "::::"} {
		if _, err := client.New(bad); err == nil {
			t.Fatalf("New(%q) accepted", bad)
		}
	}
}

// WithTimeout bounds a unary call: SendInput blocks while the process's
// stdin pipe is full, until the per-call deadline ends it.
func TestWithTimeoutBoundsUnaryCalls(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e, client.WithTimeout(300*time.Millisecond))
	p, err := c.Start(context.Background(), client.Command{Cmd: "sleep", Args: []string{"30"}, Stdin: true,
		Tag: "stuck", Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Tag() != "stuck" {
		t.Fatalf("tag %q", p.Tag())
	}
	err = p.SendInput(context.Background(), bytes.Repeat([]byte("x"), 4<<20))
	if !errors.Is(err, client.ErrTimeout) && !errors.Is(err, client.ErrCanceled) {
		t.Fatalf("input into a full pipe: %v", err)
	}
	if err := p.Kill(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	within(t, p.Done(), "the killed process's end")
	if exit, err := p.Wait(); err != nil || exit.Success() {
		t.Fatalf("%v %+v", err, exit)
	}
}

// WithHTTPClient brings its own transport (here testenv's h2c client).
func TestWithHTTPClient(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e, client.WithHTTPClient(e.H2C), client.WithDialTimeout(time.Second))
	res, err := c.Run(ctxT(t), client.Command{Cmd: "echo", Args: []string{"over", "h2c"}})
	if err != nil || string(res.Stdout) != "over h2c\n" {
		t.Fatalf("%v %+v", err, res)
	}
	if err := c.Resize(ctxT(t), client.PID(1<<30), client.Size{Cols: 1, Rows: 1}); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("resize missing: %v", err)
	}
}

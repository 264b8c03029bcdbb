package client_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandboxd/envd/client"
	"github.com/sandboxd/envd/internal/testenv"
)

// flakyProxy forwards TCP to envd but closes the first drop connections
// as soon as they are accepted: a connection failure the client sees.
type flakyProxy struct {
	ln       net.Listener
	target   string
	drop     atomic.Int64 // connections still to drop
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex // guards conns
	conns    []net.Conn
}

func startProxy(t *testing.T, target string, drop int64) *flakyProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{ln: ln, target: target}
	p.drop.Store(drop)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *flakyProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		if p.drop.Add(-1) >= 0 {
			c.(*net.TCPConn).SetLinger(0) // a reset, not a tidy close
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
		go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); c.(*net.TCPConn).CloseWrite() }()
	}
}

func TestIdempotentCallsRetryOnConnectionFailure(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	dir := t.TempDir()
	calls := map[string]func(c *client.Client) error{
		"health": func(c *client.Client) error { _, err := c.Health(ctxT(t)); return err },
		"list":   func(c *client.Client) error { _, err := c.List(ctxT(t)); return err },
		"stat":   func(c *client.Client) error { _, err := c.Stat(ctxT(t), dir); return err },
		"read": func(c *client.Client) error {
			r, err := c.Read(ctxT(t), "/etc/hostname")
			if err == nil {
				r.Close()
			}
			return err
		},
		"remove": func(c *client.Client) error { return c.Remove(ctxT(t), dir+"/none") },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			p := startProxy(t, e.Addr, 2)
			c := newClient(t, &testenv.Env{Addr: p.ln.Addr().String()}, client.WithRetry(4, time.Millisecond))
			if err := call(c); err != nil {
				t.Fatalf("%s after two dropped connections: %v", name, err)
			}
			if n := p.accepted.Load(); n != 3 {
				t.Fatalf("%d connections, want 3", n)
			}
		})
	}
}

func TestRetriesAreBounded(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	p := startProxy(t, e.Addr, 1000)
	c := newClient(t, &testenv.Env{Addr: p.ln.Addr().String()}, client.WithRetry(3, time.Millisecond))
	_, err := c.Stat(ctxT(t), "/")
	if !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
	if n := p.accepted.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	// Nothing listening: refused, retried, then ErrUnavailable.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	c2 := newClient(t, &testenv.Env{Addr: dead}, client.WithRetry(2, time.Millisecond))
	if _, err := c2.Health(ctxT(t)); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("refused: %v", err)
	}
}

func TestStreamsAndWritesAreNotRetried(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	dir := t.TempDir()
	calls := map[string]func(c *client.Client) error{
		"start": func(c *client.Client) error {
			_, err := c.Start(ctxT(t), client.Command{Cmd: "true"})
			return err
		},
		"watch": func(c *client.Client) error { _, err := c.Watch(ctxT(t), dir, client.WatchOptions{}); return err },
		"write": func(c *client.Client) error {
			_, err := c.Write(ctxT(t), dir+"/f", strings.NewReader("x"))
			return err
		},
		"mkdir": func(c *client.Client) error { _, err := c.MakeDir(ctxT(t), dir+"/d"); return err },
		"kill":  func(c *client.Client) error { return c.Kill(ctxT(t), client.PID(1<<30)) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			p := startProxy(t, e.Addr, 1)
			c := newClient(t, &testenv.Env{Addr: p.ln.Addr().String()}, client.WithRetry(4, time.Millisecond))
			if err := call(c); !errors.Is(err, client.ErrUnavailable) {
				t.Fatalf("%s through a dropped connection: %v", name, err)
			}
			if n := p.accepted.Load(); n != 1 {
				t.Fatalf("%s: %d connections, want 1 (no retry)", name, n)
			}
		})
	}
}

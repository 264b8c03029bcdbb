package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/sandboxd/envd/client"
)

// runTerminal starts cmd on a remote terminal sized like the local one
// and connects the two until it exits.
func runTerminal(ctx context.Context, a *app, cmd client.Command) error {
	size, _ := localSize(a)
	cmd.PTY = &size
	cmd.Stdout, cmd.Stderr = a.stdout, a.stderr
	p, err := a.c.Start(ctx, cmd)
	if err != nil {
		return err
	}
	return interact(ctx, a, p, size)
}

// attachTerminal connects the local terminal to a running PTY process,
// first giving it the local size.
func attachTerminal(ctx context.Context, a *app, sel client.Selector) error {
	p, err := a.c.Connect(ctx, sel, client.ConnectOptions{Stdout: a.stdout, Stderr: a.stderr, PTY: true})
	if err != nil {
		return err
	}
	return interact(ctx, a, p, client.Size{})
}

// interact puts a local terminal in raw mode (so Ctrl-C, Ctrl-D and the
// like reach the remote terminal as keys), forwards input and size changes
// and returns the remote exit status. Local EOF sends Ctrl-D.
func interact(ctx context.Context, a *app, p *client.Process, sent client.Size) error {
	fd := int(a.stdin.Fd())
	if term.IsTerminal(fd) {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("raw terminal: %w", err)
		}
		defer term.Restore(fd, old)
	}
	rs := &resizer{a: a, p: p, sent: sent}
	rs.sync(ctx)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		for {
			select {
			case <-winch:
				rs.sync(ctx)
			case <-quit:
				return
			}
		}
	}()
	// Each input chunk first brings the remote size up to date, so a
	// resize always reaches envd before the keys typed after it.
	in := startInput(a.stdin, func(b []byte) error {
		rs.sync(ctx)
		return p.SendInput(ctx, b)
	}, func() { _ = p.SendInput(ctx, []byte{0x04}) })
	err := waitExit(p)
	in.stop()
	signal.Stop(winch)
	close(quit)
	<-done
	return err
}

// localSize is the local terminal's size (stdin, else stdout), or 80x24.
func localSize(a *app) (client.Size, bool) {
	for _, f := range []*os.File{a.stdin, a.stdout} {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil && w > 0 && h > 0 {
			return client.Size{Cols: uint32(w), Rows: uint32(h)}, true
		}
	}
	return client.Size{Cols: 80, Rows: 24}, false
}

// resizer sends the local size to the remote terminal when it changed.
type resizer struct {
	a  *app
	p  *client.Process
	mu sync.Mutex // guards sent, and orders a resize before later input
	// sent is the size envd has.
	sent client.Size
}

func (r *resizer) sync(ctx context.Context) {
	sz, ok := localSize(r.a)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if sz == r.sent {
		return
	}
	if err := r.p.Resize(ctx, sz); err == nil {
		r.sent = sz
	}
}

// inputPump forwards a local file (stdin) in chunks. It polls the file
// together with a wake pipe, so stop ends it even while no input comes.
type inputPump struct {
	wake *os.File
	done chan struct{}
}

func startInput(f *os.File, send func([]byte) error, eof func()) *inputPump {
	r, w, err := os.Pipe()
	ip := &inputPump{wake: w, done: make(chan struct{})}
	if err != nil {
		close(ip.done)
		return ip
	}
	go func() {
		defer close(ip.done)
		defer r.Close()
		defer func() { _ = recover() }()
		pumpInput(int(f.Fd()), int(r.Fd()), send, eof)
	}()
	return ip
}

func pumpInput(fd, wake int, send func([]byte) error, eof func()) {
	buf := make([]byte, 32<<10)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(wake), Events: unix.POLLIN}}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err == unix.EINTR {
			continue
		} else if err != nil {
			return
		}
		if fds[1].Revents != 0 {
			return
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, err := unix.Read(fd, buf)
		switch {
		case n > 0:
			if send(buf[:n]) != nil {
				return
			}
		case err == unix.EINTR || err == unix.EAGAIN:
		default: // EOF, or stdin is unusable
			eof()
			return
		}
	}
}

// stop ends the pump and waits for it.
func (ip *inputPump) stop() {
	if ip.wake == nil {
		return
	}
	_, _ = ip.wake.Write([]byte{0})
	<-ip.done
	ip.wake.Close()
	ip.wake = nil
}

package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/user"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/envd/client"
	"github.com/sandboxd/envd/internal/testenv"
)

func TestRunEveryCodec(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	for _, cd := range testenv.Codecs {
		t.Run(cd.Name, func(t *testing.T) {
			c := newClient(t, e, codecOpts(cd)...)
			res, err := c.Run(ctxT(t), client.Command{Cmd: "/bin/sh",
				Args: []string{"-c", `printf 'out %s\n' "$X"; echo err >&2; exit 3`}, Envs: map[string]string{"X": cd.Name}})
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Stdout) != "out "+cd.Name+"\n" || string(res.Stderr) != "err\n" {
				t.Fatalf("stdout %q stderr %q", res.Stdout, res.Stderr)
			}
			if res.Code != 3 || !res.Exited || res.Success() || res.Status != "exit status 3" || res.Error != "exit status 3" {
				t.Fatalf("exit %+v", res.Exit)
			}
		})
	}
}

func TestRunCwdUserAndNoShell(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	dir := t.TempDir()
	c := newClient(t, e, client.WithUser("root"))
	// No shell: the argument reaches echo verbatim, '$HOME' unexpanded.
	res, err := c.Run(ctxT(t), client.Command{Cmd: "echo", Args: []string{"$HOME", "a b"}})
	if err != nil || string(res.Stdout) != "$HOME a b\n" {
		t.Fatalf("%v %q", err, res.Stdout)
	}
	res, err = c.Run(ctxT(t), client.Command{Cmd: "pwd", Cwd: dir})
	if err != nil || string(res.Stdout) != dir+"\n" {
		t.Fatalf("%v %q", err, res.Stdout)
	}
	if _, err := user.Lookup("nobody"); err == nil {
		res, err = newClient(t, e, client.WithUser("nobody")).Run(ctxT(t), client.Command{Cmd: "id", Args: []string{"-un"}, Cwd: "/"})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Stdout) != "nobody\n" {
			t.Fatalf("%q", res.Stdout)
		}
	}
	_, err = newClient(t, e, client.WithUser("no-such-user-x")).Run(ctxT(t), client.Command{Cmd: "true"})
	if !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("unknown user: %v", err)
	}
	_, err = c.Run(ctxT(t), client.Command{Cmd: "true", Cwd: dir + "/missing"})
	if !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("missing cwd: %v", err)
	}
}

func TestRunMaxOutputTruncates(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e)
	res, err := c.Run(ctxT(t), client.Command{Cmd: "head", Args: []string{"-c", "100000", "/dev/zero"}, MaxOutput: 1000})
	if err != nil || len(res.Stdout) != 1000 || !res.Truncated || !res.Success() {
		t.Fatalf("%v len %d truncated %v", err, len(res.Stdout), res.Truncated)
	}
}

func TestStartReadersWaitAndLargeOutput(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e)
	p, err := c.Start(ctxT(t), client.Command{Cmd: "/bin/sh", Args: []string{"-c", "seq 1 200000; echo done >&2"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.PID() == 0 {
		t.Fatal("no pid")
	}
	var wg sync.WaitGroup
	var stderr []byte
	wg.Add(1)
	go func() { defer wg.Done(); stderr, _ = io.ReadAll(p.Stderr()) }()
	out, err := io.ReadAll(p.Stdout())
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 200000 || lines[0] != "1" || lines[199999] != "200000" || string(stderr) != "done\n" {
		t.Fatalf("%d lines, stderr %q", len(lines), stderr)
	}
	exit, err := p.Wait()
	if err != nil || !exit.Success() {
		t.Fatalf("%v %+v", err, exit)
	}
}

func TestStartCallbacksAndInput(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e, client.WithJSON())
	var mu sync.Mutex
	var got bytes.Buffer
	line := make(chan struct{})
	p, err := c.Start(ctxT(t), client.Command{Cmd: "cat", Stdin: true,
		Stdout: client.WriterFunc(func(b []byte) {
			mu.Lock()
			defer mu.Unlock()
			got.Write(b)
			if bytes.Contains(got.Bytes(), []byte("first\n")) && line != nil {
				close(line)
				line = nil
			}
		})})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SendInput(ctxT(t), []byte("first\n")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	l := line
	mu.Unlock()
	if l != nil {
		within(t, l, "echoed input")
	}
	if err := p.SendInput(ctxT(t), []byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := p.CloseStdin(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	exit, err := p.Wait()
	if err != nil || !exit.Success() || got.String() != "first\nsecond" {
		t.Fatalf("%v %+v %q", err, exit, got.String())
	}
	// Input to a process started without stdin is refused.
	q, err := c.Start(ctxT(t), client.Command{Cmd: "sleep", Args: []string{"30"}, Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.SendInput(ctxT(t), []byte("x")); err == nil {
		t.Fatal("input to a process without stdin accepted")
	}
	if err := q.Kill(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if exit, err := q.Wait(); err != nil || exit.Code != -1 || exit.Exited || exit.Status != "signal: killed" {
		t.Fatalf("%v %+v", err, exit)
	}
}

func TestPTYInputAndResize(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e)
	out := &testenv.LogBuffer{}
	p, err := c.Start(ctxT(t), client.Command{Cmd: "/bin/sh", Args: []string{"-c", "stty size; read x; stty size; exit 4"},
		PTY: &client.Size{Cols: 80, Rows: 24}, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	out.WaitFor(t, "24 80", 0)
	if err := p.Resize(ctxT(t), client.Size{Cols: 101, Rows: 33}); err != nil {
		t.Fatal(err)
	}
	if !p.IsPTY() {
		t.Fatal("not marked as a pty process")
	}
	if err := p.SendInput(ctxT(t), []byte("go\r")); err != nil {
		t.Fatal(err)
	}
	out.WaitFor(t, "33 101", 0)
	exit, err := p.Wait()
	if err != nil || exit.Code != 4 {
		t.Fatalf("%v %+v", err, exit)
	}
	if b, _ := io.ReadAll(p.Stderr()); len(b) != 0 {
		t.Fatalf("pty process has stderr %q", b)
	}
}

func TestSignalTimeoutAndClose(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e)
	p, err := c.Start(ctxT(t), client.Command{Cmd: "sleep", Args: []string{"30"}, Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(ctxT(t), client.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if exit, err := p.Wait(); err != nil || exit.Status != "signal: terminated" {
		t.Fatalf("%v %+v", err, exit)
	}
	// Command.Timeout is the process's lifetime.
	start := time.Now()
	p, err = c.Start(context.Background(), client.Command{Cmd: "sleep", Args: []string{"30"}, Timeout: 300 * time.Millisecond,
		Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); !errors.Is(err, client.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("timeout not applied")
	}
	// Closing the stream leaves the process running.
	p, err = c.Start(ctxT(t), client.Command{Cmd: "sleep", Args: []string{"30"}, Tag: "kept"})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := p.Wait(); !errors.Is(err, client.ErrCanceled) {
		t.Fatalf("after close: %v", err)
	}
	if _, err := io.ReadAll(p.Stdout()); err == nil {
		t.Fatal("stdout reader not failed after Close")
	}
	list, err := c.List(ctxT(t))
	if err != nil || !hasPID(list, p.PID()) {
		t.Fatalf("%v: closed stream killed the process: %+v", err, list)
	}
	if err := c.Kill(ctxT(t), client.PID(p.PID())); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(ctxT(t), client.PID(1<<30)); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("kill missing pid: %v", err)
	}
}

func hasPID(list []client.ProcessInfo, pid uint32) bool {
	for _, p := range list {
		if p.PID == pid {
			return true
		}
	}
	return false
}

func TestConnectListAndSelectors(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e, client.WithH2C())
	dir := t.TempDir()
	p, err := c.Start(ctxT(t), client.Command{Cmd: "/bin/sh", Args: []string{"-c", "read x; echo got $x; exit 5"},
		Tag: "worker", Stdin: true, Cwd: dir, Envs: map[string]string{"K": "V"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	list, err := c.List(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var info *client.ProcessInfo
	for i := range list {
		if list[i].PID == p.PID() {
			info = &list[i]
		}
	}
	if info == nil || info.Tag != "worker" || info.Cmd != "/bin/sh" || len(info.Args) != 2 || info.Cwd != dir || info.Envs["K"] != "V" {
		t.Fatalf("list: %+v", list)
	}
	a, err := c.Connect(ctxT(t), client.Tag("worker"), client.ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.PID() != p.PID() {
		t.Fatalf("connect by tag: pid %d, want %d", a.PID(), p.PID())
	}
	if err := c.SendStdin(ctxT(t), client.Tag("worker"), []byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(a.Stdout())
	exit, err := a.Wait()
	if err != nil || exit.Code != 5 || string(got) != "got hi\n" {
		t.Fatalf("%v %+v %q", err, exit, got)
	}
	// The exit is retained: a late Connect by pid gets it at once.
	late, err := c.Connect(ctxT(t), client.PID(p.PID()), client.ConnectOptions{Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if exit, err := late.Wait(); err != nil || exit.Code != 5 {
		t.Fatalf("late connect: %v %+v", err, exit)
	}
	if _, err := c.Connect(ctxT(t), client.Tag("no-such-tag"), client.ConnectOptions{}); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("connect missing: %v", err)
	}
	if err := c.CloseStdin(ctxT(t), client.Tag("no-such-tag")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("close stdin missing: %v", err)
	}
}

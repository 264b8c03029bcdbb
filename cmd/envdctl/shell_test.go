package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/envd/client"
	"github.com/sandboxd/envd/internal/testenv"
)

// onTerminal runs envdctl with a fresh pseudo-terminal as its controlling
// terminal and stdin/stdout/stderr; the test drives the master side.
type onTerminal struct {
	cmd    *exec.Cmd
	master *os.File
	out    *testenv.LogBuffer
	read   chan struct{} // closed when the master reader is done
	exited chan struct{} // closed when cmd.Wait has returned
}

func startOnTerminal(t *testing.T, e *testenv.Env, rows, cols uint16, args ...string) *onTerminal {
	t.Helper()
	m, s := openPTY(t, rows, cols)
	cmd := exec.Command(binary(t, raceEnabled), args...)
	cmd.Env = append(cleanEnv(), "ENVD_ADDR="+e.Addr, "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close() // only the child holds the terminal now
	o := &onTerminal{cmd: cmd, master: m, out: &testenv.LogBuffer{}, read: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(o.read)
		_, _ = io.Copy(o.out, m) // ends with EIO once the child has gone
	}()
	go func() {
		defer close(o.exited)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-o.exited
		m.Close()
		<-o.read
	})
	return o
}

func (o *onTerminal) typ(t *testing.T, s string) {
	t.Helper()
	if _, err := o.master.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// wait returns envdctl's exit code.
func (o *onTerminal) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-o.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("envdctl did not exit; terminal:\n%s", o.out.String())
	}
	return o.cmd.ProcessState.ExitCode()
}

// The interactive shell end to end: raw terminal, a command and its
// output, a resize seen by stty inside, Ctrl-D, the exit code.
func TestShellOnPseudoTerminal(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	// An explicit shell without rc files: the host's dotfiles are not under test.
	o := startOnTerminal(t, e, 24, 80, "shell", "--", "/bin/bash", "--noprofile", "--norc", "-i")
	// The remote side sees the local size from the start.
	o.typ(t, "stty size; echo hel''lo-$((6*7))\r")
	at := o.out.WaitFor(t, "24 80", 0)
	at = o.out.WaitFor(t, "hello-42", at)
	// Resize the local terminal: envdctl gets SIGWINCH and the remote
	// terminal follows before the next keys arrive.
	setSize(t, o.master, 33, 101)
	o.typ(t, "stty size\r")
	at = o.out.WaitFor(t, "33 101", at)
	// Keys are raw: Ctrl-C interrupts the remote command, not envdctl.
	// (It is sent once the line runs, when the remote terminal makes it a
	// signal rather than an editing key.)
	o.typ(t, "echo start-$((0+1)); sleep 30; echo not-$((2+3))-interrupted\r")
	at = o.out.WaitFor(t, "start-1", at)
	o.typ(t, "\x03")
	o.typ(t, "echo after-$((1+1))\r")
	o.out.WaitFor(t, "after-2", at)
	// The last status, then Ctrl-D: the shell exits with it.
	o.typ(t, "(exit 7)\r")
	o.typ(t, "\x04")
	if code := o.wait(t); code != 7 {
		t.Fatalf("exit %d, want 7; terminal:\n%s", code, o.out.String())
	}
	if strings.Contains(o.out.String(), "not-5-interrupted") {
		t.Fatal("Ctrl-C did not reach the remote command")
	}
}

// shell CMD runs CMD on a terminal; attach --pty joins a running one.
func TestShellCommandAndAttachPTY(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	o := startOnTerminal(t, e, 30, 90, "shell", "--env", "X=on-a-tty", "--", "/bin/sh", "-c", `test -t 0 && echo "$X $TERM"; stty size; exit 3`)
	o.out.WaitFor(t, "on-a-tty xterm", 0)
	o.out.WaitFor(t, "30 90", 0)
	if code := o.wait(t); code != 3 {
		t.Fatalf("exit %d", code)
	}

	c, err := client.New(e.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := c.Start(ctx, client.Command{Cmd: "/bin/sh", Args: []string{"-c", "read x; stty size; echo got-$x; exit 6"},
		Tag: "tty-job", PTY: &client.Size{Cols: 80, Rows: 24}, Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a := startOnTerminal(t, e, 40, 120, "attach", "--pty", "tty-job")
	// Input is only sent after attach gave the remote terminal its size.
	a.typ(t, "yes\r")
	a.out.WaitFor(t, "40 120", 0)
	a.out.WaitFor(t, "got-yes", 0)
	if code := a.wait(t); code != 6 {
		t.Fatalf("attach exit %d; terminal:\n%s", code, a.out.String())
	}
}

// cp draws a progress bar when stderr is a terminal.
func TestCpProgressOnTerminal(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/big.bin", bytes.Repeat([]byte("x"), 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	o := startOnTerminal(t, e, 24, 100, "cp", dir+"/big.bin", ":"+dir+"/up.bin")
	if code := o.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, o.out.String())
	}
	o.out.WaitFor(t, "big.bin", 0)
	o.out.WaitFor(t, "100% [==============================] 8.0 MiB / 8.0 MiB", 0)
	if fi, err := os.Stat(dir + "/up.bin"); err != nil || fi.Size() != 8<<20 {
		t.Fatalf("upload: %v", err)
	}
	q := startOnTerminal(t, e, 24, 100, "cp", "-q", ":"+dir+"/up.bin", dir+"/down.bin")
	if code := q.wait(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	<-q.read
	if strings.Contains(q.out.String(), "%") {
		t.Fatalf("-q still drew progress: %q", q.out.String())
	}
}

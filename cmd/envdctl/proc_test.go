package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/envd/client"
	"github.com/sandboxd/envd/internal/testenv"
)

func TestRun(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	dir := t.TempDir()
	r := ctl(t, e, "", "run", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
	if r.code != 7 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Fatalf("%+v", r)
	}
	// No shell unless --shell: '$HOME' reaches echo as is.
	if r := ctl(t, e, "", "run", "echo", "$HOME", "a  b").ok(t); r.stdout != "$HOME a  b\n" {
		t.Fatalf("%q", r.stdout)
	}
	if r := ctl(t, e, "", "run", "--shell", "echo", "$((6*7))", "|", "tr", "4", "x").ok(t); r.stdout != "x2\n" {
		t.Fatalf("--shell: %q", r.stdout)
	}
	if r := ctl(t, e, "", "run", "--cwd", dir, "--env", "A=1", "--env", "B=x=y", "--", "sh", "-c", `echo "$A $B $PWD"`).ok(t); r.stdout != "1 x=y "+dir+"\n" {
		t.Fatalf("cwd/env: %q", r.stdout)
	}
	if r := ctl(t, e, "line one\nline two\n", "run", "-i", "--", "cat").ok(t); r.stdout != "line one\nline two\n" {
		t.Fatalf("-i: %q", r.stdout)
	}
	if r := ctl(t, e, "", "run", "--", "sh", "-c", "kill -9 $$"); r.code != 137 {
		t.Fatalf("killed: %+v", r)
	}
	ctl(t, e, "", "run", "--timeout", "200ms", "sleep", "30").fails(t, 124, "timed out")
	ctl(t, e, "", "run").fails(t, 2, "missing CMD")
	ctl(t, e, "", "run", "--cwd", dir+"/missing", "true").fails(t, 1, "does not exist")
	if _, err := user.Lookup("nobody"); err == nil {
		if r := ctl(t, e, "", "--user", "nobody", "run", "--cwd", "/", "id", "-un").ok(t); r.stdout != "nobody\n" {
			t.Fatalf("--user: %q", r.stdout)
		}
		if r := ctlEnv(t, e, []string{"ENVD_USER=nobody"}, "", "run", "--cwd", "/", "id", "-un").ok(t); r.stdout != "nobody\n" {
			t.Fatalf("ENVD_USER: %q", r.stdout)
		}
	}
	ctl(t, e, "", "--user", "no-such-user-x", "run", "true").fails(t, 1, "unauthenticated")
	// Both codecs and both transports.
	for _, flags := range [][]string{{"--json"}, {"--h2c"}, {"--json", "--h2c"}} {
		args := append(flags, "run", "--", "sh", "-c", "echo via; exit 3")
		if r := ctl(t, e, "", args...); r.code != 3 || r.stdout != "via\n" {
			t.Fatalf("%v: %+v", flags, r)
		}
	}
}

// Ctrl-C on envdctl run becomes SIGTERM for the remote process.
func TestRunForwardsInterrupt(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	cmd := exec.Command(binary(t, raceEnabled), "run", "--", "sh", "-c", "trap 'exit 9' TERM; echo ready; while :; do sleep 0.05; done")
	cmd.Env = append(cleanEnv(), "ENVD_ADDR="+e.Addr)
	out := &testenv.LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out.WaitFor(t, "ready", 0)
	if err := cmd.Process.Signal(interruptSig); err != nil {
		t.Fatal(err)
	}
	// Exit 9 proves the trap ran. (Its echo may be lost: like E2B, envd
	// stops reading output once it has sent SIGTERM, PROTOCOL.md 3.3.5.)
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 9 {
		t.Fatalf("exit %d, output %q", code, out.String())
	}
}

// A closed local pipe stops the remote process (envdctl run -- yes | head).
func TestRunStopsOnBrokenPipe(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	cmd := exec.Command(binary(t, raceEnabled), "run", "--tag", "yes-job", "--", "yes")
	cmd.Env = append(cleanEnv(), "ENVD_ADDR="+e.Addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "y\n" {
		t.Fatalf("%q %v", line, err)
	}
	out.Close()
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 141 {
		t.Fatalf("exit %d, want 141", code)
	}
	if r := ctl(t, e, "", "ps").ok(t); strings.Contains(r.stdout, "yes-job") {
		t.Fatalf("remote yes still runs:\n%s", r.stdout)
	}
}

func TestPsAttachKill(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c, err := client.New(e.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := c.Start(ctx, client.Command{Cmd: "/bin/sh", Args: []string{"-c", "read x; echo got $x; exit 5"},
		Tag: "worker", Stdin: true, Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ps := ctl(t, e, "", "ps").ok(t)
	lines := strings.Split(strings.TrimSpace(ps.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "PID") ||
		!strings.Contains(lines[1], "worker") || !strings.Contains(lines[1], `/bin/sh -c "read x; echo got $x; exit 5"`) {
		t.Fatalf("ps:\n%s", ps.stdout)
	}
	// attach by tag, forwarding stdin: the process reads it and exits 5.
	r := ctl(t, e, "hi\n", "attach", "-i", "worker")
	if r.code != 5 || r.stdout != "got hi\n" {
		t.Fatalf("attach: %+v", r)
	}
	ctl(t, e, "", "attach", "no-such-tag").fails(t, 1, "not_found")
	ctl(t, e, "", "attach").fails(t, 2, "want one PID or TAG")

	q, err := c.Start(ctx, client.Command{Cmd: "sleep", Args: []string{"60"}, Tag: "sleeper", Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ctl(t, e, "", "kill", "--signal", "KILL", "sleeper").ok(t)
	if exit, err := q.Wait(); err != nil || exit.Status != "signal: killed" {
		t.Fatalf("kill by tag: %v %+v", err, exit)
	}
	q, err = c.Start(ctx, client.Command{Cmd: "sleep", Args: []string{"60"}, Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ctl(t, e, "", "kill", itoa(q.PID())).ok(t)
	if exit, err := q.Wait(); err != nil || exit.Status != "signal: terminated" {
		t.Fatalf("kill by pid: %v %+v", err, exit)
	}
	ctl(t, e, "", "kill", "1073741824").fails(t, 1, "not_found")
	ctl(t, e, "", "kill", "--signal", "HUP", "1").fails(t, 2, "TERM or KILL")
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

var interruptSig = os.Interrupt

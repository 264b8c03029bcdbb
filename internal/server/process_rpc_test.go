package server_test

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"

	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
	"github.com/sandboxd/envd/internal/testenv"
)

// PROTOCOL.md 3.3.1: start, data, exactly one end with Go's strings.
func TestStartEndEventConventions(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		r := procRun(t, c, procShell("echo hi; echo oops >&2"))
		if r.pid == 0 || r.stdout.String() != "hi\n" || r.stderr.String() != "oops\n" {
			t.Fatalf("pid %d stdout %q stderr %q", r.pid, r.stdout.String(), r.stderr.String())
		}
		if e := r.end; e.GetExitCode() != 0 || !e.GetExited() || e.GetStatus() != "exit status 0" || e.Error != nil {
			t.Fatalf("end %v", e)
		}
		r = procRun(t, c, procShell("exit 3"))
		if e := r.end; e.GetExitCode() != 3 || !e.GetExited() || e.GetStatus() != "exit status 3" || e.GetError() != "exit status 3" {
			t.Fatalf("end %v", e)
		}
		r = procRun(t, c, procShell("kill -9 $$"))
		if e := r.end; e.GetExitCode() != -1 || e.GetExited() || e.GetStatus() != "signal: killed" || e.GetError() != "signal: killed" {
			t.Fatalf("end %v", e)
		}
	})
}

// PROTOCOL.md 3.1: a missing command is not an RPC error: start, stderr
// text, end with 127 (E12: no helper binaries are needed for this).
func TestMissingCommandGivesStartStderrAndExit127(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		r := procRun(t, c, procCmd("no-such-command-envd", "x"))
		if r.pid == 0 || r.end.GetExitCode() != 127 || r.end.GetStatus() != "exit status 127" {
			t.Fatalf("pid %d end %v", r.pid, r.end)
		}
		if !strings.Contains(r.stderr.String(), "no-such-command-envd") || !strings.Contains(r.stderr.String(), "not found") {
			t.Fatalf("stderr %q", r.stderr.String())
		}
		// process missing: an empty command exits 127 (PROTOCOL.md 3.3.1).
		r = procRun(t, c, &pb.StartRequest{Stdin: new(bool)})
		if r.end.GetExitCode() != 127 {
			t.Fatalf("empty command: end %v", r.end)
		}
		// Not executable: 126 with the shell's message.
		r = procRun(t, c, procCmd("/etc/passwd"))
		if r.end.GetExitCode() != 126 || !strings.Contains(r.stderr.String(), "Permission denied") {
			t.Fatalf("non-executable: end %v stderr %q", r.end, r.stderr.String())
		}
	})
}

// A script without a #! line runs through the shell, as under the peers'
// sh wrapper (execve's ENOEXEC).
func TestScriptWithoutShebangRuns(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	script := t.TempDir() + "/script"
	if err := os.WriteFile(script, []byte("echo from-script $1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := procRun(t, e.Process(testenv.Codecs[0]), procCmd(script, "arg"))
	if r.stdout.String() != "from-script arg\n" || r.end.GetExitCode() != 0 {
		t.Fatalf("stdout %q end %v stderr %q", r.stdout.String(), r.end, r.stderr.String())
	}
}

// The command runs directly: the reported pid is the command itself and
// there is no wrapper process (BEHAVIOR.md 3.9, no helpers).
func TestStartExecsCommandDirectly(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Process(testenv.Codecs[0])
	r := procRun(t, c, procShell(`echo $$; cat /proc/$$/comm; ps -o comm= -p $PPID 2>/dev/null || cat /proc/$PPID/comm`))
	lines := strings.Split(strings.TrimSpace(r.stdout.String()), "\n")
	if len(lines) < 2 || lines[0] != strconv.Itoa(int(r.pid)) || lines[1] != "sh" {
		t.Fatalf("pid %d output %q", r.pid, lines)
	}
}

func TestCwdResolutionAndErrors(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		dir := t.TempDir()
		req := procCmd("pwd")
		req.Process.Cwd = &dir
		if r := procRun(t, c, req); r.stdout.String() != dir+"\n" {
			t.Fatalf("pwd %q want %q", r.stdout.String(), dir)
		}
		rel := "."
		req.Process.Cwd = &rel
		if r := procRun(t, c, req); r.stdout.String() != "/root\n" {
			t.Fatalf("relative cwd resolves against home: %q", r.stdout.String())
		}
		req.Process.Cwd = nil
		if r := procRun(t, c, req); r.stdout.String() != "/root\n" {
			t.Fatalf("no cwd and no default workdir is home: %q", r.stdout.String())
		}
		missing := dir + "/missing"
		req.Process.Cwd = &missing
		ce := procStartErr(t, c, connect.NewRequest(req))
		if ce.Code() != connect.CodeInvalidArgument || ce.Message() != "cwd '"+missing+"' does not exist" {
			t.Fatalf("missing cwd: %v", ce)
		}
		other := "~nobody/x"
		req.Process.Cwd = &other
		if ce := procStartErr(t, c, connect.NewRequest(req)); ce.Code() != connect.CodeInvalidArgument {
			t.Fatalf("~user cwd: %v", ce)
		}
	})
}

// PROTOCOL.md 1.6 and 3.1: uid, gid, HOME/USER/LOGNAME/PATH, env order.
func TestUserAndEnvironment(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		req := procShell(`id -u; id -g; echo "$HOME|$USER|$LOGNAME|$PATH|$A|$WRENN_SANDBOX"`)
		root := "/"
		req.Process.Cwd = &root
		req.Process.Envs = map[string]string{"A": "from-request", "USER": "override"}
		s, err := c.Start(procCtx(t, 20*time.Second), testenv.AsUser(connect.NewRequest(req), "nobody"))
		if err != nil {
			t.Fatal(err)
		}
		r := procCollect(t, s)
		want := "65534\n65534\n/nonexistent|override|nobody|" + os.Getenv("PATH") + "|from-request|false\n"
		if os.Getenv("PATH") == "" {
			want = strings.Replace(want, "||from", "|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|from", 1)
		}
		if r.stdout.String() != want {
			t.Fatalf("got %q want %q (stderr %q)", r.stdout.String(), want, r.stderr.String())
		}
		ce := procStartErr(t, c, testenv.AsUser(connect.NewRequest(procCmd("true")), "no-such-user"))
		if ce.Code() != connect.CodeUnauthenticated || !strings.Contains(ce.Message(), "no-such-user") {
			t.Fatalf("unknown user: %v", ce)
		}
	})
}

// E13: supplementary groups from /etc/group reach the child.
func TestSupplementaryGroups(t *testing.T) {
	user, gid := userWithSupplementaryGroup(t)
	e := testenv.Start(t, testenv.Options{})
	c := e.Process(testenv.Codecs[0])
	cwd := "/"
	req := procCmd("id", "-G")
	req.Process.Cwd = &cwd
	s, err := c.Start(procCtx(t, 20*time.Second), testenv.AsUser(connect.NewRequest(req), user))
	if err != nil {
		t.Fatal(err)
	}
	r := procCollect(t, s)
	if !strings.Contains(" "+strings.TrimSpace(r.stdout.String())+" ", " "+gid+" ") {
		t.Fatalf("user %s: id -G = %q, want group %s", user, r.stdout.String(), gid)
	}
}

func userWithSupplementaryGroup(t *testing.T) (string, string) {
	pw, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Skip("no /etc/passwd")
	}
	known := map[string]bool{}
	for _, l := range strings.Split(string(pw), "\n") {
		known[strings.SplitN(l, ":", 2)[0]] = true
	}
	f, err := os.Open("/etc/group")
	if err != nil {
		t.Skip("no /etc/group")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Split(sc.Text(), ":")
		if len(fl) < 4 || fl[3] == "" {
			continue
		}
		for _, m := range strings.Split(fl[3], ",") {
			if known[m] && m != "root" {
				return m, fl[2]
			}
		}
	}
	t.Skip("no user with a supplementary group on this machine")
	return "", ""
}

// Done-when: 8 concurrent commands do not mix output.
func TestConcurrentCommandsDoNotMix(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				script := fmt.Sprintf(`i=0; while [ $i -lt 2000 ]; do echo "line-%d-$i"; i=$((i+1)); done`, i)
				r := procRun(t, c, procShell(script))
				var want strings.Builder
				for j := range 2000 {
					fmt.Fprintf(&want, "line-%d-%d\n", i, j)
				}
				if r.stdout.String() != want.String() {
					errs <- fmt.Errorf("command %d: output mixed or lost (%d bytes)", i, r.stdout.Len())
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// Done-when: 5 MB arrive intact and in order (E7: checksum end to end).
func TestFiveMegabytesIntactInOrder(t *testing.T) {
	src := make([]byte, 5<<20)
	rand.Read(src)
	path := t.TempDir() + "/blob"
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(src)
	e := testenv.Start(t, testenv.Options{})
	// Both codecs and both transports; all four would only add race-detector time.
	for _, codec := range []testenv.Codec{testenv.Codecs[0], testenv.Codecs[3]} {
		r := procRun(t, e.Process(codec), procCmd("cat", path))
		if got := sha256.Sum256(r.stdout.Bytes()); got != want {
			t.Fatalf("%s: got %d bytes, sha %s", codec.Name, r.stdout.Len(), hex.EncodeToString(got[:8]))
		}
	}
}

// Done-when: UTF-8 split across read chunks arrives intact.
func TestUTF8SplitAcrossChunks(t *testing.T) {
	// 3-byte runes starting at an odd offset straddle every 32 KiB boundary.
	text := "x" + strings.Repeat("€", 50000)
	path := t.TempDir() + "/utf8"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		r := procRun(t, c, procCmd("cat", path))
		if !utf8.Valid(r.stdout.Bytes()) || r.stdout.String() != text {
			t.Fatalf("got %d bytes, valid %v", r.stdout.Len(), utf8.Valid(r.stdout.Bytes()))
		}
	})
}

// PROTOCOL.md 3.3.4: stdin is opt-in; SendInput, CloseStdin, StreamInput.
func TestStdin(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		// stdin=false: EOF at once.
		if r := procRun(t, c, procCmd("cat")); r.stdout.Len() != 0 || r.end.GetExitCode() != 0 {
			t.Fatalf("cat without stdin: %q %v", r.stdout.String(), r.end)
		}
		req := procShell("cat; echo EOF-SEEN; exec sleep 30")
		req.Stdin = nil // absent means enabled
		s, pid := procOpen(t, procCtx(t, 30*time.Second), c, req)
		defer s.Close()
		procKillAfter(t, pid)
		ctx := procCtx(t, 10*time.Second)
		if _, err := c.SendInput(ctx, connect.NewRequest(&pb.SendInputRequest{Process: procPid(pid),
			Input: &pb.ProcessInput{Input: &pb.ProcessInput_Stdin{Stdin: []byte("one\n")}}})); err != nil {
			t.Fatal(err)
		}
		procReadUntil(t, s, "one\n")
		in := c.StreamInput(ctx)
		in.Send(&pb.StreamInputRequest{Event: &pb.StreamInputRequest_Start{Start: &pb.StreamInputRequest_StartEvent{Process: procPid(pid)}}})
		var want strings.Builder
		for i := range 50 {
			line := fmt.Sprintf("chunk-%d\n", i)
			want.WriteString(line)
			in.Send(&pb.StreamInputRequest{Event: &pb.StreamInputRequest_Keepalive{Keepalive: &pb.StreamInputRequest_KeepAlive{}}})
			in.Send(&pb.StreamInputRequest{Event: &pb.StreamInputRequest_Data{Data: &pb.StreamInputRequest_DataEvent{
				Input: &pb.ProcessInput{Input: &pb.ProcessInput_Stdin{Stdin: []byte(line)}}}}})
		}
		if _, err := in.CloseAndReceive(); err != nil {
			t.Fatalf("stream input: %v", err)
		}
		for range 2 { // idempotent
			if _, err := c.CloseStdin(ctx, connect.NewRequest(&pb.CloseStdinRequest{Process: procPid(pid)})); err != nil {
				t.Fatal(err)
			}
		}
		if out := procReadUntil(t, s, "EOF-SEEN\n"); out != want.String()+"EOF-SEEN\n" {
			t.Fatalf("stream input order: %q", out)
		}
	})
}

// PROTOCOL.md 3.3.4 error table.
func TestInputErrors(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Process(testenv.Codecs[1])
	ctx := procCtx(t, 20*time.Second)
	s, pid := procOpen(t, ctx, c, procCmd("sleep", "30"))
	defer s.Close()
	procKillAfter(t, pid)
	send := func(in *pb.ProcessInput, sel *pb.ProcessSelector) error {
		_, err := c.SendInput(ctx, connect.NewRequest(&pb.SendInputRequest{Process: sel, Input: in}))
		return err
	}
	cases := []struct {
		name string
		err  error
		code connect.Code
	}{
		{"stdin disabled", send(&pb.ProcessInput{Input: &pb.ProcessInput_Stdin{Stdin: []byte("x")}}, procPid(pid)), connect.CodeInternal},
		{"pty to pipe process", send(&pb.ProcessInput{Input: &pb.ProcessInput_Pty{Pty: []byte("x")}}, procPid(pid)), connect.CodeInternal},
		{"input unset", send(&pb.ProcessInput{}, procPid(pid)), connect.CodeUnimplemented},
		{"unknown pid", send(&pb.ProcessInput{Input: &pb.ProcessInput_Stdin{Stdin: []byte("x")}}, procPid(1<<30)), connect.CodeNotFound},
		{"no selector", send(&pb.ProcessInput{Input: &pb.ProcessInput_Stdin{Stdin: []byte("x")}}, nil), connect.CodeUnimplemented},
	}
	_, err := c.Update(ctx, connect.NewRequest(&pb.UpdateRequest{Process: procPid(pid), Pty: &pb.PTY{Size: &pb.PTY_Size{Cols: 1, Rows: 1}}}))
	cases = append(cases, struct {
		name string
		err  error
		code connect.Code
	}{"resize non-pty", err, connect.CodeInternal})
	in := c.StreamInput(ctx)
	in.Send(&pb.StreamInputRequest{Event: &pb.StreamInputRequest_Data{Data: &pb.StreamInputRequest_DataEvent{
		Input: &pb.ProcessInput{Input: &pb.ProcessInput_Stdin{Stdin: []byte("x")}}}}})
	_, err = in.CloseAndReceive()
	cases = append(cases, struct {
		name string
		err  error
		code connect.Code
	}{"stream data before start", err, connect.CodeFailedPrecondition})
	err = procSignal(t, c, procPid(pid), pb.Signal_SIGNAL_UNSPECIFIED)
	cases = append(cases, struct {
		name string
		err  error
		code connect.Code
	}{"bad signal", err, connect.CodeUnimplemented})
	for _, tc := range cases {
		if procCode(tc.err) != tc.code {
			t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.code)
		}
	}
	if err := procSignal(t, c, procPid(1<<30), pb.Signal_SIGNAL_SIGKILL); procCode(err) != connect.CodeNotFound {
		t.Errorf("signal unknown pid: %v", err)
	}
	if _, err := c.Update(ctx, connect.NewRequest(&pb.UpdateRequest{Process: procPid(pid)})); err != nil {
		t.Errorf("update without pty is a no-op: %v", err)
	}
}

package server_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
	"github.com/sandboxd/envd/internal/testenv"
)

func connectTo(t testing.TB, ctx context.Context, c processconnect.ProcessClient, sel *pb.ProcessSelector) *connect.ServerStreamForClient[pb.ConnectResponse] {
	t.Helper()
	s, err := c.Connect(ctx, connect.NewRequest(&pb.ConnectRequest{Process: sel}))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Done-when: a background process survives its Start stream being closed
// and is reattached by Connect (PROTOCOL.md 3.2, 3.3.2).
func TestBackgroundSurvivesStreamCloseAndReattaches(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		ctx, cancel := context.WithCancel(procCtx(t, 30*time.Second))
		s, pid := procOpen(t, ctx, c, procShell(`read x < /dev/zero & i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.05; done`))
		procKillAfter(t, pid)
		procReadUntil(t, s, "tick-1\n")
		cancel()
		s.Close()
		cs := connectTo(t, procCtx(t, 30*time.Second), c, procPid(pid))
		defer cs.Close()
		if !cs.Receive() || cs.Msg().GetEvent().GetStart().GetPid() != pid {
			t.Fatalf("connect: first event %v (%v)", cs.Msg(), cs.Err())
		}
		procReadUntil(t, cs, "tick-")
		if err := procSignal(t, c, procPid(pid), pb.Signal_SIGNAL_SIGKILL); err != nil {
			t.Fatal(err)
		}
		r := procCollect(t, &startedStream{cs, pid})
		if r.end == nil || r.end.GetStatus() != "signal: killed" {
			t.Fatalf("end after kill: %v (err %v)", r.end, r.err)
		}
	})
}

// startedStream replays a start event already consumed, so procCollect's
// order check applies to the rest of a stream.
type startedStream struct {
	*connect.ServerStreamForClient[pb.ConnectResponse]
	pid uint32
}

func (s *startedStream) Receive() bool {
	if s.pid != 0 {
		return true
	}
	return s.ServerStreamForClient.Receive()
}

func (s *startedStream) Msg() *pb.ConnectResponse {
	if s.pid != 0 {
		pid := s.pid
		s.pid = 0
		return &pb.ConnectResponse{Event: &pb.ProcessEvent{Event: &pb.ProcessEvent_Start{Start: &pb.ProcessEvent_StartEvent{Pid: pid}}}}
	}
	return s.ServerStreamForClient.Msg()
}

// E10 and the group-kill requirement: SIGKILL ends the stream although a
// grandchild holds the pipe, and the grandchild dies with its parent.
func TestKillEndsStreamWhileGrandchildHoldsPipe(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		s, pid := procOpen(t, procCtx(t, 30*time.Second), c, procShell(`sleep 1000 & echo child=$!; sleep 1000`))
		defer s.Close()
		procKillAfter(t, pid)
		out := procReadUntil(t, s, "\n")
		child, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(out, "child=")))
		if err != nil {
			t.Fatalf("output %q", out)
		}
		if err := procSignal(t, c, procPid(pid), pb.Signal_SIGNAL_SIGKILL); err != nil {
			t.Fatal(err)
		}
		var end *pb.ProcessEvent_EndEvent
		for s.Receive() {
			if e := s.Msg().GetEvent().GetEnd(); e != nil {
				end = e
			}
		}
		if end.GetStatus() != "signal: killed" || end.GetExitCode() != -1 || s.Err() != nil {
			t.Fatalf("end %v err %v", end, s.Err())
		}
		procWaitGone(t, child, 5*time.Second)
	})
}

// SIGTERM also reaches the group and ends the stream.
func TestTermReachesTheGroup(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Process(testenv.Codecs[0])
	s, pid := procOpen(t, procCtx(t, 30*time.Second), c, procShell(`sleep 1000 & echo $!; wait`))
	defer s.Close()
	procKillAfter(t, pid)
	child, _ := strconv.Atoi(strings.TrimSpace(procReadUntil(t, s, "\n")))
	if err := procSignal(t, c, procPid(pid), pb.Signal_SIGNAL_SIGTERM); err != nil {
		t.Fatal(err)
	}
	procWaitGone(t, child, 5*time.Second)
	for s.Receive() {
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

// Done-when: PTY size follows Update; Ctrl-C interrupts the foreground
// job; TERM is set; the PTY exit yields a clean end (E8, E9).
func TestPTYSizeUpdateAndCtrlC(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		req := procCmd("/bin/bash", "--norc", "--noprofile", "-i")
		req.Pty = &pb.PTY{Size: &pb.PTY_Size{Cols: 80, Rows: 24}}
		req.Process.Envs = map[string]string{"PS1": "$ "}
		ctx := procCtx(t, 30*time.Second)
		s, pid := procOpen(t, ctx, c, req)
		defer s.Close()
		procKillAfter(t, pid)
		input := func(text string) {
			t.Helper()
			if _, err := c.SendInput(ctx, connect.NewRequest(&pb.SendInputRequest{Process: procPid(pid),
				Input: &pb.ProcessInput{Input: &pb.ProcessInput_Pty{Pty: []byte(text)}}})); err != nil {
				t.Fatal(err)
			}
		}
		input("echo size=$(stty size) term=$TERM\n")
		procReadUntil(t, s, "size=24 80 term=xterm-256color")
		if _, err := c.Update(ctx, connect.NewRequest(&pb.UpdateRequest{Process: procPid(pid),
			Pty: &pb.PTY{Size: &pb.PTY_Size{Cols: 132, Rows: 43}}})); err != nil {
			t.Fatal(err)
		}
		input("echo size=$(stty size)\n")
		procReadUntil(t, s, "size=43 132")
		// The job itself prints the marker: by then it is the foreground
		// process group, so the ^C cannot reach bash between jobs.
		input("sh -c 'echo RE\"\"ADY; exec sleep 1000'\n")
		procReadUntil(t, s, "READY\r\n")
		input("\x03")
		input("echo after-$?\n")
		procReadUntil(t, s, "after-130")
		_, err := c.CloseStdin(ctx, connect.NewRequest(&pb.CloseStdinRequest{Process: procPid(pid)}))
		if procCode(err) != connect.CodeUnknown {
			t.Fatalf("CloseStdin on a PTY: %v", err)
		}
		_, err = c.SendInput(ctx, connect.NewRequest(&pb.SendInputRequest{Process: procPid(pid),
			Input: &pb.ProcessInput{Input: &pb.ProcessInput_Stdin{Stdin: []byte("x")}}}))
		if procCode(err) != connect.CodeInternal {
			t.Fatalf("stdin to a PTY process: %v", err)
		}
		input("exit 7\n")
		var end *pb.ProcessEvent_EndEvent
		for s.Receive() {
			if e := s.Msg().GetEvent().GetEnd(); e != nil {
				end = e
			}
		}
		if s.Err() != nil || end.GetExitCode() != 7 {
			t.Fatalf("pty end %v err %v", end, s.Err())
		}
	})
}

// E43: zero, negative and garbage keepalive intervals never crash; a
// valid one produces keepalive events after start (PROTOCOL.md 3.3.7).
func TestKeepaliveHeaderValues(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Process(testenv.Codecs[1])
	for _, v := range []string{"0", "-5", "garbage", "99999999999999999999"} {
		req := connect.NewRequest(procShell("echo ok"))
		req.Header().Set("Keepalive-Ping-Interval", v)
		s, err := c.Start(procCtx(t, 10*time.Second), req)
		if err != nil {
			t.Fatal(err)
		}
		if r := procCollect(t, s); r.err != nil || r.stdout.String() != "ok\n" {
			t.Fatalf("interval %q: %v %q", v, r.err, r.stdout.String())
		}
		creq := connect.NewRequest(&pb.ConnectRequest{Process: procPid(1 << 30)})
		creq.Header().Set("Keepalive-Ping-Interval", v)
		cs, _ := c.Connect(procCtx(t, 10*time.Second), creq)
		for cs.Receive() {
		}
		if procCode(cs.Err()) != connect.CodeNotFound {
			t.Fatalf("connect with interval %q: %v", v, cs.Err())
		}
	}
	req := connect.NewRequest(procShell("sleep 2.5; echo done"))
	req.Header().Set("Keepalive-Ping-Interval", "1")
	s, err := c.Start(procCtx(t, 10*time.Second), req)
	if err != nil {
		t.Fatal(err)
	}
	if r := procCollect(t, s); r.keepalives < 1 || r.stdout.String() != "done\n" {
		t.Fatalf("keepalives %d out %q err %v", r.keepalives, r.stdout.String(), r.err)
	}
}

// PROTOCOL.md 3.3.1: Connect-Timeout-Ms kills the process (group) and ends
// the stream with deadline_exceeded; a malformed value is invalid.
func TestConnectTimeoutKillsProcess(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		req := connect.NewRequest(procShell("echo started; exec sleep 1000"))
		req.Header().Set("Connect-Timeout-Ms", "400")
		s, err := c.Start(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		r := procCollect(t, s)
		procKillAfter(t, r.pid)
		if procCode(r.err) != connect.CodeDeadlineExceeded && r.end.GetStatus() != "signal: killed" {
			t.Fatalf("stream end: err %v end %v", r.err, r.end)
		}
		procWaitGone(t, int(r.pid), 5*time.Second)
		// No context deadline: the client would replace the header.
		bad := connect.NewRequest(procCmd("true"))
		bad.Header().Set("Connect-Timeout-Ms", "12x")
		bs, err := c.Start(context.Background(), bad)
		if err == nil {
			for bs.Receive() {
				t.Fatalf("event despite a malformed timeout: %v", bs.Msg())
			}
			err = bs.Err()
		}
		if procCode(err) != connect.CodeInvalidArgument {
			t.Fatalf("malformed timeout: %v", err)
		}
	})
}

// E6: with three tagged processes each is reachable by its tag; List shows
// config and tag (PROTOCOL.md 3.3.3).
func TestSeveralTaggedProcessesEachAddressable(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		ctx := procCtx(t, 30*time.Second)
		pids := map[string]uint32{}
		suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
		for _, name := range []string{"a", "b", "c"} {
			tag := name + "-" + suffix
			req := procCmd("sleep", "1000")
			req.Tag = &tag
			req.Process.Envs = map[string]string{"K": name}
			s, pid := procOpen(t, ctx, c, req)
			defer s.Close()
			procKillAfter(t, pid)
			pids[tag] = pid
		}
		list, err := c.List(ctx, connect.NewRequest(&pb.ListRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, p := range list.Msg.GetProcesses() {
			if want, ok := pids[p.GetTag()]; ok {
				seen++
				if p.GetPid() != want || p.GetConfig().GetCmd() != "sleep" || p.GetConfig().GetArgs()[0] != "1000" ||
					p.GetConfig().GetEnvs()["K"] != p.GetTag()[:1] || p.GetConfig().Cwd != nil {
					t.Errorf("list entry %v", p)
				}
			}
		}
		if seen != 3 {
			t.Fatalf("list shows %d of 3 tagged processes", seen)
		}
		for tag, pid := range pids {
			cs := connectTo(t, ctx, c, procTag(tag))
			if !cs.Receive() || cs.Msg().GetEvent().GetStart().GetPid() != pid {
				t.Fatalf("connect by tag %s: %v %v", tag, cs.Msg(), cs.Err())
			}
			if err := procSignal(t, c, procTag(tag), pb.Signal_SIGNAL_SIGKILL); err != nil {
				t.Fatalf("kill by tag %s: %v", tag, err)
			}
			for cs.Receive() {
			}
			cs.Close()
		}
	})
}

// E14: exit retained for a late Connect: start then end with the code.
func TestLateConnectGetsRetainedExit(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		tag := "late-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		req := procShell("exit 5")
		req.Tag = &tag
		r := procRun(t, c, req)
		for _, sel := range []*pb.ProcessSelector{procPid(r.pid), procTag(tag)} {
			cr := procCollect(t, connectTo(t, procCtx(t, 10*time.Second), c, sel))
			if cr.err != nil || cr.pid != r.pid || cr.end.GetExitCode() != 5 || cr.end.GetError() != "exit status 5" {
				t.Fatalf("late connect %v: pid %d end %v err %v", sel, cr.pid, cr.end, cr.err)
			}
		}
		cs := connectTo(t, procCtx(t, 10*time.Second), c, procPid(1<<30))
		for cs.Receive() {
			t.Fatal("event for an unknown pid")
		}
		if procCode(cs.Err()) != connect.CodeNotFound || !strings.Contains(cs.Err().Error(), "process with pid 1073741824 not found") {
			t.Fatalf("unknown pid: %v", cs.Err())
		}
		cs = connectTo(t, procCtx(t, 10*time.Second), c, &pb.ProcessSelector{})
		for cs.Receive() {
		}
		if procCode(cs.Err()) != connect.CodeUnimplemented {
			t.Fatalf("empty selector: %v", cs.Err())
		}
	})
}

// E1: two subscribers, one drops mid-output; the other keeps receiving and
// a new Connect works.
func TestDroppedSubscriberDoesNotStallOthers(t *testing.T) {
	procForCodecs(t, func(t *testing.T, c processconnect.ProcessClient) {
		ctx := procCtx(t, 30*time.Second)
		s, pid := procOpen(t, ctx, c, procShell(`i=0; while :; do echo line-$i; i=$((i+1)); done`))
		defer s.Close()
		procKillAfter(t, pid)
		dropCtx, drop := context.WithCancel(ctx)
		other := connectTo(t, dropCtx, c, procPid(pid))
		other.Receive()
		drop() // this subscriber stops reading and goes away
		procReadUntil(t, s, "line-")
		var got int
		for got < 256<<10 && s.Receive() {
			got += len(s.Msg().GetEvent().GetData().GetStdout())
		}
		if got < 256<<10 {
			t.Fatalf("remaining subscriber stalled after %d bytes: %v", got, s.Err())
		}
		late := connectTo(t, ctx, c, procPid(pid))
		procReadUntil(t, &startedStream{late, 0}, "line-")
		late.Close()
		other.Close()
		if err := procSignal(t, c, procPid(pid), pb.Signal_SIGNAL_SIGKILL); err != nil {
			t.Fatal(err)
		}
	})
}

// E4/E5: cancelling Start and Connect at any moment, in a loop, under the
// race detector, neither panics nor leaves handlers behind.
func TestCancelStreamsInALoop(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	for _, codec := range testenv.Codecs {
		c := e.Process(codec)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithCancel(context.Background())
				s, err := c.Start(ctx, connect.NewRequest(procShell("echo x; yes | head -c 200000")))
				if i%2 == 0 {
					cancel()
				}
				if err == nil {
					s.Receive()
					cancel()
					s.Close()
				}
				cancel()
			}()
		}
		wg.Wait()
	}
	resp, err := e.HTTP.Get(e.URL + "/health")
	if err != nil || resp.StatusCode >= 300 && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("daemon unhealthy after cancels: %v", err)
	}
	resp.Body.Close()
}

// W2: subscribing in a tight loop around exit always completes.
func TestSubscribeAroundExitCompletes(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Process(testenv.Codecs[0])
	for range 20 {
		s, pid := procOpen(t, procCtx(t, 10*time.Second), c, procShell("exit 2"))
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cs, err := c.Connect(procCtx(t, 10*time.Second), connect.NewRequest(&pb.ConnectRequest{Process: procPid(pid)}))
				if err != nil {
					return
				}
				defer cs.Close()
				var end *pb.ProcessEvent_EndEvent
				for cs.Receive() {
					if x := cs.Msg().GetEvent().GetEnd(); x != nil {
						end = x
					}
				}
				if end.GetExitCode() != 2 {
					t.Errorf("connect around exit: end %v err %v", end, cs.Err())
				}
			}()
		}
		wg.Wait()
		for s.Receive() {
		}
		s.Close()
	}
}

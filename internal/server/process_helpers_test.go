package server_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"

	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
	"github.com/sandboxd/envd/internal/testenv"
)

// procResult is everything one process stream delivered.
type procResult struct {
	pid        uint32
	stdout     bytes.Buffer
	stderr     bytes.Buffer
	pty        bytes.Buffer
	end        *pb.ProcessEvent_EndEvent
	keepalives int
	err        error // the stream's final error
}

// procStream is the common shape of Start and Connect client streams.
type procStream interface {
	Receive() bool
	Err() error
	Close() error
}

func procEvent(s procStream) *pb.ProcessEvent {
	switch v := s.(type) {
	case interface{ Msg() *pb.StartResponse }:
		return v.Msg().GetEvent()
	case interface{ Msg() *pb.ConnectResponse }:
		return v.Msg().GetEvent()
	}
	panic("unknown stream")
}

// collect reads a stream to its end, checking the event order contract:
// start first, exactly one end, nothing after it (PROTOCOL.md 3.3.1).
func procCollect(t testing.TB, s procStream) *procResult {
	t.Helper()
	r := &procResult{}
	first := true
	for s.Receive() {
		ev := procEvent(s)
		if first {
			st, ok := ev.GetEvent().(*pb.ProcessEvent_Start)
			if !ok {
				t.Fatalf("first event is %T, want start", ev.GetEvent())
			}
			r.pid = st.Start.GetPid()
			first = false
			continue
		}
		if r.end != nil {
			t.Fatalf("event after end: %v", ev)
		}
		switch e := ev.GetEvent().(type) {
		case *pb.ProcessEvent_Start:
			t.Fatalf("second start event")
		case *pb.ProcessEvent_Data:
			r.stdout.Write(e.Data.GetStdout())
			r.stderr.Write(e.Data.GetStderr())
			r.pty.Write(e.Data.GetPty())
		case *pb.ProcessEvent_End:
			r.end = e.End
		case *pb.ProcessEvent_Keepalive:
			r.keepalives++
		}
	}
	r.err = s.Err()
	return r
}

func procCmd(name string, args ...string) *pb.StartRequest {
	return &pb.StartRequest{Process: &pb.ProcessConfig{Cmd: name, Args: args}, Stdin: new(bool)}
}

func procShell(script string) *pb.StartRequest { return procCmd("/bin/sh", "-c", script) }

func procCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// run starts req and collects the whole stream.
func procRun(t testing.TB, c processconnect.ProcessClient, req *pb.StartRequest) *procResult {
	t.Helper()
	s, err := c.Start(procCtx(t, 60*time.Second), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer s.Close()
	r := procCollect(t, s)
	if r.err != nil {
		t.Fatalf("stream error: %v", r.err)
	}
	if r.end == nil {
		t.Fatalf("no end event")
	}
	return r
}

// startErr starts req and returns the error the stream ends with, which
// must come without any event before it.
func procStartErr(t testing.TB, c processconnect.ProcessClient, req *connect.Request[pb.StartRequest]) *connect.Error {
	t.Helper()
	s, err := c.Start(procCtx(t, 20*time.Second), req)
	if err == nil {
		for s.Receive() {
			t.Fatalf("unexpected event %v", s.Msg())
		}
		err = s.Err()
		s.Close()
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want a connect error, got %v", err)
	}
	return ce
}

// open starts req and returns the stream after its start event.
func procOpen(t testing.TB, ctx context.Context, c processconnect.ProcessClient, req *pb.StartRequest) (*connect.ServerStreamForClient[pb.StartResponse], uint32) {
	t.Helper()
	s, err := c.Start(ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if !s.Receive() {
		t.Fatalf("no start event: %v", s.Err())
	}
	pid := s.Msg().GetEvent().GetStart().GetPid()
	if pid == 0 {
		t.Fatalf("first event is not start: %v", s.Msg())
	}
	return s, pid
}

// readUntil receives data events until the collected stdout/pty contains want.
func procReadUntil(t testing.TB, s procStream, want string) string {
	t.Helper()
	var got strings.Builder
	for s.Receive() {
		d := procEvent(s).GetData()
		got.Write(d.GetStdout())
		got.Write(d.GetPty())
		if strings.Contains(got.String(), want) {
			return got.String()
		}
		if procEvent(s).GetEnd() != nil {
			break
		}
	}
	t.Fatalf("stream ended before %q; got %q (err %v)", want, got.String(), s.Err())
	return ""
}

func procSignal(t testing.TB, c processconnect.ProcessClient, sel *pb.ProcessSelector, sig pb.Signal) error {
	t.Helper()
	_, err := c.SendSignal(procCtx(t, 10*time.Second), connect.NewRequest(&pb.SendSignalRequest{Process: sel, Signal: sig}))
	return err
}

func procPid(pid uint32) *pb.ProcessSelector {
	return &pb.ProcessSelector{Selector: &pb.ProcessSelector_Pid{Pid: pid}}
}

func procTag(tag string) *pb.ProcessSelector {
	return &pb.ProcessSelector{Selector: &pb.ProcessSelector_Tag{Tag: tag}}
}

// killAfter makes sure a process group started by a test is gone at the end.
func procKillAfter(t testing.TB, pid uint32) {
	t.Cleanup(func() { _ = syscall.Kill(-int(pid), syscall.SIGKILL) })
}

// procAlive reports whether pid exists and is not a zombie.
func procAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}

// procWaitGone waits (on a pidfd, no polling) until pid has exited.
func procWaitGone(t testing.TB, pid int, d time.Duration) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // already gone
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(d/time.Millisecond))
	if err != nil || n == 0 {
		t.Fatalf("pid %d still alive after %v", pid, d)
	}
}

func procForCodecs(t *testing.T, fn func(t *testing.T, c processconnect.ProcessClient)) {
	e := testenv.Start(t, testenv.Options{})
	for _, codec := range testenv.Codecs {
		t.Run(codec.Name, func(t *testing.T) { fn(t, e.Process(codec)) })
	}
}

func procCode(err error) connect.Code { return connect.CodeOf(err) }

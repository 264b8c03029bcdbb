package compat

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
	"github.com/sandboxd/envd/internal/testenv"
)

// Codec parity for all eight process RPCs (issue 8): each scenario runs
// once per variant (proto and JSON codecs over HTTP/1.1 and h2c, plus gRPC
// and gRPC-Web) and every transcript must equal the binary-over-HTTP/1.1
// one, errors included. Both streams (Start, Connect) and the client stream
// (StreamInput) are covered.
func TestCodecParityProcess(t *testing.T) {
	forFlavours(t, func(t *testing.T, flavor string) {
		e := testenv.Start(t, testenv.Options{Args: []string{"--flavor", flavor}})
		for _, sc := range []struct {
			name string
			fn   func(t *testing.T, c processconnect.ProcessClient, tr *transcript)
		}{
			{"Start", parityStart},
			{"Connect", parityConnect},
			{"List", parityList},
			{"Update", parityUpdate},
			{"SendInput", paritySendInput},
			{"StreamInput+CloseStdin", parityStreamInput},
			{"SendSignal", paritySendSignal},
		} {
			t.Run(sc.name, func(t *testing.T) {
				parity(t, e, func(t *testing.T, v variant) *transcript {
					tr := &transcript{}
					sc.fn(t, v.process(e), tr)
					return tr
				})
			})
		}
	})
}

func shell(script string) *pb.ProcessConfig {
	return &pb.ProcessConfig{Cmd: "/bin/sh", Args: []string{"-c", script}}
}

// run starts req and returns the stream with its start event consumed.
func run(t *testing.T, c processconnect.ProcessClient, req *pb.StartRequest) (eventStream, func() *pb.ProcessEvent, uint32) {
	t.Helper()
	s, err := c.Start(ctxFor(t, 20*time.Second), connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	es, msg := startEvents(s)
	return es, msg, firstEvent(t, es, msg)
}

// finish records the rest of a stream whose start event (and then the
// events in seen) were consumed.
func finish(t *testing.T, tr *transcript, what string, es eventStream, msg func() *pb.ProcessEvent, seen ...*pb.ProcessEvent) {
	t.Helper()
	evs, err := drain(es, msg)
	start := &pb.ProcessEvent{Event: &pb.ProcessEvent_Start{Start: &pb.ProcessEvent_StartEvent{Pid: 1}}}
	tr.msgs(what, normEvents(t, append(append([]*pb.ProcessEvent{start}, seen...), evs...)), err)
}

// until reads events until the output so far contains want, so a signal
// sent next cannot race the output (E2B may cut output short on a kill).
func until(t *testing.T, es eventStream, msg func() *pb.ProcessEvent, want string) []*pb.ProcessEvent {
	t.Helper()
	var evs []*pb.ProcessEvent
	var out []byte
	for es.Receive() {
		ev := msg()
		evs = append(evs, ev)
		d := ev.GetData()
		out = append(append(append(out, d.GetStdout()...), d.GetStderr()...), d.GetPty()...)
		if strings.Contains(string(out), want) {
			return evs
		}
	}
	t.Fatalf("stream ended before output %q (got %q): %v", want, out, es.Err())
	return nil
}

// startAll records a whole Start stream, events and final error.
func startAll(t *testing.T, c processconnect.ProcessClient, tr *transcript, what string, req *pb.StartRequest) {
	t.Helper()
	s, err := c.Start(ctxFor(t, 20*time.Second), connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := drain(startEvents(s))
	tr.msgs(what, normEvents(t, evs), err)
}

func kill(t *testing.T, c processconnect.ProcessClient, tr *transcript, s *pb.ProcessSelector) {
	t.Helper()
	r, err := c.SendSignal(ctxFor(t, 10*time.Second), connect.NewRequest(&pb.SendSignalRequest{Process: s, Signal: pb.Signal_SIGNAL_SIGKILL}))
	tr.add("SendSignal SIGKILL", msgOf(r), err)
}

func parityStart(t *testing.T, c processconnect.ProcessClient, tr *transcript) {
	req := &pb.StartRequest{
		Process: shell(`printf 'out\n'; printf 'err\n' >&2; printf '%s|%s|%s' "$A" "$PWD" "$WRENN_SANDBOX$E2B_SANDBOX"; exit 3`),
		Tag:     ptr("parity-start"), Stdin: ptr(false),
	}
	req.Process.Envs = map[string]string{"A": "1"}
	req.Process.Cwd = ptr("/tmp")
	startAll(t, c, tr, "Start exit 3", req)
	startAll(t, c, tr, "Start exit 0, no output", &pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "true"}})
	startAll(t, c, tr, "Start missing command", &pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "no-such-command-envd-compat"}})
	startAll(t, c, tr, "Start in a pty", &pb.StartRequest{
		Process: shell(`stty size; printf 'é done'`),
		Pty:     &pb.PTY{Size: &pb.PTY_Size{Cols: 80, Rows: 24}},
	})
	bad := proto.Clone(req).(*pb.StartRequest)
	bad.Process.Cwd = ptr("/nonexistent-envd-compat")
	startAll(t, c, tr, "Start missing cwd", bad)
	bad.Process.Cwd = ptr("~no-such-user-envd/x")
	startAll(t, c, tr, "Start ~user cwd", bad)
}

func parityConnect(t *testing.T, c processconnect.ProcessClient, tr *transcript) {
	const tag = "parity-connect"
	s, _, pid := run(t, c, &pb.StartRequest{Process: shell(`read l; echo "got-$l"; exit 5`), Tag: ptr(tag)})
	s.Close() // the process outlives its Start stream (PROTOCOL.md 3.2)
	for _, selector := range []*pb.ProcessSelector{selPid(pid), sel(tag)} {
		cs, err := c.Connect(ctxFor(t, 20*time.Second), connect.NewRequest(&pb.ConnectRequest{Process: selector}))
		if err != nil {
			t.Fatal(err)
		}
		ces, msg := connectEvents(cs)
		if got := firstEvent(t, ces, msg); got != pid {
			t.Fatalf("Connect start pid %d, want %d", got, pid)
		}
		if selector.GetPid() != 0 {
			cs.Close() // the second subscriber, by tag, reads the output
			continue
		}
		r, err := c.SendInput(ctxFor(t, 10*time.Second), connect.NewRequest(&pb.SendInputRequest{
			Process: selPid(pid), Input: &pb.ProcessInput{Input: &pb.ProcessInput_Stdin{Stdin: []byte("x\n")}}}))
		tr.add("SendInput", msgOf(r), err)
		finish(t, tr, "Connect by tag", ces, msg)
	}
	for _, x := range []struct {
		what     string
		selector *pb.ProcessSelector
	}{{"Connect unknown pid", selPid(99999999)}, {"Connect unknown tag", sel("parity-nobody")}, {"Connect no selector", &pb.ProcessSelector{}}} {
		what := x.what
		cs, err := c.Connect(ctxFor(t, 10*time.Second), connect.NewRequest(&pb.ConnectRequest{Process: x.selector}))
		if err != nil {
			t.Fatal(err)
		}
		evs, err := drain(connectEvents(cs))
		tr.msgs(what, normEvents(t, evs), err)
	}
}

func parityList(t *testing.T, c processconnect.ProcessClient, tr *transcript) {
	const tag = "parity-list"
	cfg := &pb.ProcessConfig{Cmd: "sleep", Args: []string{"60"}, Envs: map[string]string{"K": "v", "Z": ""}, Cwd: ptr("/tmp")}
	s, msg, pid := run(t, c, &pb.StartRequest{Process: cfg, Tag: ptr(tag), Stdin: ptr(false)})
	untagged, umsg, upid := run(t, c, &pb.StartRequest{Process: shell("exec sleep 60"), Stdin: ptr(false)})
	r, err := c.List(ctxFor(t, 10*time.Second), connect.NewRequest(&pb.ListRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	mine := &pb.ListResponse{}
	for _, p := range r.Msg.GetProcesses() {
		if p.GetPid() == pid || p.GetPid() == upid {
			p.Pid = 0
			mine.Processes = append(mine.Processes, p)
		}
	}
	if len(mine.Processes) == 2 && mine.Processes[0].Tag == nil { // table order is unspecified
		mine.Processes[0], mine.Processes[1] = mine.Processes[1], mine.Processes[0]
	}
	tr.add("List (own processes)", mine, nil)
	kill(t, c, tr, selPid(pid))
	finish(t, tr, "Start stream after kill", s, msg)
	kill(t, c, tr, selPid(upid))
	finish(t, tr, "untagged after kill", untagged, umsg)
}

func parityUpdate(t *testing.T, c processconnect.ProcessClient, tr *transcript) {
	const tag = "parity-update"
	s, msg, _ := run(t, c, &pb.StartRequest{Process: shell("read l; stty size"), Tag: ptr(tag),
		Pty: &pb.PTY{Size: &pb.PTY_Size{Cols: 80, Rows: 24}}})
	ctx := ctxFor(t, 10*time.Second)
	r, err := c.Update(ctx, connect.NewRequest(&pb.UpdateRequest{Process: sel(tag), Pty: &pb.PTY{Size: &pb.PTY_Size{Cols: 100, Rows: 30}}}))
	tr.add("Update pty 100x30", msgOf(r), err)
	r, err = c.Update(ctx, connect.NewRequest(&pb.UpdateRequest{Process: sel(tag)}))
	tr.add("Update without pty", msgOf(r), err)
	in, err := c.SendInput(ctx, connect.NewRequest(&pb.SendInputRequest{Process: sel(tag), Input: &pb.ProcessInput{Input: &pb.ProcessInput_Pty{Pty: []byte("\n")}}}))
	tr.add("SendInput pty", msgOf(in), err)
	finish(t, tr, "pty output", s, msg)

	plain, pmsg, ppid := run(t, c, &pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "sleep", Args: []string{"60"}}, Stdin: ptr(false)})
	r, err = c.Update(ctx, connect.NewRequest(&pb.UpdateRequest{Process: selPid(ppid), Pty: &pb.PTY{Size: &pb.PTY_Size{Cols: 1, Rows: 1}}}))
	tr.add("Update non-pty", msgOf(r), err)
	r, err = c.Update(ctx, connect.NewRequest(&pb.UpdateRequest{Process: sel("parity-nobody"), Pty: &pb.PTY{}}))
	tr.add("Update unknown tag", msgOf(r), err)
	kill(t, c, tr, selPid(ppid))
	finish(t, tr, "non-pty after kill", plain, pmsg)
}

func paritySendInput(t *testing.T, c processconnect.ProcessClient, tr *transcript) {
	const tag = "parity-sendinput"
	ctx := ctxFor(t, 10*time.Second)
	send := func(what string, s *pb.ProcessSelector, in *pb.ProcessInput) {
		r, err := c.SendInput(ctx, connect.NewRequest(&pb.SendInputRequest{Process: s, Input: in}))
		tr.add(what, msgOf(r), err)
	}
	stdin := func(b string) *pb.ProcessInput {
		return &pb.ProcessInput{Input: &pb.ProcessInput_Stdin{Stdin: []byte(b)}}
	}
	s, msg, _ := run(t, c, &pb.StartRequest{Process: shell("head -c 6; echo"), Tag: ptr(tag)})
	send("SendInput abc", sel(tag), stdin("abc"))
	send("SendInput def", sel(tag), stdin("def"))
	finish(t, tr, "echoed input", s, msg)

	off, omsg, opid := run(t, c, &pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "sleep", Args: []string{"60"}}, Stdin: ptr(false)})
	send("SendInput stdin disabled", selPid(opid), stdin("x"))
	send("SendInput pty bytes to a pipe process", selPid(opid), &pb.ProcessInput{Input: &pb.ProcessInput_Pty{Pty: []byte("x")}})
	send("SendInput no input", selPid(opid), &pb.ProcessInput{})
	send("SendInput unknown pid", selPid(99999999), stdin("x"))
	r, err := c.CloseStdin(ctx, connect.NewRequest(&pb.CloseStdinRequest{Process: selPid(opid)}))
	tr.add("CloseStdin stdin disabled", msgOf(r), err)
	kill(t, c, tr, selPid(opid))
	finish(t, tr, "after kill", off, omsg)

	pty, pmsg, ppid := run(t, c, &pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "sleep", Args: []string{"60"}},
		Pty: &pb.PTY{Size: &pb.PTY_Size{Cols: 80, Rows: 24}}})
	send("SendInput stdin bytes to a pty", selPid(ppid), stdin("x"))
	r, err = c.CloseStdin(ctx, connect.NewRequest(&pb.CloseStdinRequest{Process: selPid(ppid)}))
	tr.add("CloseStdin on a pty", msgOf(r), err)
	kill(t, c, tr, selPid(ppid))
	finish(t, tr, "pty after kill", pty, pmsg)
}

func parityStreamInput(t *testing.T, c processconnect.ProcessClient, tr *transcript) {
	const tag = "parity-stream"
	// After stdin closes, cat ends but the process lives on, so the second
	// CloseStdin meets a live process (idempotence, not a race with exit).
	s, msg, _ := run(t, c, &pb.StartRequest{Process: shell("cat; exec sleep 60"), Tag: ptr(tag)})
	ctx := ctxFor(t, 10*time.Second)
	data := func(b string) *pb.StreamInputRequest {
		return &pb.StreamInputRequest{Event: &pb.StreamInputRequest_Data{Data: &pb.StreamInputRequest_DataEvent{
			Input: &pb.ProcessInput{Input: &pb.ProcessInput_Stdin{Stdin: []byte(b)}}}}}
	}
	streamIn := func(what string, reqs ...*pb.StreamInputRequest) {
		si := c.StreamInput(ctx)
		for _, r := range reqs {
			if err := si.Send(r); err != nil {
				break // the answer below carries the reason
			}
		}
		r, err := si.CloseAndReceive()
		tr.add(what, msgOf(r), err)
	}
	start := func(s *pb.ProcessSelector) *pb.StreamInputRequest {
		return &pb.StreamInputRequest{Event: &pb.StreamInputRequest_Start{Start: &pb.StreamInputRequest_StartEvent{Process: s}}}
	}
	keep := &pb.StreamInputRequest{Event: &pb.StreamInputRequest_Keepalive{Keepalive: &pb.StreamInputRequest_KeepAlive{}}}
	streamIn("StreamInput", start(sel(tag)), data("abc"), keep, data("def\n"))
	for range 2 { // idempotent
		r, err := c.CloseStdin(ctx, connect.NewRequest(&pb.CloseStdinRequest{Process: sel(tag)}))
		tr.add("CloseStdin", msgOf(r), err)
	}
	seen := until(t, s, msg, "abcdef\n")
	kill(t, c, tr, sel(tag))
	finish(t, tr, "cat output", s, msg, seen...)
	streamIn("StreamInput data before start", data("x"))
	streamIn("StreamInput unknown tag", start(sel("parity-nobody")), data("x"))
	r, err := c.CloseStdin(ctx, connect.NewRequest(&pb.CloseStdinRequest{Process: sel("parity-nobody")}))
	tr.add("CloseStdin unknown tag", msgOf(r), err)
}

func paritySendSignal(t *testing.T, c processconnect.ProcessClient, tr *transcript) {
	s, msg, pid := run(t, c, &pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "sleep", Args: []string{"60"}}, Stdin: ptr(false)})
	ctx := ctxFor(t, 10*time.Second)
	for _, sig := range []pb.Signal{pb.Signal_SIGNAL_UNSPECIFIED, pb.Signal(3)} {
		r, err := c.SendSignal(ctx, connect.NewRequest(&pb.SendSignalRequest{Process: selPid(pid), Signal: sig}))
		tr.add("SendSignal "+sig.String(), msgOf(r), err)
	}
	r, err := c.SendSignal(ctx, connect.NewRequest(&pb.SendSignalRequest{Process: selPid(pid), Signal: pb.Signal_SIGNAL_SIGTERM}))
	tr.add("SendSignal SIGTERM", msgOf(r), err)
	finish(t, tr, "after SIGTERM", s, msg)
	kill(t, c, tr, sel("parity-nobody"))
}

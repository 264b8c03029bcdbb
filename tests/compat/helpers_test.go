package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
	"github.com/sandboxd/envd/internal/gen/filesystem/filesystemconnect"
	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
	"github.com/sandboxd/envd/internal/testenv"
)

// flavours are the host flavours every test here runs under: both, or only
// the one ENVD_COMPAT_FLAVOR names.
func flavours() []string {
	if f := os.Getenv("ENVD_COMPAT_FLAVOR"); f != "" {
		return []string{f}
	}
	return []string{"wrenn", "e2b"}
}

func forFlavours(t *testing.T, fn func(t *testing.T, flavor string)) {
	for _, f := range flavours() {
		t.Run(f, func(t *testing.T) { fn(t, f) })
	}
}

// variant is one way a client can talk to envd. The first four are
// testenv.Codecs (Connect protocol, proto and JSON, HTTP/1.1 and h2c); the
// last two are what grpcurl / buf curl --protocol grpc and browsers use.
type variant struct {
	name string
	h2c  bool
	opts []connect.ClientOption
}

func variants() []variant {
	var vs []variant
	for _, c := range testenv.Codecs {
		v := variant{name: c.Name, h2c: c.H2C}
		if c.JSON {
			v.opts = append(v.opts, connect.WithProtoJSON())
		}
		vs = append(vs, v)
	}
	return append(vs,
		variant{name: "grpc-proto-h2c", h2c: true, opts: []connect.ClientOption{connect.WithGRPC()}},
		variant{name: "grpcweb-json-h1", opts: []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}},
	)
}

func (v variant) client(e *testenv.Env) *http.Client {
	if v.h2c {
		return e.H2C
	}
	return e.HTTP
}

func (v variant) process(e *testenv.Env) processconnect.ProcessClient {
	return processconnect.NewProcessClient(v.client(e), e.URL, v.opts...)
}

func (v variant) filesystem(e *testenv.Env) filesystemconnect.FilesystemClient {
	return filesystemconnect.NewFilesystemClient(v.client(e), e.URL, v.opts...)
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// step is one observed answer: a message (normalised) or an error.
type step struct {
	what string
	msg  proto.Message
	err  string
}

// transcript is everything one variant observed in one scenario, in order.
type transcript struct {
	steps []step
	scrub []string // ids that differ legitimately, replaced by <id> in errors
}

func (tr *transcript) add(what string, m proto.Message, err error) {
	s := step{what: what}
	if err != nil {
		s.err = errString(err)
		for _, id := range tr.scrub {
			s.err = strings.ReplaceAll(s.err, id, "<id>")
		}
	} else {
		s.msg = m
	}
	tr.steps = append(tr.steps, s)
}

func (tr *transcript) msgs(what string, ms []proto.Message, err error) {
	for _, m := range ms {
		tr.add(what, m, nil)
	}
	if err != nil {
		tr.add(what+" (end of stream)", nil, err)
	}
}

func errString(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return fmt.Sprintf("%s: %s", ce.Code(), ce.Message())
	}
	return "non-connect error: " + err.Error()
}

func show(m proto.Message) string {
	if m == nil {
		return "<nil>"
	}
	return protojson.Format(m)
}

// sameTranscript fails the test where got differs from ref.
func sameTranscript(t *testing.T, refName string, ref *transcript, gotName string, got *transcript) {
	t.Helper()
	n := max(len(ref.steps), len(got.steps))
	for i := range n {
		if i >= len(ref.steps) || i >= len(got.steps) {
			t.Errorf("%s has %d steps, %s has %d", refName, len(ref.steps), gotName, len(got.steps))
			for _, s := range got.steps {
				t.Logf("%s: %s %s %s", gotName, s.what, s.err, show(s.msg))
			}
			return
		}
		r, g := ref.steps[i], got.steps[i]
		if r.what != g.what || r.err != g.err || !proto.Equal(r.msg, g.msg) {
			t.Errorf("step %d differs:\n %s: %s err=%q %s\n %s: %s err=%q %s",
				i, refName, r.what, r.err, show(r.msg), gotName, g.what, g.err, show(g.msg))
		}
	}
}

// parity runs scenario once per variant, in order, and checks that every
// transcript equals the first (binary proto over HTTP/1.1, what the hosts
// use). A scenario must leave no process or file behind that changes the
// next variant's answers.
func parity(t *testing.T, e *testenv.Env, scenario func(t *testing.T, v variant) *transcript) {
	t.Helper()
	var ref *transcript
	var refName string
	for _, v := range variants() {
		var tr *transcript
		if !t.Run(v.name, func(t *testing.T) { tr = scenario(t, v) }) {
			return
		}
		if len(tr.steps) == 0 {
			t.Fatalf("%s: empty transcript", v.name)
		}
		if ref == nil {
			ref, refName = tr, v.name
			continue
		}
		sameTranscript(t, refName, ref, v.name, tr)
	}
}

// normEvents turns a process event stream into its canonical form: the
// start pid (checked non-zero) becomes 0, keepalives go, and data events,
// whose chunking depends on scheduling, are joined per output kind ahead of
// the end event.
func normEvents(t testing.TB, evs []*pb.ProcessEvent) []proto.Message {
	t.Helper()
	var out []proto.Message
	var stdout, stderr, pty bytes.Buffer
	flush := func() {
		for _, d := range []*pb.ProcessEvent_DataEvent{
			{Output: &pb.ProcessEvent_DataEvent_Stdout{Stdout: stdout.Bytes()}},
			{Output: &pb.ProcessEvent_DataEvent_Stderr{Stderr: stderr.Bytes()}},
			{Output: &pb.ProcessEvent_DataEvent_Pty{Pty: pty.Bytes()}},
		} {
			if len(d.GetStdout())+len(d.GetStderr())+len(d.GetPty()) > 0 {
				out = append(out, &pb.ProcessEvent{Event: &pb.ProcessEvent_Data{Data: d}})
			}
		}
		stdout, stderr, pty = bytes.Buffer{}, bytes.Buffer{}, bytes.Buffer{}
	}
	for _, ev := range evs {
		switch x := ev.GetEvent().(type) {
		case *pb.ProcessEvent_Start:
			if x.Start.GetPid() == 0 {
				t.Errorf("start event with pid 0")
			}
			out = append(out, &pb.ProcessEvent{Event: &pb.ProcessEvent_Start{Start: &pb.ProcessEvent_StartEvent{}}})
		case *pb.ProcessEvent_Data:
			stdout.Write(x.Data.GetStdout())
			stderr.Write(x.Data.GetStderr())
			pty.Write(x.Data.GetPty())
		case *pb.ProcessEvent_Keepalive:
		default:
			flush()
			out = append(out, ev)
		}
	}
	flush()
	return out
}

// eventStream is a Start or Connect stream seen as process events.
type eventStream interface {
	Receive() bool
	Err() error
	Close() error
}

func startEvents(s *connect.ServerStreamForClient[pb.StartResponse]) (eventStream, func() *pb.ProcessEvent) {
	return s, func() *pb.ProcessEvent { return s.Msg().GetEvent() }
}

func connectEvents(s *connect.ServerStreamForClient[pb.ConnectResponse]) (eventStream, func() *pb.ProcessEvent) {
	return s, func() *pb.ProcessEvent { return s.Msg().GetEvent() }
}

// drain reads a process stream to its end and returns the raw events and
// the stream's final error (nil for a normal end).
func drain(s eventStream, msg func() *pb.ProcessEvent) ([]*pb.ProcessEvent, error) {
	var evs []*pb.ProcessEvent
	for s.Receive() {
		evs = append(evs, msg())
	}
	return evs, s.Err()
}

// firstEvent reads the first non-keepalive event; it must be start.
func firstEvent(t testing.TB, s eventStream, msg func() *pb.ProcessEvent) uint32 {
	t.Helper()
	for s.Receive() {
		ev := msg()
		if ev.GetKeepalive() != nil {
			continue
		}
		if ev.GetStart() == nil {
			t.Fatalf("first event is not start: %v", ev)
		}
		return ev.GetStart().GetPid()
	}
	t.Fatalf("stream ended before the start event: %v", s.Err())
	return 0
}

// clearTimes drops modification times that legitimately differ between
// runs (entries created during the scenario).
func clearTimes(e *fspb.EntryInfo) *fspb.EntryInfo {
	if e != nil {
		e.ModifiedTime = nil
	}
	return e
}

func sel(tag string) *pb.ProcessSelector {
	return &pb.ProcessSelector{Selector: &pb.ProcessSelector_Tag{Tag: tag}}
}

func selPid(pid uint32) *pb.ProcessSelector {
	return &pb.ProcessSelector{Selector: &pb.ProcessSelector_Pid{Pid: pid}}
}

func ptr[T any](v T) *T { return &v }

// msgOf is the answer's message, or nil when the call failed.
func msgOf[T any](r *connect.Response[T]) proto.Message {
	if r == nil {
		return nil
	}
	return any(r.Msg).(proto.Message)
}

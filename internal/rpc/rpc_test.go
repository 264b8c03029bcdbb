package rpc_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
	wire "github.com/sandboxd/envd/internal/gen/process/processwire"
	"github.com/sandboxd/envd/internal/rpc"
)

// service is a process.Process implementation whose answers depend only
// on its requests, so every protocol and codec can be checked against it.
type service struct {
	wire.UnimplementedProcessHandler
	mu  sync.Mutex // guards got
	got [][]byte   // StreamInput payloads, in order
}

func (s *service) List(_ context.Context, r *rpc.Request[wire.ListRequest]) (*rpc.Response[wire.ListResponse], error) {
	tag := r.Header().Get("X-Tag")
	res := rpc.NewResponse(&wire.ListResponse{Processes: []*wire.ProcessInfo{{Pid: 7, Tag: &tag,
		Config: &wire.ProcessConfig{Cmd: "/bin/echo", Args: []string{"a", "b"}, Envs: map[string]string{"K": "V"}}}}})
	res.Header().Set("X-Answer", "list")
	return res, nil
}

func (s *service) Update(_ context.Context, r *rpc.Request[wire.UpdateRequest]) (*rpc.Response[wire.UpdateResponse], error) {
	e := rpc.NewError(rpc.CodeNotFound, fmt.Errorf("process with pid %d not found", r.Msg.GetProcess().GetPid()))
	e.Meta().Set("X-Why", "missing")
	return nil, e
}

func (s *service) SendSignal(context.Context, *rpc.Request[wire.SendSignalRequest]) (*rpc.Response[wire.SendSignalResponse], error) {
	panic("handler bug")
}

func (s *service) Start(ctx context.Context, r *rpc.Request[wire.StartRequest], st *rpc.ServerStream[wire.StartResponse]) error {
	cfg := r.Msg.GetProcess()
	if cfg.GetCmd() == "wait" {
		<-ctx.Done()
		return ctx.Err()
	}
	if err := st.Send(&wire.StartResponse{Event: &wire.ProcessEvent{Event: &wire.ProcessEvent_Start{Start: &wire.ProcessEvent_StartEvent{Pid: 1}}}}); err != nil {
		return err
	}
	for _, a := range cfg.GetArgs() {
		ev := &wire.ProcessEvent{Event: &wire.ProcessEvent_Data{Data: &wire.ProcessEvent_DataEvent{
			Output: &wire.ProcessEvent_DataEvent_Stdout{Stdout: []byte(a)}}}}
		if err := st.Send(&wire.StartResponse{Event: ev}); err != nil {
			return err
		}
	}
	if cfg.GetCmd() == "fail" {
		return rpc.NewError(rpc.CodeResourceExhausted, errors.New("too many processes"))
	}
	return nil
}

func (s *service) StreamInput(_ context.Context, st *rpc.ClientStream[wire.StreamInputRequest]) (*rpc.Response[wire.StreamInputResponse], error) {
	for st.Receive() {
		s.mu.Lock()
		s.got = append(s.got, st.Msg().GetData().GetInput().GetStdin())
		s.mu.Unlock()
	}
	if err := st.Err(); err != nil {
		return nil, err
	}
	return rpc.NewResponse(&wire.StreamInputResponse{}), nil
}

type env struct {
	url      string
	h1, h2c  *http.Client
	svc      *service
	panicked chan any
}

func start(t *testing.T, opts ...rpc.Option) *env {
	t.Helper()
	e := &env{svc: &service{}, panicked: make(chan any, 1)}
	opts = append(opts, rpc.WithRecover(func(_ context.Context, proc string, _ http.Header, v any) error {
		e.panicked <- v
		return rpc.NewError(rpc.CodeInternal, errors.New("recovered in "+proc))
	}))
	path, h := wire.NewProcessHandler(e.svc, opts...)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.h1 = srv.Client()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	e.h2c = &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	return e
}

type variant struct {
	name string
	h2   bool
	opts []connect.ClientOption
}

// variants: every protocol, both codecs, compressed and not, h1 and h2c
// (gRPC needs HTTP/2).
func variants() []variant {
	var out []variant
	for _, p := range []struct {
		name string
		opt  []connect.ClientOption
		h1   bool
	}{{"connect", nil, true}, {"grpc", []connect.ClientOption{connect.WithGRPC()}, false},
		{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}, true}} {
		for _, json := range []bool{false, true} {
			for _, gz := range []bool{false, true} {
				for _, h2 := range []bool{false, true} {
					if !h2 && !p.h1 {
						continue
					}
					o := append([]connect.ClientOption(nil), p.opt...)
					name := p.name
					if json {
						o, name = append(o, connect.WithProtoJSON()), name+"-json"
					}
					if gz {
						o, name = append(o, connect.WithSendGzip()), name+"-gzip"
					}
					if h2 {
						name += "-h2c"
					}
					out = append(out, variant{name, h2, o})
				}
			}
		}
	}
	return out
}

func (e *env) client(v variant) processconnect.ProcessClient {
	hc := e.h1
	if v.h2 {
		hc = e.h2c
	}
	return processconnect.NewProcessClient(hc, e.url, v.opts...)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEveryProtocolAndCodec(t *testing.T) {
	e := start(t, rpc.WithCompressMinBytes(0))
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			c := e.client(v)
			req := connect.NewRequest(&pb.ListRequest{})
			req.Header().Set("X-Tag", "t-"+v.name)
			res, err := c.List(ctxT(t), req)
			if err != nil {
				t.Fatal(err)
			}
			p := res.Msg.GetProcesses()
			if len(p) != 1 || p[0].GetPid() != 7 || p[0].GetTag() != "t-"+v.name ||
				strings.Join(p[0].GetConfig().GetArgs(), ",") != "a,b" || p[0].GetConfig().GetEnvs()["K"] != "V" {
				t.Fatalf("list answer %v", res.Msg)
			}
			if res.Header().Get("X-Answer") != "list" {
				t.Fatalf("response header lost: %v", res.Header())
			}

			_, err = c.Update(ctxT(t), connect.NewRequest(&pb.UpdateRequest{Process: &pb.ProcessSelector{Selector: &pb.ProcessSelector_Pid{Pid: 9}}}))
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Code() != connect.CodeNotFound || ce.Message() != "process with pid 9 not found" || ce.Meta().Get("X-Why") != "missing" {
				t.Fatalf("update error %v (meta %v)", err, metaOf(err))
			}

			st, err := c.Start(ctxT(t), connect.NewRequest(&pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "fail", Args: []string{"x", strings.Repeat("y", 5000), "\x00\u00ff\"\\"}}}))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for st.Receive() {
				if d := st.Msg().GetEvent().GetData(); d != nil {
					got = append(got, string(d.GetStdout()))
				}
			}
			if strings.Join(got, "|") != "x|"+strings.Repeat("y", 5000)+"|\x00\u00ff\"\\" {
				t.Fatalf("stream data %q", got)
			}
			if connect.CodeOf(st.Err()) != connect.CodeResourceExhausted || !strings.Contains(st.Err().Error(), "too many processes") {
				t.Fatalf("stream end %v", st.Err())
			}

			_, err = c.SendSignal(ctxT(t), connect.NewRequest(&pb.SendSignalRequest{}))
			if connect.CodeOf(err) != connect.CodeInternal || !strings.Contains(err.Error(), "recovered in /process.Process/SendSignal") {
				t.Fatalf("panic answered %v", err)
			}
			if v := <-e.panicked; v != "handler bug" {
				t.Fatalf("recover saw %v", v)
			}

			_, err = c.CloseStdin(ctxT(t), connect.NewRequest(&pb.CloseStdinRequest{}))
			if connect.CodeOf(err) != connect.CodeUnimplemented {
				t.Fatalf("unimplemented RPC answered %v", err)
			}
		})
	}
}

func metaOf(err error) http.Header {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Meta()
	}
	return nil
}

func TestClientStreamKeepsOrderAndContent(t *testing.T) {
	e := start(t)
	for _, v := range variants() {
		if !v.h2 && !strings.HasPrefix(v.name, "connect") {
			continue // gRPC-Web client streams need HTTP/2 in connect-go
		}
		t.Run(v.name, func(t *testing.T) {
			e.svc.mu.Lock()
			e.svc.got = nil
			e.svc.mu.Unlock()
			s := e.client(v).StreamInput(ctxT(t))
			var want [][]byte
			for i := range 20 {
				p := bytes.Repeat([]byte{byte(i)}, i*100)
				want = append(want, p)
				if err := s.Send(&pb.StreamInputRequest{Event: &pb.StreamInputRequest_Data{Data: &pb.StreamInputRequest_DataEvent{
					Input: &pb.ProcessInput{Input: &pb.ProcessInput_Stdin{Stdin: p}}}}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.CloseAndReceive(); err != nil {
				t.Fatal(err)
			}
			e.svc.mu.Lock()
			defer e.svc.mu.Unlock()
			if len(e.svc.got) != len(want) {
				t.Fatalf("got %d messages, want %d", len(e.svc.got), len(want))
			}
			for i := range want {
				if !bytes.Equal(e.svc.got[i], want[i]) && !(len(want[i]) == 0 && len(e.svc.got[i]) == 0) {
					t.Fatalf("message %d differs", i)
				}
			}
		})
	}
}

func TestDeadlineHeadersCancelTheHandler(t *testing.T) {
	e := start(t)
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			st, err := e.client(v).Start(ctx, connect.NewRequest(&pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "wait"}}))
			if err == nil {
				for st.Receive() {
				}
				err = st.Err()
			}
			if c := connect.CodeOf(err); c != connect.CodeDeadlineExceeded && c != connect.CodeCanceled {
				t.Fatalf("wait ended with %v", err)
			}
		})
	}
}

// post sends a raw request and returns status, headers and body.
func (e *env) post(t *testing.T, method, path, ct string, body []byte, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

func envelope(flags byte, p []byte) []byte {
	b := []byte{flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(p)))
	return append(b, p...)
}

func gz(p []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write(p)
	_ = w.Close()
	return b.Bytes()
}

func TestMalformedRequestsGetTheRightAnswer(t *testing.T) {
	e := start(t, rpc.WithReadMaxBytes(1024))
	list := "/process.Process/List"
	startP := "/process.Process/Start"
	cases := []struct {
		name, method, path, ct string
		body                   []byte
		hdr                    []string
		status                 int
		want                   string // in the body
		wantHdr                [2]string
	}{
		{"GET is not allowed", "GET", list, "application/json", nil, nil, 405, "", [2]string{"Allow", "POST"}},
		{"unknown content type", "POST", list, "text/plain", []byte("x"), nil, 415, "", [2]string{"Accept-Post", "application/json, application/proto, application/grpc"}},
		{"streaming type on a unary procedure", "POST", list, "application/connect+json", nil, nil, 415, "", [2]string{}},
		{"unary type on a streaming procedure", "POST", startP, "application/json", []byte("{}"), nil, 415, "", [2]string{"Accept-Post", "application/connect+json"}},
		{"unknown procedure", "POST", "/process.Process/Nope", "application/json", []byte("{}"), nil, 404, "", [2]string{}},
		{"invalid JSON", "POST", list, "application/json", []byte("{"), nil, 400, `"code":"invalid_argument"`, [2]string{"Content-Type", "application/json"}},
		{"empty JSON", "POST", list, "application/json", nil, nil, 400, "zero-length payload", [2]string{}},
		{"bad proto", "POST", list, "application/proto", []byte{0xff}, nil, 400, `"code":"invalid_argument"`, [2]string{}},
		{"too large", "POST", list, "application/proto", make([]byte, 2000), nil, 429, `"code":"resource_exhausted"`, [2]string{}},
		{"gzip bomb", "POST", list, "application/proto", gz(make([]byte, 1<<20)), []string{"Content-Encoding", "gzip"}, 429, "larger than configured max 1024", [2]string{}},
		{"unknown compression", "POST", list, "application/proto", []byte{}, []string{"Content-Encoding", "br"}, 501, "unknown compression", [2]string{}},
		{"bad timeout", "POST", list, "application/proto", []byte{}, []string{"Connect-Timeout-Ms", "12345678901"}, 400, ">10 digits", [2]string{}},
		{"gzip request", "POST", list, "application/json", gz([]byte("{}")), []string{"Content-Encoding", "gzip"}, 200, `"pid":7`, [2]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := e.post(t, c.method, c.path, c.ct, c.body, c.hdr...)
			if status != c.status || !strings.Contains(string(body), c.want) {
				t.Fatalf("status %d body %q, want %d with %q", status, body, c.status, c.want)
			}
			if c.wantHdr[0] != "" && !strings.HasPrefix(h.Get(c.wantHdr[0]), c.wantHdr[1]) {
				t.Fatalf("%s = %q, want %q", c.wantHdr[0], h.Get(c.wantHdr[0]), c.wantHdr[1])
			}
		})
	}
	// Stream errors travel in the end-of-stream message with status 200.
	streamCases := []struct {
		name string
		body []byte
		want string
	}{
		{"bad envelope", []byte{0, 0, 0}, "incomplete envelope"},
		{"no message", nil, "zero messages"},
		{"two messages", append(envelope(0, []byte("{}")), envelope(0, []byte("{}"))...), "multiple messages"},
		{"compressed without encoding", envelope(1, gz([]byte("{}"))), "without an encoding header"},
		{"oversized envelope", envelope(0, make([]byte, 4096)), "resource_exhausted"},
		{"invalid JSON", envelope(0, []byte(`{"process":`)), "invalid_argument"},
	}
	for _, c := range streamCases {
		t.Run("stream "+c.name, func(t *testing.T) {
			status, _, body := e.post(t, "POST", startP, "application/connect+json", c.body)
			if status != 200 || len(body) < 5 || body[0] != 2 || !strings.Contains(string(body[5:]), c.want) {
				t.Fatalf("status %d body %q, want 200 and an end-of-stream message with %q", status, body, c.want)
			}
		})
	}
	// The daemon keeps serving after all of that.
	if status, _, body := e.post(t, "POST", list, "application/json", []byte(`{}`)); status != 200 || !strings.Contains(string(body), `"pid":7`) {
		t.Fatalf("after bad requests: %d %s", status, body)
	}
}

func TestWriteErrorSpeaksTheCallersProtocol(t *testing.T) {
	err := rpc.NewError(rpc.CodeUnauthenticated, errors.New("invalid user: 'nobody'"))
	for _, c := range []struct{ ct, want string }{
		{"application/json", `{"code":"unauthenticated","message":"invalid user: 'nobody'"}`},
		{"", `{"code":"unauthenticated","message":"invalid user: 'nobody'"}`},
		{"application/connect+proto", `{"error":{"code":"unauthenticated","message":"invalid user: 'nobody'"}}`},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/process.Process/List", nil)
		req.Header.Set("Content-Type", c.ct)
		rpc.WriteError(rec, req, err)
		body := rec.Body.String()
		if strings.HasPrefix(c.ct, "application/connect+") {
			if rec.Code != 200 || body[0] != 2 {
				t.Fatalf("%s: %d %q", c.ct, rec.Code, body)
			}
			body = body[5:]
		} else if rec.Code != 401 {
			t.Fatalf("%s: status %d", c.ct, rec.Code)
		}
		if body != c.want {
			t.Fatalf("%s: body %q, want %q", c.ct, body, c.want)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/process.Process/List", nil)
	req.Header.Set("Content-Type", "application/grpc")
	rpc.WriteError(rec, req, err)
	if rec.Code != 200 || rec.Result().Trailer.Get("Grpc-Status") != "16" {
		t.Fatalf("grpc: %d %v", rec.Code, rec.Result().Trailer)
	}
}

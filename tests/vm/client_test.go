package vm

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
	"github.com/sandboxd/envd/internal/gen/filesystem/filesystemconnect"
	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
	"github.com/sandboxd/envd/internal/testenv"
)

// callTimeout bounds one request to the guest; TCG makes everything in
// the guest slow, but nothing here takes this long unless it hangs.
const callTimeout = 60 * time.Second

// guest is a host-side client of the envd inside one VM, through the
// forwarded port: Connect clients for a codec and plain HTTP.
type guest struct {
	t    testing.TB
	vm   *VM
	url  string
	hc   *http.Client // HTTP/1.1 with keep-alive, as hosts use
	proc processconnect.ProcessClient
	fs   filesystemconnect.FilesystemClient
}

func dial(t testing.TB, vm *VM) *guest { return dialCodec(t, vm, testenv.Codecs[0]) }

func dialCodec(t testing.TB, vm *VM, c testenv.Codec) *guest {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 8}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	var opts []connect.ClientOption
	if c.JSON {
		opts = append(opts, connect.WithProtoJSON())
	}
	u := "http://" + vm.Addr
	rpc := hc
	if c.H2C {
		h2 := &http2.Transport{AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}}
		t.Cleanup(h2.CloseIdleConnections)
		rpc = &http.Client{Transport: h2}
	}
	return &guest{t: t, vm: vm, url: u, hc: hc,
		proc: processconnect.NewProcessClient(rpc, u, opts...),
		fs:   filesystemconnect.NewFilesystemClient(rpc, u, opts...)}
}

// with returns the same client reporting to t (a subtest).
func (g *guest) with(t testing.TB) *guest {
	c := *g
	c.t = t
	return &c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// result is what one process stream delivered.
type result struct {
	pid    uint32
	stdout string
	stderr string
	exit   int32
	ended  bool
}

// run starts cmd in the guest and reads its stream to the end.
func (g *guest) run(cmd string, args ...string) result {
	g.t.Helper()
	stream, err := g.proc.Start(ctxT(g.t), connect.NewRequest(&pb.StartRequest{
		Process: &pb.ProcessConfig{Cmd: cmd, Args: args}}))
	if err != nil {
		g.t.Fatalf("start %s: %v", cmd, err)
	}
	defer stream.Close()
	var r result
	var out, errb bytes.Buffer
	for stream.Receive() {
		switch e := stream.Msg().GetEvent().GetEvent().(type) {
		case *pb.ProcessEvent_Start:
			r.pid = e.Start.GetPid()
		case *pb.ProcessEvent_Data:
			out.Write(e.Data.GetStdout())
			errb.Write(e.Data.GetStderr())
		case *pb.ProcessEvent_End:
			r.exit, r.ended = e.End.GetExitCode(), true
		}
	}
	if err := stream.Err(); err != nil {
		g.t.Fatalf("%s stream: %v", cmd, err)
	}
	r.stdout, r.stderr = out.String(), errb.String()
	return r
}

// sh runs a shell script in the guest and returns its stdout; it must
// exit 0.
func (g *guest) sh(script string) string {
	g.t.Helper()
	r := g.run("/bin/sh", "-c", script)
	if !r.ended || r.exit != 0 {
		g.t.Fatalf("sh -c %q: exit %d (ended %v), stderr %q", script, r.exit, r.ended, r.stderr)
	}
	return r.stdout
}

// guestTime is the guest's wall clock, read by a process in the guest,
// bracketed by host clock readings before and after.
func (g *guest) guestTime() (before, guest, after time.Time) {
	g.t.Helper()
	before = time.Now()
	out := strings.TrimSpace(g.sh("date +%s.%N"))
	after = time.Now()
	sec, frac, _ := strings.Cut(out, ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	ns, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		g.t.Fatalf("guest date: %q", out)
	}
	return before, time.Unix(s, ns), after
}

// do sends one plain HTTP request and returns status and body.
func (g *guest) do(method, path string, body io.Reader, hdr map[string]string) (int, []byte) {
	g.t.Helper()
	req, err := http.NewRequestWithContext(ctxT(g.t), method, g.url+path, body)
	if err != nil {
		g.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		g.t.Fatalf("%s %s body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

func (g *guest) upload(path string, data []byte) {
	g.t.Helper()
	code, body := g.do("POST", "/files?path="+url.QueryEscape(path), bytes.NewReader(data),
		map[string]string{"Content-Type": "application/octet-stream"})
	if code != http.StatusOK {
		g.t.Fatalf("upload %s: %d %s", path, code, body)
	}
}

func (g *guest) download(path string) []byte {
	g.t.Helper()
	code, body := g.do("GET", "/files?path="+url.QueryEscape(path), nil, nil)
	if code != http.StatusOK {
		g.t.Fatalf("download %s: %d %s", path, code, body)
	}
	return body
}

// initWith POSTs /init with a JSON body and requires 204.
func (g *guest) initWith(body any) {
	g.t.Helper()
	b, _ := json.Marshal(body)
	code, resp := g.do("POST", "/init", bytes.NewReader(b), map[string]string{"Content-Type": "application/json"})
	if code != http.StatusNoContent {
		g.t.Fatalf("init: %d %s", code, resp)
	}
}

func (g *guest) prepare() {
	g.t.Helper()
	if code, body := g.do("POST", "/snapshot/prepare", nil, nil); code != http.StatusNoContent {
		g.t.Fatalf("snapshot/prepare: %d %s", code, body)
	}
}

// list returns the guest's processes by pid.
func (g *guest) list() map[uint32]*pb.ProcessInfo {
	g.t.Helper()
	resp, err := g.proc.List(ctxT(g.t), connect.NewRequest(&pb.ListRequest{}))
	if err != nil {
		g.t.Fatalf("list: %v", err)
	}
	out := map[uint32]*pb.ProcessInfo{}
	for _, p := range resp.Msg.GetProcesses() {
		out[p.GetPid()] = p
	}
	return out
}

func (g *guest) stat(path string) (*fspb.EntryInfo, error) {
	resp, err := g.fs.Stat(ctxT(g.t), connect.NewRequest(&fspb.StatRequest{Path: path}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetEntry(), nil
}

func (g *guest) kill(pid uint32) {
	g.t.Helper()
	_, err := g.proc.SendSignal(ctxT(g.t), connect.NewRequest(&pb.SendSignalRequest{
		Process: &pb.ProcessSelector{Selector: &pb.ProcessSelector_Pid{Pid: pid}},
		Signal:  pb.Signal_SIGNAL_SIGKILL}))
	if err != nil {
		g.t.Fatalf("kill %d: %v", pid, err)
	}
}

func (r result) String() string {
	return fmt.Sprintf("pid %d exit %d ended %v stdout %q stderr %q", r.pid, r.exit, r.ended, r.stdout, r.stderr)
}

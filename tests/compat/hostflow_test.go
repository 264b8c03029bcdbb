package compat

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
	"github.com/sandboxd/envd/internal/gen/filesystem/filesystemconnect"
	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
	"github.com/sandboxd/envd/internal/testenv"
)

// wrennHost talks to envd exactly as Wrenn's host agent does (PROTOCOL.md 6,
// "Wrenn-HA behaviour to keep working"): connect-go's default client (the
// Connect protocol, binary proto) over a plain http.Transport, so HTTP/1.1
// with Go's automatic gzip on GET, and never an auth header. Its binary
// codec encodes with the spec's field numbers, not ours (foreign_test.go),
// as the host's own generated code does.
type wrennHost struct {
	base string
	hc   *http.Client
	tr   *http.Transport
	proc processconnect.ProcessClient
	fs   filesystemconnect.FilesystemClient
}

func newWrennHost(t *testing.T, base string) *wrennHost {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	codec := connect.WithCodec(foreignCodec{files: foreignSchema(t)})
	return &wrennHost{base: base, hc: hc, tr: tr,
		proc: processconnect.NewProcessClient(hc, base, codec), fs: filesystemconnect.NewFilesystemClient(hc, base, codec)}
}

// do sends one plain HTTP request and returns status, headers and body.
func (h *wrennHost) do(t *testing.T, method, path, ctype string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// waitUntilReady polls GET /health every 100 ms, as WaitUntilReady does,
// until the flavour's answer: exactly 200 with a JSON version (wrenn), or
// exactly 204 (e2b, what E2B's orchestrator checks).
func (h *wrennHost) waitUntilReady(t *testing.T, flavor string) {
	t.Helper()
	want := map[string]int{"wrenn": http.StatusOK, "e2b": http.StatusNoContent}[flavor]
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, hdr, body := h.do(t, http.MethodGet, "/health", "", nil)
		if code == want {
			if hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("/health Cache-Control %q", hdr.Get("Cache-Control"))
			}
			if flavor == "e2b" {
				if len(body) != 0 {
					t.Errorf("e2b /health body %q, want empty", body)
				}
				return
			}
			var v struct{ Version string }
			if err := json.Unmarshal(body, &v); err != nil || v.Version == "" || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Fatalf("/health body %q (%s): want JSON with a version (FetchVersion), err %v", body, hdr.Get("Content-Type"), err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health answered %d, want exactly %d", code, want)
		}
		<-tick.C
	}
}

// hostRun starts req and returns its stream with the start pid consumed.
func (h *wrennHost) start(t *testing.T, req *pb.StartRequest) (*connect.ServerStreamForClient[pb.StartResponse], uint32) {
	t.Helper()
	s, err := h.proc.Start(ctxFor(t, 30*time.Second), connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	es, msg := startEvents(s)
	return s, firstEvent(t, es, msg)
}

// result is what Wrenn-HA collects from a stream: output and the end event.
type result struct {
	stdout, stderr, pty string
	end                 *pb.ProcessEvent_EndEvent
}

func collect(t *testing.T, es eventStream, msg func() *pb.ProcessEvent) result {
	t.Helper()
	var r result
	for es.Receive() {
		ev := msg()
		r.stdout += string(ev.GetData().GetStdout())
		r.stderr += string(ev.GetData().GetStderr())
		r.pty += string(ev.GetData().GetPty())
		if ev.GetEnd() != nil {
			r.end = ev.GetEnd()
		}
	}
	if err := es.Err(); err != nil {
		t.Fatalf("stream error: %v", err)
	}
	if r.end == nil {
		t.Fatal("stream ended without an end event")
	}
	return r
}

// userWithHome is a non-root account whose home exists, for defaultUser.
func userWithHome(t *testing.T) (name, home string) {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Skip("no /etc/passwd")
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 7 || f[2] == "0" || f[5] == "/" {
			continue
		}
		if st, err := os.Stat(f[5]); err == nil && st.IsDir() {
			return f[0], f[5]
		}
	}
	t.Skip("no non-root user with an existing home directory")
	return "", ""
}

// TestWrennHostAgentFlows replays every call Wrenn's host agent makes, in
// its order, against the built binary, once per flavour.
func TestWrennHostAgentFlows(t *testing.T) {
	forFlavours(t, func(t *testing.T, flavor string) {
		p := testenv.StartBinary(t, "--flavor", flavor)
		h := newWrennHost(t, p.URL)
		dir := t.TempDir()
		flows := []struct {
			name string
			fn   func(t *testing.T)
		}{
			{"health polled every 100ms until ready, then the version", func(t *testing.T) { h.waitUntilReady(t, flavor) }},
			{"POST /init with no body and no Content-Type is 204", func(t *testing.T) {
				code, hdr, body := h.do(t, http.MethodPost, "/init", "", nil)
				if code != http.StatusNoContent || len(body) != 0 || hdr.Get("X-Envd-Version") == "" {
					t.Fatalf("/init: %d %q X-Envd-Version=%q", code, body, hdr.Get("X-Envd-Version"))
				}
			}},
			{"POST /init with defaultUser and envVars is 204 and applies", func(t *testing.T) { flowInitBody(t, h) }},
			{"Start with stdin=false and a tag: stdout, stderr, exit_code, error", func(t *testing.T) { flowStart(t, h) }},
			{"Start a pty; SendInput, Update and Connect by tag; Connect by pid; List; SIGKILL by tag", func(t *testing.T) { flowPTY(t, h) }},
			{"SendSignal SIGKILL by pid", func(t *testing.T) { flowKillByPid(t, h) }},
			{"ListDir with depth, MakeDir, Remove", func(t *testing.T) { flowFilesystem(t, h, dir) }},
			{"multipart upload (part file, filename upload, username=root) is 200", func(t *testing.T) { flowUpload(t, h, dir) }},
			{"GET /files?path&username=root is 200 with the raw bytes", func(t *testing.T) { flowDownload(t, h, dir) }},
			{"POST /snapshot/prepare is 204; after resume health, /init and RPCs work", func(t *testing.T) { flowSnapshot(t, h, flavor) }},
		}
		for _, f := range flows {
			if !t.Run(f.name, f.fn) {
				t.Logf("envd output:\n%s", p.Output.String())
				return
			}
		}
	})
}

func flowInitBody(t *testing.T, h *wrennHost) {
	user, home := userWithHome(t)
	body := `{"defaultUser":"` + user + `","envVars":{"WRENN_HA_VAR":"from-host"}}`
	if code, _, b := h.do(t, http.MethodPost, "/init", "application/json", strings.NewReader(body)); code != http.StatusNoContent {
		t.Fatalf("/init: %d %q", code, b)
	}
	s, _ := h.start(t, &pb.StartRequest{Process: shell(`id -un; echo "$WRENN_HA_VAR|$HOME|$PWD"`), Stdin: ptr(false), Tag: ptr("init-check")})
	r := collect(t, s, func() *pb.ProcessEvent { return s.Msg().GetEvent() })
	if want := user + "\nfrom-host|" + home + "|" + home + "\n"; r.stdout != want {
		t.Fatalf("after /init: stdout %q stderr %q, want %q", r.stdout, r.stderr, want)
	}
	// Back to root, as the remaining flows (and Wrenn's templates) expect.
	if code, _, b := h.do(t, http.MethodPost, "/init", "application/json", strings.NewReader(`{"defaultUser":"root"}`)); code != http.StatusNoContent {
		t.Fatalf("/init root: %d %q", code, b)
	}
}

func flowStart(t *testing.T, h *wrennHost) {
	s, _ := h.start(t, &pb.StartRequest{Process: shell("echo out; echo err >&2; exit 7"), Stdin: ptr(false), Tag: ptr("wrenn-exec")})
	r := collect(t, s, func() *pb.ProcessEvent { return s.Msg().GetEvent() })
	if r.stdout != "out\n" || r.stderr != "err\n" || r.end.GetExitCode() != 7 || r.end.GetError() != "exit status 7" {
		t.Fatalf("got %+v", r)
	}
	s, _ = h.start(t, &pb.StartRequest{Process: shell("pwd; id -u"), Stdin: ptr(false), Tag: ptr("wrenn-exec")})
	r = collect(t, s, func() *pb.ProcessEvent { return s.Msg().GetEvent() })
	if r.stdout != "/root\n0\n" || r.end.GetExitCode() != 0 || r.end.Error != nil || !r.end.GetExited() {
		t.Fatalf("got %+v", r)
	}
}

// readUntil reads a stream until its pty output contains want.
func readUntil(t *testing.T, es eventStream, msg func() *pb.ProcessEvent, want string) {
	t.Helper()
	var out string
	for es.Receive() {
		if out += string(msg().GetData().GetPty()); strings.Contains(out, want) {
			return
		}
	}
	t.Fatalf("stream ended before %q; got %q (%v)", want, out, es.Err())
}

func flowPTY(t *testing.T, h *wrennHost) {
	const tag = "wrenn-term"
	ctx := ctxFor(t, 30*time.Second)
	s, pid := h.start(t, &pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "/bin/sh"}, Tag: ptr(tag), Stdin: ptr(false),
		Pty: &pb.PTY{Size: &pb.PTY_Size{Cols: 80, Rows: 24}}})
	smsg := func() *pb.ProcessEvent { return s.Msg().GetEvent() }
	input := func(text string) {
		if _, err := h.proc.SendInput(ctx, connect.NewRequest(&pb.SendInputRequest{Process: sel(tag),
			Input: &pb.ProcessInput{Input: &pb.ProcessInput_Pty{Pty: []byte(text)}}})); err != nil {
			t.Fatal(err)
		}
	}
	input("echo \"S=$(stty size)\"\n")
	readUntil(t, s, smsg, "S=24 80")
	if _, err := h.proc.Update(ctx, connect.NewRequest(&pb.UpdateRequest{Process: sel(tag),
		Pty: &pb.PTY{Size: &pb.PTY_Size{Cols: 120, Rows: 40}}})); err != nil {
		t.Fatal(err)
	}
	input("echo \"R=$(stty size)\"\n")
	readUntil(t, s, smsg, "R=40 120")
	for _, selector := range []*pb.ProcessSelector{sel(tag), selPid(pid)} {
		c, err := h.proc.Connect(ctx, connect.NewRequest(&pb.ConnectRequest{Process: selector}))
		if err != nil {
			t.Fatal(err)
		}
		ces, cmsg := connectEvents(c)
		if got := firstEvent(t, ces, cmsg); got != pid {
			t.Fatalf("Connect %v: pid %d, want %d", selector, got, pid)
		}
		input("echo \"C=$((40+2))\"\n")
		readUntil(t, ces, cmsg, "C=42")
		readUntil(t, s, smsg, "C=42")
		c.Close()
	}
	l, err := h.proc.List(ctx, connect.NewRequest(&pb.ListRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range l.Msg.GetProcesses() {
		found = found || (p.GetPid() == pid && p.GetTag() == tag && p.GetConfig().GetCmd() == "/bin/sh")
	}
	if !found {
		t.Fatalf("List has no %s pid %d: %v", tag, pid, l.Msg)
	}
	if _, err := h.proc.SendSignal(ctx, connect.NewRequest(&pb.SendSignalRequest{Process: sel(tag), Signal: pb.Signal_SIGNAL_SIGKILL})); err != nil {
		t.Fatal(err)
	}
	if r := collect(t, s, smsg); r.end.GetExitCode() != -1 || r.end.GetError() != "signal: killed" {
		t.Fatalf("after SIGKILL: %v", r.end)
	}
}

func flowKillByPid(t *testing.T, h *wrennHost) {
	s, pid := h.start(t, &pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "sleep", Args: []string{"600"}}, Stdin: ptr(false), Tag: ptr("wrenn-sleep")})
	if _, err := h.proc.SendSignal(ctxFor(t, 10*time.Second), connect.NewRequest(&pb.SendSignalRequest{Process: selPid(pid), Signal: pb.Signal_SIGNAL_SIGKILL})); err != nil {
		t.Fatal(err)
	}
	r := collect(t, s, func() *pb.ProcessEvent { return s.Msg().GetEvent() })
	if r.end.GetExitCode() != -1 || r.end.GetExited() || r.end.GetError() != "signal: killed" {
		t.Fatalf("end %v", r.end)
	}
	if err := syscall.Kill(int(pid), 0); err == nil {
		t.Fatalf("pid %d still alive", pid)
	}
}

func flowFilesystem(t *testing.T, h *wrennHost, dir string) {
	ctx := ctxFor(t, 10*time.Second)
	md, err := h.fs.MakeDir(ctx, connect.NewRequest(&fspb.MakeDirRequest{Path: filepath.Join(dir, "ws", "proj")}))
	if err != nil || md.Msg.GetEntry().GetType() != fspb.FileType_FILE_TYPE_DIRECTORY {
		t.Fatalf("MakeDir: %v %v", md, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ws", "proj", "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ls, err := h.fs.ListDir(ctx, connect.NewRequest(&fspb.ListDirRequest{Path: filepath.Join(dir, "ws"), Depth: 2}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ls.Msg.GetEntries() {
		got = append(got, strings.TrimPrefix(e.GetPath(), dir+"/")+":"+e.GetType().String())
	}
	if want := "ws/proj:FILE_TYPE_DIRECTORY ws/proj/main.go:FILE_TYPE_FILE"; strings.Join(got, " ") != want {
		t.Fatalf("ListDir depth 2: %v, want %s", got, want)
	}
	for range 2 { // the second Remove meets a missing path: still OK
		if _, err := h.fs.Remove(ctx, connect.NewRequest(&fspb.RemoveRequest{Path: filepath.Join(dir, "ws")})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ws")); !os.IsNotExist(err) {
		t.Fatalf("after Remove: %v", err)
	}
}

func uploadBody(t *testing.T, data []byte) (io.Reader, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", `form-data; name="file"; filename="upload"`)
	hdr.Set("Content-Type", "application/octet-stream")
	w, err := mw.CreatePart(hdr)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func flowUpload(t *testing.T, h *wrennHost, dir string) {
	data := make([]byte, 300<<10)
	rand.Read(data)
	target := filepath.Join(dir, "up", "blob.bin")
	body, ctype := uploadBody(t, data)
	q := url.Values{"path": {target}, "username": {"root"}}
	code, _, b := h.do(t, http.MethodPost, "/files?"+q.Encode(), ctype, body)
	if code != http.StatusOK {
		t.Fatalf("upload: %d %s", code, b)
	}
	var entries []struct{ Path, Name, Type string }
	if err := json.Unmarshal(b, &entries); err != nil || len(entries) != 1 || entries[0].Path != target || entries[0].Name != "blob.bin" || entries[0].Type != "file" {
		t.Fatalf("upload answer %s (%v)", b, err)
	}
	got, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("uploaded file: %d bytes, err %v", len(got), err)
	}
}

func flowDownload(t *testing.T, h *wrennHost, dir string) {
	data := bytes.Repeat([]byte("wrenn host agent download\n"), 20000)
	target := filepath.Join(dir, "down.txt")
	if err := os.WriteFile(target, data, 0o644); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"path": {target}, "username": {"root"}}
	code, _, b := h.do(t, http.MethodGet, "/files?"+q.Encode(), "", nil)
	if code != http.StatusOK || !bytes.Equal(b, data) {
		t.Fatalf("download: %d, %d bytes (want %d)", code, len(b), len(data))
	}
}

func flowSnapshot(t *testing.T, h *wrennHost, flavor string) {
	h.tr.CloseIdleConnections() // Wrenn-HA does this before pausing
	code, _, b := h.do(t, http.MethodPost, "/snapshot/prepare", "", nil)
	if code != http.StatusNoContent {
		t.Fatalf("/snapshot/prepare: %d %q", code, b)
	}
	h.waitUntilReady(t, flavor)
	if code, _, b := h.do(t, http.MethodPost, "/init", "", nil); code != http.StatusNoContent {
		t.Fatalf("/init after resume: %d %q", code, b)
	}
	s, _ := h.start(t, &pb.StartRequest{Process: shell("echo resumed"), Stdin: ptr(false), Tag: ptr("after-resume")})
	if r := collect(t, s, func() *pb.ProcessEvent { return s.Msg().GetEvent() }); r.stdout != "resumed\n" {
		t.Fatalf("after resume: %+v", r)
	}
}

package vm

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/testenv"
)

// TestHostFlows runs a slice of what the E2B SDK and the Wrenn host do,
// against envd inside the VM through the forwarded port, over HTTP/1.1
// with the proto codec and over h2c with the JSON codec (the SDK's).
func TestHostFlows(t *testing.T) {
	m, snap := golden(t)
	vm := restore(t, m, snap)
	base := dial(t, vm)

	// The Wrenn host's resume /init: env vars and a default user.
	base.initWith(map[string]any{"envVars": map[string]string{"VM_FLOW": "yes"}, "defaultUser": "user"})
	code, body := base.do("GET", "/envs", nil, nil)
	var envs map[string]string
	if code != http.StatusOK || json.Unmarshal(body, &envs) != nil || envs["VM_FLOW"] != "yes" {
		t.Errorf("/envs: %d %s", code, body)
	}
	code, body = base.do("GET", "/metrics", nil, nil)
	var met struct {
		MemTotal uint64 `json:"mem_total"`
		CPUCount int    `json:"cpu_count"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &met) != nil || met.CPUCount != 1 || met.MemTotal < 100<<20 {
		t.Errorf("/metrics: %d %s", code, body)
	}

	for _, c := range []testenv.Codec{testenv.Codecs[0], testenv.Codecs[3]} {
		t.Run(c.Name, func(t *testing.T) {
			g := dialCodec(t, vm, c)
			dir := "/home/user/flows-" + c.Name

			t.Run("start streams output, env and user from init", func(t *testing.T) {
				g := g.with(t)
				r := g.run("/bin/sh", "-c", `for i in 1 2 3; do echo line$i; sleep 0.05; done; echo $VM_FLOW; `+
					`while read k v r; do [ "$k" = Uid: ] && echo uid=$v; done </proc/self/status; echo oops >&2; exit 3`)
				if r.stdout != "line1\nline2\nline3\nyes\nuid=1000\n" || r.stderr != "oops\n" || r.exit != 3 {
					t.Fatalf("got %v", r)
				}
			})

			t.Run("connect, list and signal a running process", func(t *testing.T) {
				g := g.with(t)
				ctx := ctxT(t)
				tag := "flow-" + c.Name
				start, err := g.proc.Start(ctx, connect.NewRequest(&pb.StartRequest{Tag: &tag,
					Process: &pb.ProcessConfig{Cmd: "/bin/sh", Args: []string{"-c", counterScript}}}))
				if err != nil {
					t.Fatal(err)
				}
				defer start.Close()
				pid, _ := readCounter(t, start, 1)
				if info := g.list()[pid]; info.GetTag() != tag || info.GetConfig().GetCmd() != "/bin/sh" {
					t.Fatalf("list: %v", info)
				}
				conn, err := g.proc.Connect(ctx, connect.NewRequest(&pb.ConnectRequest{
					Process: &pb.ProcessSelector{Selector: &pb.ProcessSelector_Tag{Tag: tag}}}))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if p, n := readCounter(t, conn, 3); p != pid || n < 3 {
					t.Fatalf("connect: pid %d value %d", p, n)
				}
				g.kill(pid)
				if end := readEnd(t, conn); end.GetExited() || !strings.Contains(end.GetStatus(), "killed") {
					t.Fatalf("end after SIGKILL: %v", end)
				}
				if _, ok := g.list()[pid]; ok {
					t.Fatal("killed process still listed")
				}
			})

			t.Run("files and filesystem", func(t *testing.T) {
				g := g.with(t)
				if _, err := g.fs.MakeDir(ctxT(t), connect.NewRequest(&fspb.MakeDirRequest{Path: dir})); err != nil {
					t.Fatal(err)
				}
				data := make([]byte, 1<<20)
				_, _ = rand.Read(data)
				g.upload(dir+"/blob.bin", data)
				g.upload(dir+"/note.txt", []byte("hello from the host\n"))
				if got := g.download(dir + "/blob.bin"); !bytes.Equal(got, data) {
					t.Fatalf("download: %d bytes, differs from the %d uploaded", len(got), len(data))
				}
				ls, err := g.fs.ListDir(ctxT(t), connect.NewRequest(&fspb.ListDirRequest{Path: dir, Depth: 1}))
				if err != nil {
					t.Fatal(err)
				}
				sizes := map[string]int64{}
				for _, e := range ls.Msg.GetEntries() {
					sizes[e.GetName()] = e.GetSize()
					if e.GetOwner() != "user" {
						t.Errorf("%s owned by %q, want the default user", e.GetPath(), e.GetOwner())
					}
				}
				if len(sizes) != 2 || sizes["blob.bin"] != 1<<20 || sizes["note.txt"] != 20 {
					t.Fatalf("ListDir: %v", sizes)
				}
				if out := g.sh("cat " + dir + "/note.txt"); out != "hello from the host\n" {
					t.Fatalf("guest reads %q", out)
				}
				_, err = g.stat(dir + "/missing")
				if connect.CodeOf(err) != connect.CodeNotFound {
					t.Fatalf("stat missing: %v", err)
				}
			})
		})
	}

	t.Run("snapshot prepare then the next request recovers", func(t *testing.T) {
		g := base.with(t)
		g.prepare()
		code, _ := dial(t, vm).do("GET", "/health", nil, nil)
		if code != http.StatusOK {
			t.Fatalf("health after prepare: %d", code)
		}
		if out := g.sh("echo alive"); out != "alive\n" {
			t.Fatalf("after recovery: %q", out)
		}
	})
}

// counterScript prints 0, 1, 2, ... one line every 0.1 s, forever.
const counterScript = `i=0; while :; do echo $i; i=$((i+1)); sleep 0.1; done`

// procStream is a Start or Connect client stream.
type procStream interface {
	Receive() bool
	Err() error
}

func eventOf(s procStream) *pb.ProcessEvent {
	switch v := s.(type) {
	case interface{ Msg() *pb.StartResponse }:
		return v.Msg().GetEvent()
	case interface{ Msg() *pb.ConnectResponse }:
		return v.Msg().GetEvent()
	}
	panic("not a process stream")
}

// readCounter reads a counterScript stream until it has printed a value
// ≥ min; it returns the pid from the start event and the last value.
func readCounter(t testing.TB, s procStream, min int) (uint32, int) {
	t.Helper()
	var pid uint32
	var partial []byte
	for s.Receive() {
		switch e := eventOf(s).GetEvent().(type) {
		case *pb.ProcessEvent_Start:
			pid = e.Start.GetPid()
		case *pb.ProcessEvent_Data:
			partial = append(partial, e.Data.GetStdout()...)
			last := -1
			for {
				line, rest, ok := bytes.Cut(partial, []byte("\n"))
				if !ok {
					break
				}
				partial = rest
				if n, err := atoi(string(line)); err == nil {
					last = n
				}
			}
			if last >= min {
				return pid, last
			}
		case *pb.ProcessEvent_End:
			t.Fatalf("counter ended: %v", e.End)
		}
	}
	t.Fatalf("counter stream ended: %v", s.Err())
	return 0, 0
}

// readEnd reads a stream to its end event.
func readEnd(t testing.TB, s procStream) *pb.ProcessEvent_EndEvent {
	t.Helper()
	for s.Receive() {
		if e, ok := eventOf(s).GetEvent().(*pb.ProcessEvent_End); ok {
			return e.End
		}
	}
	t.Fatalf("stream ended without an end event: %v", s.Err())
	return nil
}

func atoi(s string) (int, error) {
	n := 0
	if s == "" {
		return 0, errors.New("empty")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errors.New("not a number")
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

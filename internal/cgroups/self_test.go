package cgroups_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/testenv"
)

// TestEnvdProtectsItself: inside a VM, as root, envd makes itself the OOM
// killer's last choice (oom_score_adj -1000, BEHAVIOR.md 1.2) while the
// processes it starts still get 100 (E11), and it sets memory.min/low on
// its own group where the memory controller allows (logged otherwise).
func TestEnvdProtectsItself(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root := testenv.CgroupRoot(t)
	self := filepath.Join(root, "envd")
	if err := os.Mkdir(self, 0o755); err != nil {
		t.Fatal(err)
	}
	p := testenv.StartBinaryWith(t, testenv.BinaryOptions{Cgroup: self,
		Args: []string{"--isnotfc=false", "--no-cgroups=false", "--cgroup-root", root}})
	pid := p.Cmd.Process.Pid
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/oom_score_adj")
	switch {
	case hasCapSysResource(t):
		if strings.TrimSpace(string(b)) != "-1000" {
			t.Fatalf("envd oom_score_adj %q\n%s", b, p.Output)
		}
	case !strings.Contains(p.Output.String(), "cannot set envd's oom_score_adj"):
		t.Fatalf("no CAP_SYS_RESOURCE here, but the failure was not logged:\n%s", p.Output)
	}
	if b, err := os.ReadFile(filepath.Join(self, "memory.min")); err == nil {
		if strings.TrimSpace(string(b)) != strconv.Itoa(50<<20) {
			t.Errorf("memory.min %q", b)
		}
	} else if !strings.Contains(p.Output.String(), "envd memory protection skipped") {
		t.Errorf("memory.min absent and not logged:\n%s", p.Output)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := p.Process(testenv.Codecs[0]).Start(ctx, connect.NewRequest(&pb.StartRequest{
		Process: &pb.ProcessConfig{Cmd: "cat", Args: []string{"/proc/self/oom_score_adj"}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out strings.Builder
	for s.Receive() {
		out.Write(s.Msg().GetEvent().GetData().GetStdout())
	}
	if strings.TrimSpace(out.String()) != "100" {
		t.Fatalf("child oom_score_adj %q (%v)", out.String(), s.Err())
	}
}

// hasCapSysResource reports CAP_SYS_RESOURCE (24), which lowering an
// oom_score_adj needs; containers often drop it even for root.
func hasCapSysResource(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<24) != 0
		}
	}
	return false
}

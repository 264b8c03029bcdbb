package vm

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"connectrpc.com/connect"

	pb "github.com/sandboxd/envd/internal/gen/process"
)

// TestParallelRestoresAreIndependent restores one snapshot into several
// qemus at once, on different ports, as a host does when it forks
// sandboxes from a template, and checks that each copy has its own
// filesystem and its own process state from the snapshot on.
func TestParallelRestoresAreIndependent(t *testing.T) {
	const copies = 3
	m, golden := golden(t)
	dir := t.TempDir()
	vm := restore(t, m, golden)
	g := dial(t, vm)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tag := "shared-counter"
	start, err := g.proc.Start(ctx, connect.NewRequest(&pb.StartRequest{Tag: &tag,
		Process: &pb.ProcessConfig{Cmd: "/bin/sh", Args: []string{"-c", counterScript}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer start.Close()
	pid, last := readCounter(t, start, 2)
	g.upload("/tmp/before-fork", []byte("common"))
	g.prepare()
	snap := filepath.Join(dir, "fork.snap")
	if _, err := vm.Snapshot(snap); err != nil {
		t.Fatal(err)
	}

	vms := make([]*VM, copies)
	errs := make([]error, copies)
	var wg sync.WaitGroup
	for i := range copies {
		wg.Add(1)
		go func() { // owned here: wg.Wait below
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[i] = fmt.Errorf("panic: %v", r)
				}
			}()
			v, err := m.Restore(filepath.Join(dir, fmt.Sprint("copy-", i)), snap)
			if err == nil {
				_, err = v.WaitHealthy(restoreTimeout)
			}
			vms[i], errs[i] = v, err
		}()
	}
	wg.Wait()
	for i := range copies {
		if vms[i] != nil {
			t.Cleanup(vms[i].Kill)
		}
		if errs[i] != nil {
			t.Fatalf("copy %d: %v", i, errs[i])
		}
	}
	ports := map[int]bool{}
	gs := make([]*guest, copies)
	for i, v := range vms {
		ports[v.Port] = true
		gs[i] = dial(t, v)
		gs[i].upload(fmt.Sprintf("/tmp/copy-%d", i), []byte(fmt.Sprint("copy ", i)))
	}
	if len(ports) != copies {
		t.Fatalf("copies share host ports: %v", ports)
	}

	// Each copy resumes the counter from the snapshot's value, not from
	// another copy's progress.
	for i, cg := range gs {
		conn, err := cg.proc.Connect(ctx, connect.NewRequest(&pb.ConnectRequest{
			Process: &pb.ProcessSelector{Selector: &pb.ProcessSelector_Pid{Pid: pid}}}))
		if err != nil {
			t.Fatalf("copy %d: connect: %v", i, err)
		}
		_, v := readCounter(t, conn, last+1)
		conn.Close()
		t.Logf("copy %d: counter at %d (snapshot after %d)", i, v, last)
	}
	// Killing the process in copy 0 leaves it running in the others. The
	// kill is asynchronous (SIGKILL, then the reaper), so the check waits
	// for copy 0's end event before listing.
	ended, err := gs[0].proc.Connect(ctx, connect.NewRequest(&pb.ConnectRequest{
		Process: &pb.ProcessSelector{Selector: &pb.ProcessSelector_Pid{Pid: pid}}}))
	if err != nil {
		t.Fatalf("copy 0: connect: %v", err)
	}
	defer ended.Close()
	gs[0].kill(pid)
	if end := readEnd(t, ended); end.GetExitCode() != -1 || end.GetError() != "signal: killed" {
		t.Errorf("copy 0: end after SIGKILL = %v", end)
	}
	for i, cg := range gs {
		_, listed := cg.list()[pid]
		if listed != (i != 0) {
			t.Errorf("copy %d: process %d listed=%v after it was killed in copy 0 only", i, pid, listed)
		}
	}
	// Each copy sees the common file and its own, not the others'.
	for i, cg := range gs {
		if got := string(cg.download("/tmp/before-fork")); got != "common" {
			t.Errorf("copy %d: snapshot file %q", i, got)
		}
		for j := range copies {
			_, err := cg.stat(fmt.Sprintf("/tmp/copy-%d", j))
			if seen := err == nil; seen != (i == j) {
				t.Errorf("copy %d sees /tmp/copy-%d: %v (err %v)", i, j, seen, err)
			}
		}
	}
}

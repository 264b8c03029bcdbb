package vm

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"

	pb "github.com/sandboxd/envd/internal/gen/process"
)

// TestSnapshotRestoreCycles is the Wrenn pause/resume lifecycle, over and
// over on one guest: work in flight, POST /snapshot/prepare, snapshot with
// qemu quitting, restore into a new qemu, then check what must have
// survived and what envd must have cleaned up. The broken-recovery
// assertions are "pre-snapshot connection still ESTABLISHED" (recovery
// did not close it) and "idle keep-alive connection still open" (prepare
// did not close it).
func TestSnapshotRestoreCycles(t *testing.T) {
	m, snap := golden(t)
	dir := t.TempDir()
	vm := restore(t, m, snap)
	n := cycles(t)
	rssBefore := dial(t, vm).pid1RSS()
	var restoreTotal time.Duration
	for i := 1; i <= n; i++ {
		var took time.Duration
		vm, took = cycle(t, m, vm, dir, i)
		restoreTotal += took
	}
	rssAfter := dial(t, vm).pid1RSS()
	t.Logf("%d cycles; restore to healthy %s on average; envd VmRSS %d KiB before, %d KiB after",
		n, restoreTotal/time.Duration(n), rssBefore, rssAfter)
}

// pauseHold is how long each snapshot is kept before it is restored.
const pauseHold = time.Second

// cycle runs one pause/resume on vm and returns the restored VM and how
// long the restore took until /health answered.
func cycle(t *testing.T, m *Machine, vm *VM, dir string, i int) (*VM, time.Duration) {
	t.Helper()
	g := dial(t, vm)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Work in flight: a process streaming output, a file written, an
	// upload stuck mid-body, an idle keep-alive connection.
	tag := fmt.Sprintf("cycle-%d", i)
	start, err := g.proc.Start(ctx, connect.NewRequest(&pb.StartRequest{Tag: &tag,
		Process: &pb.ProcessConfig{Cmd: "/bin/sh", Args: []string{"-c", counterScript}}}))
	if err != nil {
		t.Fatalf("cycle %d: start: %v", i, err)
	}
	defer start.Close()
	pid, last := readCounter(t, start, 2)
	file := fmt.Sprintf("/tmp/cycle-%d.bin", i)
	data := make([]byte, 256<<10)
	_, _ = rand.Read(data)
	g.upload(file, data)
	stuck := stuckUpload(t, vm.Addr, fmt.Sprintf("/tmp/inflight-%d", i))
	defer stuck.c.Close()
	if st := g.connState(stuck.port); st != tcpEstablished {
		t.Fatalf("cycle %d: the guest does not show the upload from port %d as established (%q): "+
			"the stale-connection check below would prove nothing", i, stuck.port, st)
	}
	idle := idleConn(t, vm.Addr)
	defer idle.c.Close()

	g.prepare()
	idle.expectClosed(t, 10*time.Second, fmt.Sprintf("cycle %d: idle keep-alive connection after prepare", i))

	snapFile := filepath.Join(dir, fmt.Sprintf("cycle-%d.snap", i))
	stopped := time.Now()
	if _, err := vm.Snapshot(snapFile); err != nil {
		t.Fatalf("cycle %d: snapshot: %v", i, err)
	}
	// A paused sandbox stays paused for a while; hold the snapshot long
	// enough that the guest clock is clearly behind when it resumes.
	time.Sleep(time.Until(stopped.Add(pauseHold)))
	restoreStart := time.Now()
	next, err := m.Restore(filepath.Join(dir, fmt.Sprintf("vm-%d", i)), snapFile)
	if err != nil {
		t.Fatalf("cycle %d: restore: %v", i, err)
	}
	t.Cleanup(next.Kill)
	resumed := time.Now()
	_ = os.Remove(snapFile) // loaded: the new qemu no longer needs it
	// No /init first: recovery must not need it.
	if _, err := next.WaitHealthy(restoreTimeout); err != nil {
		t.Fatalf("cycle %d: %v", i, err)
	}
	took := time.Since(restoreStart)
	g2 := dial(t, next)

	// Recovery (run by that first /health) closed the pre-snapshot upload.
	if st := g2.connState(stuck.port); st == tcpEstablished {
		t.Fatalf("cycle %d: pre-snapshot connection from port %d still ESTABLISHED in the guest after recovery",
			i, stuck.port)
	}
	// Keep-alive is back on: two requests share one connection.
	checkKeepAlive(t, next, i)

	// The process carried on and a new Connect streams its later output.
	if info := g2.list()[pid]; info.GetTag() != tag {
		t.Fatalf("cycle %d: process %d not listed after restore: %v", i, pid, g2.list())
	}
	conn, err := g2.proc.Connect(ctx, connect.NewRequest(&pb.ConnectRequest{
		Process: &pb.ProcessSelector{Selector: &pb.ProcessSelector_Pid{Pid: pid}}}))
	if err != nil {
		t.Fatalf("cycle %d: connect: %v", i, err)
	}
	defer conn.Close()
	if _, v := readCounter(t, conn, last+1); v <= last {
		t.Fatalf("cycle %d: counter at %d after restore, was %d", i, v, last)
	}
	if got := g2.download(file); !bytes.Equal(got, data) {
		t.Fatalf("cycle %d: %s changed across the snapshot (%d bytes)", i, file, len(got))
	}

	// The guest clock stood still while the VM was down; /init with the
	// host's timestamp sets it.
	hostBefore, guestNow, _ := g2.guestTime()
	// hostBefore is taken before the guest reads its clock: a lower bound
	// of the lag, whatever the guest's latency.
	if lag := hostBefore.Sub(guestNow); lag < 100*time.Millisecond {
		t.Fatalf("cycle %d: guest clock only %s behind after a %s pause", i, lag, resumed.Sub(stopped))
	}
	// Stepped to the timestamp, the guest clock cannot read earlier than
	// it (nor later than the host's clock after the read).
	ts := time.Now()
	g2.initWith(map[string]any{"timestamp": ts.UTC().Format(time.RFC3339Nano)})
	_, guestNow, hostAfter := g2.guestTime()
	if guestNow.Before(ts) || guestNow.After(hostAfter.Add(50*time.Millisecond)) {
		t.Fatalf("cycle %d: after /init with %s the guest clock reads %s (host %s after the read)",
			i, ts.UTC(), guestNow.UTC(), hostAfter.UTC())
	}

	g2.kill(pid)
	if end := readEnd(t, conn); end.GetExited() {
		t.Fatalf("cycle %d: counter end %v, want killed", i, end)
	}
	return next, took
}

// checkKeepAlive makes two requests with one client and checks that the
// second reused the first one's connection.
func checkKeepAlive(t *testing.T, vm *VM, i int) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: callTimeout}
	reused := false
	for k := 0; k < 2; k++ {
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { reused = ci.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
			"GET", "http://"+vm.Addr+"/health", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("cycle %d: health: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if !reused {
		t.Fatalf("cycle %d: keep-alive still off after recovery: the second request needed a new connection", i)
	}
}

package ports_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/envd/internal/ports"
	"github.com/sandboxd/envd/internal/testenv"
)

// startEnvd runs the built binary in this package's network namespace,
// forwarding onto ports.FwdAddr, and waits until envd's own loopback port
// is forwarded too, so later descriptor counts start from a steady state.
func startEnvd(t testing.TB, args ...string) *testenv.Proc {
	t.Helper()
	p := testenv.StartBinaryWith(t, testenv.BinaryOptions{Args: append([]string{"--forward-addr", ports.FwdAddr}, args...)})
	_, port, _ := net.SplitHostPort(p.Addr)
	ports.DialWithin(t, net.JoinHostPort(ports.FwdAddr, port), 3*time.Second).Close()
	return p
}

// TestBinaryForwardsLoopbackServices is the acceptance run against
// the built binary: servers on 127.0.0.1 and ::1 are reachable at the
// forward address within 2 s of listening; 100 concurrent connections and
// 1 GiB are relayed intact; half-close works; a closed server stops being
// forwarded and a reopened one is forwarded again (E40); afterwards envd
// holds no more descriptors than before.
func TestBinaryForwardsLoopbackServices(t *testing.T) {
	ports.NeedNetns(t)
	p := startEnvd(t)
	pid := p.Cmd.Process.Pid
	fds := ports.FdCount(t, pid)

	v4 := ports.Serve(t, "127.0.0.1:0", ports.Echo)
	v6 := ports.Serve(t, "[::1]:0", ports.Echo)
	for _, s := range []interface{ Fwd() string }{v4, v6} {
		c := ports.DialWithin(t, s.Fwd(), 2*time.Second)
		fmt.Fprint(c, "ping")
		_ = c.CloseWrite() // half-close: the echo still answers
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "ping" {
			t.Fatalf("%s: %q %v", s.Fwd(), got, err)
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := v4.Fwd()
			if i%2 == 1 {
				target = v6.Fwd()
			}
			c, err := net.Dial("tcp", target)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			msg := make([]byte, 32<<10)
			_, _ = rand.Read(msg)
			go func() { _, _ = c.Write(msg); _ = c.(*net.TCPConn).CloseWrite() }()
			if got, err := io.ReadAll(c); err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("conn %d: %d bytes, %v", i, len(got), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	sink := ports.Serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		h := sha256.New()
		n, _ := io.Copy(h, c)
		fmt.Fprintf(c, "%d %x", n, h.Sum(nil))
	})
	c := ports.DialWithin(t, sink.Fwd(), 2*time.Second)
	want := ports.SendPattern(t, c, 1<<30)
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != want {
		t.Fatalf("1 GiB: service saw %q, sent %q (%v)", got, want, err)
	}

	port := v4.Port()
	v4.Close()
	awaitRefused(t, v4.Fwd())
	v4 = ports.Serve(t, "127.0.0.1:"+strconv.Itoa(port), ports.Echo)
	c = ports.DialWithin(t, v4.Fwd(), 2*time.Second)
	fmt.Fprint(c, "again")
	_ = c.CloseWrite()
	if got, _ := io.ReadAll(c); string(got) != "again" {
		t.Fatalf("reopened port: %q", got)
	}
	c.Close()

	for _, s := range []interface{ Close() }{v4, v6, sink} {
		s.Close()
	}
	for _, s := range []interface{ Fwd() string }{v4, v6, sink} {
		awaitRefused(t, s.Fwd())
	}
	ports.AwaitSettle(t, "envd fds", fds, func() int { return ports.FdCount(t, pid) })
	if out := p.Output.String(); strings.Contains(out, "panic") || strings.Contains(out, "level=ERROR") {
		t.Fatalf("envd log:\n%s", out)
	}
}

// awaitRefused waits until the forward listener is gone (the next scans).
func awaitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still forwarded after its server closed", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBinaryForwardsWhileWorkloadFrozen: with native forwarding nothing is
// spawned per port, so a new listener is forwarded while the workload is
// frozen and envd stays responsive (E16, where a socat spawn into the
// frozen cgroup hung E2B's envd).
func TestBinaryForwardsWhileWorkloadFrozen(t *testing.T) {
	ports.NeedNetns(t)
	root := testenv.CgroupRoot(t)
	p := startEnvd(t, "--no-cgroups=false", "--cgroup-root", root)
	resp, err := p.HTTP.Post(p.URL+"/freeze?maxWaitMs=2000", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("freeze: %v %v", resp, err)
	}
	resp.Body.Close()
	if b, _ := os.ReadFile(filepath.Join(root, "user", "cgroup.events")); !strings.Contains(string(b), "frozen 1") {
		t.Fatalf("user not frozen: %q", b)
	}
	s := ports.Serve(t, "127.0.0.1:0", ports.Echo)
	c := ports.DialWithin(t, s.Fwd(), 2*time.Second)
	fmt.Fprint(c, "frozen")
	_ = c.CloseWrite()
	if got, _ := io.ReadAll(c); string(got) != "frozen" {
		t.Fatalf("%q", got)
	}
	c.Close()
	if resp, err := p.HTTP.Get(p.URL + "/health"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("health while frozen: %v", err)
	} else {
		resp.Body.Close()
	}
}

// TestBinarySnapshotCycleStopsAndRestartsForwarding: /snapshot/prepare
// stops forwarding (W12: no scanning while the VM pauses) and the first
// request after restore starts it again (BEHAVIOR.md 6.3, 7.5).
func TestBinarySnapshotCycleStopsAndRestartsForwarding(t *testing.T) {
	ports.NeedNetns(t)
	p := startEnvd(t, "--flavor", "wrenn")
	s := ports.Serve(t, "127.0.0.1:0", ports.Echo)
	ports.DialWithin(t, s.Fwd(), 2*time.Second).Close()
	for round := 0; round < 3; round++ {
		resp, err := p.HTTP.Post(p.URL+"/snapshot/prepare", "", nil)
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("prepare: %v %v", resp, err)
		}
		resp.Body.Close()
		if c, err := net.Dial("tcp", s.Fwd()); err == nil {
			c.Close()
			t.Fatalf("round %d: still forwarded after prepare", round)
		}
		resp, err = p.HTTP.Get(p.URL + "/health") // restore
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ports.DialWithin(t, s.Fwd(), 2*time.Second).Close()
	}
}

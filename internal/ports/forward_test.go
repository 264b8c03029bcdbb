package ports

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoopbackServicesReachableThroughForwardAddr: servers on 127.0.0.1
// and ::1 answer at the forward address within 2 s (PROTOCOL.md 7.4).
func TestLoopbackServicesReachableThroughForwardAddr(t *testing.T) {
	needNetns(t)
	f, _ := startFwd(t, Options{Interval: time.Second})
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "[::ffff:127.0.0.1]:0"} {
		s := serve(t, addr, echo)
		c := dialWithin(t, s.fwd(), 2*time.Second)
		msg := []byte("hello through " + addr)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		_ = c.CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%s: echo %q, %v", addr, got, err)
		}
		if !contains(f.Forwarded(), s.port) {
			t.Fatalf("%s: port %d not listed", addr, s.port)
		}
	}
}

// TestWildcardListenersAreNotForwarded: 0.0.0.0 and :: are reachable
// already; forwarding them clashed (E38). Other addresses are not
// loopback services either.
func TestWildcardListenersAreNotForwarded(t *testing.T) {
	needNetns(t)
	f, _ := startFwd(t, Options{})
	var ports []int
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", fwdAddr + ":0", "127.0.0.2:0"} {
		ports = append(ports, serve(t, addr, echo).port)
	}
	awaitScans(t, f, 3)
	for _, p := range ports {
		if contains(f.Forwarded(), p) {
			t.Errorf("port %d forwarded, want not", p)
		}
	}
}

// TestClosedPortStopsAndReopenedPortForwardsAgain: the entry of a closed
// port is deleted, so the same port listening again is forwarded again
// (E40: E2B kept the entry and lost the forward).
func TestClosedPortStopsAndReopenedPortForwardsAgain(t *testing.T) {
	needNetns(t)
	f, _ := startFwd(t, Options{})
	s := serve(t, "127.0.0.1:0", echo)
	dialWithin(t, s.fwd(), 2*time.Second).Close()
	s.Close()
	awaitForwarded(t, f, s.port, false)
	if c, err := net.Dial("tcp", s.fwd()); err == nil {
		c.Close()
		t.Fatal("closed port still accepts at the forward address")
	}
	for i := 0; i < 3; i++ {
		s = serve(t, "127.0.0.1:"+strconv.Itoa(s.port), echo)
		c := dialWithin(t, s.fwd(), 2*time.Second)
		fmt.Fprintf(c, "round %d", i)
		_ = c.CloseWrite()
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != fmt.Sprintf("round %d", i) {
			t.Fatalf("round %d: %q", i, got)
		}
		s.Close()
		awaitForwarded(t, f, s.port, false)
	}
}

// TestHalfCloseBothWays: EOF from one side becomes a FIN on the other
// while the opposite direction keeps flowing.
func TestHalfCloseBothWays(t *testing.T) {
	needNetns(t)
	startFwd(t, Options{})
	// The service reads to EOF, then answers with the byte count.
	s := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d", n)
	})
	c := dialWithin(t, s.fwd(), 2*time.Second)
	payload := bytes.Repeat([]byte("x"), 300_000)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	_ = c.CloseWrite()
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "got 300000" {
		t.Fatalf("client half-close: %q %v", got, err)
	}
	// The service half-closes first and then still reads what follows.
	done := make(chan string, 1)
	s2 := serve(t, "[::1]:0", func(c *net.TCPConn) {
		_, _ = c.Write([]byte("banner"))
		_ = c.CloseWrite()
		b, _ := io.ReadAll(c)
		done <- string(b)
	})
	c = dialWithin(t, s2.fwd(), 2*time.Second)
	banner, err := io.ReadAll(c) // ends at the service's FIN
	if err != nil || string(banner) != "banner" {
		t.Fatalf("service half-close: %q %v", banner, err)
	}
	if _, err := c.Write([]byte("after FIN")); err != nil {
		t.Fatal(err)
	}
	_ = c.CloseWrite()
	if got := <-done; got != "after FIN" {
		t.Fatalf("service read %q after its own half-close", got)
	}
	c.Close()
}

// TestHundredConcurrentConnections relays 100 connections at once, each
// with its own random payload echoed back intact.
func TestHundredConcurrentConnections(t *testing.T) {
	needNetns(t)
	startFwd(t, Options{})
	s := serve(t, "127.0.0.1:0", echo)
	dialWithin(t, s.fwd(), 2*time.Second).Close()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", s.fwd())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			msg := make([]byte, 64<<10)
			_, _ = rand.Read(msg)
			go func() { _, _ = c.Write(msg); _ = c.(*net.TCPConn).CloseWrite() }()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("conn %d: %d bytes back, %v", i, len(got), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLargeTransferIntact relays 256 MiB one way and compares SHA-256 on
// both ends (the binary test moves 1 GiB).
func TestLargeTransferIntact(t *testing.T) {
	needNetns(t)
	startFwd(t, Options{})
	s := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		h := sha256.New()
		n, _ := io.Copy(h, c)
		fmt.Fprintf(c, "%d %x", n, h.Sum(nil))
	})
	c := dialWithin(t, s.fwd(), 2*time.Second)
	defer c.Close()
	want := sendPattern(t, c, 256<<20)
	got, err := io.ReadAll(c)
	if err != nil || string(got) != want {
		t.Fatalf("service saw %q, sent %q (%v)", got, want, err)
	}
}

// sendPattern writes size bytes of a random 1 MiB block repeated, then
// half-closes; it returns "<size> <sha256>".
func sendPattern(t testing.TB, c *net.TCPConn, size int) string {
	t.Helper()
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	h := sha256.New()
	for sent := 0; sent < size; sent += len(block) {
		if _, err := c.Write(block); err != nil {
			t.Fatal(err)
		}
		h.Write(block)
	}
	_ = c.CloseWrite()
	return fmt.Sprintf("%d %x", size, h.Sum(nil))
}

// TestConnectionCapRefusesWithOneLogLine: at MaxConns relayed connections
// new ones are closed at once, the cap is logged once, and a freed slot
// is usable again.
func TestConnectionCapRefusesWithOneLogLine(t *testing.T) {
	needNetns(t)
	f, logs := startFwd(t, Options{MaxConns: 2})
	s := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		_, _ = c.Write([]byte("hi"))
		_, _ = io.Copy(io.Discard, c) // until the client's FIN
	})
	var held []*net.TCPConn
	for i := 0; i < 2; i++ {
		c := dialWithin(t, s.fwd(), 2*time.Second)
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("held conn %d: %v", i, err)
		}
		held = append(held, c)
	}
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", s.fwd())
		if err != nil {
			continue // the reset can beat connect(2)'s return
		}
		if n, err := c.Read(make([]byte, 2)); err == nil {
			t.Fatalf("connection over the cap relayed (%d bytes)", n)
		}
		c.Close()
	}
	if n := strings.Count(logs.String(), "relayed connection cap reached"); n != 1 {
		t.Fatalf("cap logged %d times:\n%s", n, logs)
	}
	held[0].Close()
	// The relay notices the close and frees its slot.
	deadline := time.Now().Add(10 * time.Second)
	for len(f.slots) == 2 {
		if time.Now().After(deadline) {
			t.Fatal("slot not released")
		}
		time.Sleep(time.Millisecond)
	}
	c := dialWithin(t, s.fwd(), 2*time.Second)
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatalf("after a slot freed: %v", err)
	}
	c.Close()
	held[1].Close()
}

// TestForwardAddressTakenSkippedWithOneLogLine: someone else bound the
// forward address on that port; envd skips it and says so once.
func TestForwardAddressTakenSkippedWithOneLogLine(t *testing.T) {
	needNetns(t)
	s := serve(t, "127.0.0.1:0", echo)
	other := serve(t, s.fwd(), echo)
	f, logs := startFwd(t, Options{})
	awaitScans(t, f, 5)
	if contains(f.Forwarded(), s.port) {
		t.Fatal("forwarded over a taken address")
	}
	if n := strings.Count(logs.String(), "cannot forward port"); n != 1 {
		t.Fatalf("logged %d times:\n%s", n, logs)
	}
	other.Close()
}

// TestStopStartRepeatedlyLeaksNothing: the snapshot cycle stops and
// starts forwarding; 100 rounds with live relays leave no goroutine, fd
// or listener behind (W17).
func TestStopStartRepeatedlyLeaksNothing(t *testing.T) {
	needNetns(t)
	s := serve(t, "127.0.0.1:0", echo)
	f, _ := startFwd(t, Options{})
	f.Stop()
	goroutines, fds := runtime.NumGoroutine(), fdCount(t, os.Getpid())
	for i := 0; i < 100; i++ {
		f.Start()
		c := dialWithin(t, s.fwd(), 2*time.Second)
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		f.Stop() // closes the live relay too
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("round %d: relay survived Stop", i)
		}
		c.Close()
		if _, err := net.Dial("tcp", s.fwd()); err == nil {
			t.Fatalf("round %d: listener survived Stop", i)
		}
	}
	f.Stop()
	awaitSettle(t, "goroutines", goroutines, runtime.NumGoroutine)
	awaitSettle(t, "fds", fds, func() int { return fdCount(t, os.Getpid()) })
}

// TestStopReturnsWhileRelayStalled: Stop must not wait on a relay whose
// reader stopped reading (E39).
func TestStopReturnsWhileRelayStalled(t *testing.T) {
	needNetns(t)
	f, _ := startFwd(t, Options{})
	s := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		_, _ = io.Copy(c, zeroReader{}) // until the relay goes away
	})
	c := dialWithin(t, s.fwd(), 2*time.Second)
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { f.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop blocked on a stalled relay")
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestLoopbackForwardAddrDisables(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "::1", "0.0.0.0", "bogus"} {
		f, logs := startFwd(t, Options{ForwardAddr: a})
		if f.fwd.IsValid() || f.cur != nil || !strings.Contains(logs.String(), "port forwarding disabled") {
			t.Errorf("%s: forwarding not disabled:\n%s", a, logs)
		}
	}
}

// TestSockDiagMatchesProcNet: the netlink scan and the /proc fallback see
// the same listening sockets.
func TestSockDiagMatchesProcNet(t *testing.T) {
	needNetns(t)
	for _, a := range []string{"127.0.0.1:0", "[::1]:0", "0.0.0.0:0", "[::]:0", "[::ffff:127.0.0.1]:0"} {
		serve(t, a, echo)
	}
	d, err := newDiag()
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	a, err := d.listeners()
	if err != nil {
		t.Fatal(err)
	}
	b, err := procListeners(nil)
	if err != nil {
		t.Fatal(err)
	}
	set := func(ls []listener) map[listener]bool {
		m := map[listener]bool{}
		for _, l := range ls {
			m[l] = true
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) < 5 || len(sa) != len(sb) {
		t.Fatalf("sock_diag %v\nproc %v", a, b)
	}
	for l := range sa {
		if !sb[l] {
			t.Fatalf("%+v missing from /proc", l)
		}
	}
}

// TestPortChurnLeaksNothing: services open, relay and close while the
// forwarder keeps running; afterwards its goroutines and descriptors are
// back where they started.
func TestPortChurnLeaksNothing(t *testing.T) {
	needNetns(t)
	f, _ := startFwd(t, Options{})
	awaitScans(t, f, 1)
	goroutines, fds := runtime.NumGoroutine(), fdCount(t, os.Getpid())
	for i := 0; i < 20; i++ {
		s := serve(t, "127.0.0.1:0", echo)
		c := dialWithin(t, s.fwd(), 2*time.Second)
		fmt.Fprintf(c, "churn %d", i)
		_ = c.CloseWrite()
		if got, _ := io.ReadAll(c); string(got) != fmt.Sprintf("churn %d", i) {
			t.Fatalf("round %d: %q", i, got)
		}
		c.Close()
		s.Close()
		awaitForwarded(t, f, s.port, false)
	}
	awaitSettle(t, "goroutines", goroutines, runtime.NumGoroutine)
	awaitSettle(t, "fds", fds, func() int { return fdCount(t, os.Getpid()) })
}

// TestMissingForwardAddressLoggedOnce: a forward address no interface
// holds (a dev machine, the SDK test namespace) costs one log line, not
// one per port per scan.
func TestMissingForwardAddressLoggedOnce(t *testing.T) {
	needNetns(t)
	for i := 0; i < 3; i++ {
		serve(t, "127.0.0.1:0", echo)
	}
	f, logs := startFwd(t, Options{ForwardAddr: "10.213.0.99"})
	awaitScans(t, f, 3)
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "on no interface") {
		t.Fatalf("%d warnings:\n%s", n, logs)
	}
	if len(f.Forwarded()) != 0 {
		t.Fatalf("forwarded %v", f.Forwarded())
	}
}

// TestScanIsBounded: one scan keeps at most maxListeners sockets, from
// netlink and from the /proc fallback alike.
func TestScanIsBounded(t *testing.T) {
	needNetns(t)
	for i := 0; i < maxListeners+10; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Skipf("cannot open %d listeners: %v", maxListeners+10, err)
		}
		t.Cleanup(func() { ln.Close() })
	}
	d, err := newDiag()
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	a, err := d.listeners()
	if err != nil || len(a) != maxListeners {
		t.Fatalf("sock_diag: %d listeners, %v", len(a), err)
	}
	b, err := procListeners(nil)
	if err != nil || len(b) != maxListeners {
		t.Fatalf("/proc: %d listeners, %v", len(b), err)
	}
}

package ports

import (
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// logBuf collects log output across goroutines.
type logBuf struct {
	mu sync.Mutex // guards b
	b  []byte
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

func startFwd(t testing.TB, o Options) (*Forwarder, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	o.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.ForwardAddr == "" {
		o.ForwardAddr = fwdAddr
	}
	if o.Interval == 0 {
		o.Interval = 20 * time.Millisecond
	}
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.Start()
	t.Cleanup(f.Stop)
	return f, logs
}

// awaitScans waits until n more scans completed after the call.
func awaitScans(t testing.TB, f *Forwarder, n uint64) {
	t.Helper()
	want := f.Scans() + n
	deadline := time.Now().Add(10 * time.Second)
	for f.Scans() < want {
		if time.Now().After(deadline) {
			t.Fatalf("scans stuck at %d (want %d)", f.Scans(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// dialWithin polls a dial until it succeeds or the budget passes: the
// "reachable within" check of the issue.
func dialWithin(t testing.TB, addr string, budget time.Duration) *net.TCPConn {
	t.Helper()
	deadline := time.Now().Add(budget)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.(*net.TCPConn)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not reachable within %v: %v", addr, budget, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// server is a loopback service run by a test.
type server struct {
	ln   *net.TCPListener
	wg   sync.WaitGroup
	port int
}

// serve listens on addr ("127.0.0.1:0", "[::1]:0", ...) and runs handle
// per connection; Close waits for every handler.
func serve(t testing.TB, addr string, handle func(*net.TCPConn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln.(*net.TCPListener), port: ln.Addr().(*net.TCPAddr).Port}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.AcceptTCP()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *server) Close() {
	_ = s.ln.Close()
	s.wg.Wait()
}

func (s *server) fwd() string { return net.JoinHostPort(fwdAddr, strconv.Itoa(s.port)) }

// echo copies the connection back and half-closes at EOF.
func echo(c *net.TCPConn) {
	_, _ = io.Copy(c, c)
	_ = c.CloseWrite()
}

func contains(ports []int, p int) bool {
	for _, v := range ports {
		if v == p {
			return true
		}
	}
	return false
}

// awaitForwarded waits until port is (or is not) in the forward set.
func awaitForwarded(t testing.TB, f *Forwarder, port int, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for contains(f.Forwarded(), port) != want {
		if time.Now().After(deadline) {
			t.Fatalf("port %d forwarded=%v after 10s, want %v", port, !want, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func fdCount(t testing.TB, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// awaitSettle polls get until it returns want or at most want, for
// counts that drop asynchronously (goroutines ending, fds closing).
func awaitSettle(t testing.TB, what string, want int, get func() int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := get()
		if got <= want {
			return
		}
		if time.Now().After(deadline) {
			if what == "goroutines" {
				buf := make([]byte, 1<<20)
				t.Logf("%s", buf[:runtime.Stack(buf, true)])
			}
			t.Fatalf("%s: %d, want ≤ %d (leak)", what, got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

package lifecycle

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// portsRec is a Ports hook that counts calls.
type portsRec struct {
	mu            sync.Mutex // guards stops, starts
	stops, starts int
}

func (p *portsRec) Stop()  { p.mu.Lock(); p.stops++; p.mu.Unlock() }
func (p *portsRec) Start() { p.mu.Lock(); p.starts++; p.mu.Unlock() }
func (p *portsRec) counts() (int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stops, p.starts
}

// serveBound serves a small handler set through l.Bind, like the daemon:
// /prepare does what the server's /snapshot/prepare does, /slow holds its
// request until released or the connection dies.
func serveBound(t *testing.T, l *Lifecycle, release <-chan struct{}) string {
	mux := http.NewServeMux()
	mux.HandleFunc("/prepare", func(w http.ResponseWriter, r *http.Request) {
		gen := l.PrepareSnapshot(r.Context())
		w.WriteHeader(http.StatusNoContent)
		_ = http.NewResponseController(w).Flush()
		l.AfterPrepare(gen)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		select {
		case <-release:
			_, _ = io.WriteString(w, "released")
		case <-r.Context().Done():
		}
	})
	hs := &http.Server{Handler: mux}
	hs.Protocols = new(http.Protocols)
	hs.Protocols.SetHTTP1(true)
	hs.Protocols.SetUnencryptedHTTP2(true)
	l.Bind(hs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// h1 sends one request on c and returns the response (body read).
func h1(t *testing.T, c net.Conn, br *bufio.Reader, path string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: envd\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if path != "/slow" {
		_, _ = io.ReadAll(resp.Body)
	}
	return resp
}

// awaitEOF waits until envd closes c (the client side sees EOF or reset).
func awaitEOF(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: envd did not close the connection", what)
	}
}

// watchConn records when reads on a connection fail (closed by the peer).
type watchConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (w *watchConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err != nil {
		w.once.Do(func() { close(w.closed) })
	}
	return n, err
}

func h2conn(t *testing.T, addr string) (*http2.ClientConn, *watchConn) {
	wc := &watchConn{Conn: dial(t, addr), closed: make(chan struct{})}
	cc, err := (&http2.Transport{AllowHTTP: true}).NewClientConn(wc)
	if err != nil {
		t.Fatal(err)
	}
	return cc, wc
}

func h2get(t *testing.T, cc *http2.ClientConn, addr, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func trackedOpen(l *Lifecycle, n int) func() bool {
	return func() bool { open, _ := l.TrackedConns(); return open == n }
}

func prepare(t *testing.T, addr string) {
	t.Helper()
	c := dial(t, addr)
	resp := h1(t, c, bufio.NewReader(c), "/prepare")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("prepare: %d", resp.StatusCode)
	}
}

// BEHAVIOR.md 11.4 W14: connections open at prepare time are dead on the
// host side after restore. Prepare closes the idle ones (HTTP/1 and h2c)
// and marks the rest; the first request after restore is served at once
// and envd closes every marked connection; keep-alives, GOMAXPROCS and the
// port subsystem come back.
func TestRestoreClosesPreSnapshotConnsOnFirstRequest(t *testing.T) {
	ports := &portsRec{}
	procs := runtime.GOMAXPROCS(0)
	l, _ := newLC(t, func(o *Options) {
		o.Ports, o.SingleThreadWhilePaused, o.RestoreAfter = ports, true, time.Hour
	})
	release := make(chan struct{})
	defer close(release)
	addr := serveBound(t, l, release)

	idle := dial(t, addr)
	h1(t, idle, bufio.NewReader(idle), "/ok")
	fresh := dial(t, addr) // connected, no request yet
	active := dial(t, addr)
	if resp := h1(t, active, bufio.NewReader(active), "/slow"); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	cc, h2w := h2conn(t, addr)
	_ = h2get(t, cc, addr, "/ok").Body.Close()
	waitFor(t, "4 tracked connections", trackedOpen(l, 4))

	prepare(t, addr)
	awaitEOF(t, idle, "idle HTTP/1 connection at prepare")
	select {
	case <-h2w.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("idle h2c connection not closed at prepare")
	}
	waitFor(t, "2 pre-snapshot connections", func() bool { open, pre := l.TrackedConns(); return open == 2 && pre == 2 })
	waitFor(t, "GOMAXPROCS(1)", func() bool { return runtime.GOMAXPROCS(0) == 1 || procs == 1 })
	if stops, starts := ports.counts(); stops != 1 || starts != 0 {
		t.Fatalf("ports stops=%d starts=%d after prepare", stops, starts)
	}

	// Restore: the VM resumes, the old connections are dead on the host
	// side; a new request must be served at once.
	c := dial(t, addr)
	br := bufio.NewReader(c)
	resp := h1(t, c, br, "/ok")
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("first request after restore: %d close=%v", resp.StatusCode, resp.Close)
	}
	awaitEOF(t, fresh, "pre-snapshot connection without a request")
	awaitEOF(t, active, "pre-snapshot connection with a request in flight")
	if resp := h1(t, c, br, "/ok"); resp.StatusCode != http.StatusOK {
		t.Fatal("keep-alive connection not reusable after restore")
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Fatalf("GOMAXPROCS %d after restore, want %d", got, procs)
	}
	if stops, starts := ports.counts(); stops != 1 || starts != 1 {
		t.Fatalf("ports stops=%d starts=%d after restore", stops, starts)
	}
	// Recovery runs once per cycle.
	h1(t, c, br, "/ok")
	if _, starts := ports.counts(); starts != 1 {
		t.Fatal("recovery ran twice")
	}
	// Close lifts a guard still in force (GOMAXPROCS is process-wide).
	prepare(t, addr)
	waitFor(t, "GOMAXPROCS(1) again", func() bool { return runtime.GOMAXPROCS(0) == 1 || procs == 1 })
	_ = l.Close()
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Fatalf("GOMAXPROCS %d after Close, want %d", got, procs)
	}
}

// BEHAVIOR.md 7.6 item 5 / 11.3 W7: recovery does not depend on a request
// arriving: a timer runs it.
func TestRestoreByTimerWithoutRequest(t *testing.T) {
	ports := &portsRec{}
	l, logs := newLC(t, func(o *Options) { o.Ports, o.RestoreAfter = ports, 30*time.Millisecond })
	addr := serveBound(t, l, nil)
	fresh := dial(t, addr)
	waitFor(t, "1 tracked connection", trackedOpen(l, 1))
	prepare(t, addr)
	awaitEOF(t, fresh, "pre-snapshot connection after the restore timer")
	waitFor(t, "ports restarted", func() bool { _, s := ports.counts(); return s == 1 })
	// The log line follows the restart; await it rather than race it.
	waitFor(t, "recovery logged as timer-triggered", func() bool { return strings.Contains(logs.String(), "trigger=timer") })
	if strings.Contains(logs.String(), "trigger=request") {
		t.Fatalf("recovery was triggered by a request:\n%s", logs)
	}
}

// The request that triggers recovery may arrive on a pre-snapshot h2c
// connection (a pause that failed): that connection and its other streams
// survive; every other pre-snapshot connection is closed.
func TestRestoreKeepsTriggeringConnection(t *testing.T) {
	l, _ := newLC(t, func(o *Options) { o.RestoreAfter = time.Hour })
	release := make(chan struct{})
	addr := serveBound(t, l, release)
	cc, h2w := h2conn(t, addr)
	slow := h2get(t, cc, addr, "/slow") // keeps the connection active
	other := dial(t, addr)
	waitFor(t, "2 tracked connections", trackedOpen(l, 2))
	prepare(t, addr)
	resp := h2get(t, cc, addr, "/ok")
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "ok" {
		t.Fatalf("request on the triggering connection: %q", body)
	}
	awaitEOF(t, other, "other pre-snapshot connection")
	close(release)
	b, err := io.ReadAll(slow.Body)
	if err != nil || string(b) != "released" {
		t.Fatalf("stream on the triggering connection: %q %v", b, err)
	}
	select {
	case <-h2w.closed:
		t.Fatal("triggering connection was closed")
	default:
	}
}

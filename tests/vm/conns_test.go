package vm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawConn is a hand-driven HTTP/1.1 connection to the guest, for states
// a client library hides: idle between requests, or stuck mid-upload.
type rawConn struct {
	c    net.Conn
	br   *bufio.Reader
	port int // host-side source port; slirp keeps it as the guest's peer port
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c: c, br: bufio.NewReader(c), port: c.LocalAddr().(*net.TCPAddr).Port}
}

// idleConn makes one keep-alive GET /health and leaves the connection
// open and idle, as a host's connection pool does.
func idleConn(t testing.TB, addr string) *rawConn {
	t.Helper()
	rc := dialRaw(t, addr)
	_ = rc.c.SetDeadline(time.Now().Add(callTimeout))
	if _, err := io.WriteString(rc.c, "GET /health HTTP/1.1\r\nHost: envd\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("keep-alive GET /health: status %d, Connection: close %v (keep-alives off?)", resp.StatusCode, resp.Close)
	}
	_ = rc.c.SetDeadline(time.Time{})
	return rc
}

// stuckUpload starts a 1 MiB raw upload to path, waits for envd's
// "100 Continue" (the handler is reading the body), sends 4 KiB and
// stops: the connection stays active in envd, with nothing to send.
func stuckUpload(t testing.TB, addr, path string) *rawConn {
	t.Helper()
	rc := dialRaw(t, addr)
	_ = rc.c.SetDeadline(time.Now().Add(callTimeout))
	fmt.Fprintf(rc.c, "POST /files?path=%s HTTP/1.1\r\nHost: envd\r\nContent-Type: application/octet-stream\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", path, 1<<20)
	line, err := rc.br.ReadString('\n')
	if err != nil || !strings.Contains(line, " 100 ") {
		t.Fatalf("upload: want 100 Continue, got %q %v", line, err)
	}
	if blank, err := rc.br.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("upload: after 100 Continue %q %v", blank, err)
	}
	if _, err := rc.c.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	_ = rc.c.SetDeadline(time.Time{})
	return rc
}

// expectClosed reads until the peer closes (EOF or reset), bounded by d.
func (rc *rawConn) expectClosed(t testing.TB, d time.Duration, what string) {
	t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(d))
	_, err := rc.br.ReadByte()
	var ne net.Error
	switch {
	case err == nil:
		t.Fatalf("%s: got data, want the connection closed", what)
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("%s: still open after %s, want it closed by envd", what, d)
	}
}

// tcpConn is one row of the guest's /proc/net/tcp{,6}.
type tcpConn struct {
	localPort, remotePort int
	state                 string // hex, 01 = ESTABLISHED
}

const tcpEstablished = "01"

// guestConns lists the guest's TCP sockets on envd's port.
func (g *guest) guestConns() []tcpConn {
	g.t.Helper()
	var out []tcpConn
	for _, l := range strings.Split(g.sh("cat /proc/net/tcp /proc/net/tcp6"), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || f[0] == "sl" {
			continue
		}
		lp, rp := hexPort(f[1]), hexPort(f[2])
		if lp == GuestPort {
			out = append(out, tcpConn{localPort: lp, remotePort: rp, state: f[3]})
		}
	}
	return out
}

func hexPort(addr string) int {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.ParseInt(p, 16, 32)
	return int(n)
}

// connState returns the guest-side state of the connection whose peer
// port is port ("" when the guest has no such socket).
func (g *guest) connState(port int) string {
	for _, c := range g.guestConns() {
		if c.remotePort == port {
			return c.state
		}
	}
	return ""
}

// pid1RSS returns envd's VmRSS in KiB, read inside the guest.
func (g *guest) pid1RSS() int {
	g.t.Helper()
	for _, l := range strings.Split(g.sh("cat /proc/1/status"), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	g.t.Fatal("no VmRSS in /proc/1/status")
	return 0
}

// cycles is how many snapshot/restore cycles to run: $ENVD_VM_CYCLES
// (use ≥ 100 for a soak), default 20.
func cycles(t testing.TB) int {
	if v := os.Getenv("ENVD_VM_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ENVD_VM_CYCLES=%q", v)
		}
		return n
	}
	return 20
}

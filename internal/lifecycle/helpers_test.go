package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/envd/internal/auth"
	"github.com/sandboxd/envd/internal/config"
	"github.com/sandboxd/envd/internal/execctx"
)

// logBuf collects log output across goroutines.
type logBuf struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newLC builds a Lifecycle on temp paths, --isnotfc unless mutate says
// otherwise, and closes it when the test ends.
func newLC(t *testing.T, mutate func(*Options)) (*Lifecycle, *logBuf) {
	t.Helper()
	dir := t.TempDir()
	logs := &logBuf{}
	o := Options{
		Log:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Flavor:        config.Wrenn,
		RunDir:        dir + "/run",
		IsNotFC:       true,
		MMDSAddr:      "127.0.0.1:1",
		Defaults:      execctx.New(map[string]string{"WRENN_SANDBOX": "true"}),
		Token:         &auth.Token{},
		HostsPath:     dir + "/hosts",
		CABundlePath:  dir + "/certs/ca-certificates.crt",
		CAPersistPath: dir + "/share/wrenn-ca.crt",
		SetClock:      func(time.Time) error { t.Error("clock set unexpectedly"); return nil },
		RunCommand:    execRun,
	}
	if mutate != nil {
		mutate(&o)
	}
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, logs
}

func ptr[T any](v T) *T { return &v }

// mmdsSim is a faithful Firecracker MMDS v2 on loopback: PUT
// /latest/api/token needs X-metadata-token-ttl-seconds and returns a
// session token; GET / needs that token (401 otherwise) and answers JSON
// when asked for it, the key listing as text otherwise.
type mmdsSim struct {
	t    *testing.T
	addr string

	mu        sync.Mutex // guards the fields below
	meta      map[string]any
	failNext  int           // answer this many requests with 503
	hang      chan struct{} // when non-nil, token PUTs block until closed
	tokens    map[string]bool
	puts      int
	gets      int
	noTTL     int // token PUTs refused for a missing TTL header
	noToken   int // GETs refused for a missing or unknown token
	n         int
	abandoned int // hung requests the client gave up on
	conns     int // TCP connections accepted
	reqs      int // requests of any kind
}

func newMMDSSim(t *testing.T, meta map[string]any) *mmdsSim {
	m := &mmdsSim{t: t, meta: meta, tokens: map[string]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = ln.Addr().String()
	srv := &http.Server{Handler: m, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			m.mu.Lock()
			m.conns++
			m.mu.Unlock()
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		m.mu.Lock()
		if m.hang != nil {
			close(m.hang)
			m.hang = nil
		}
		m.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return m
}

func (m *mmdsSim) set(meta map[string]any) {
	m.mu.Lock()
	m.meta = meta
	m.mu.Unlock()
}

func (m *mmdsSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.reqs++
	hang := m.hang
	if m.failNext > 0 {
		m.failNext--
		m.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	m.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
				m.mu.Lock()
				m.abandoned++
				m.mu.Unlock()
				return
			}
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		m.puts++
		if r.Header.Get("X-metadata-token-ttl-seconds") == "" {
			m.noTTL++
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		m.n++
		tok := strings.Repeat("t", 8) + string(rune('a'+m.n%26))
		m.tokens[tok] = true
		_, _ = w.Write([]byte(tok))
	case r.Method == http.MethodGet && r.URL.Path == "/":
		m.mu.Lock()
		defer m.mu.Unlock()
		m.gets++
		if !m.tokens[r.Header.Get("X-metadata-token")] {
			m.noToken++
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Accept") != "application/json" {
			for k := range m.meta {
				_, _ = w.Write([]byte(k + "\n"))
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(m.meta)
	default:
		http.NotFound(w, r)
	}
}

func (m *mmdsSim) counts() (puts, gets, noTTL, noToken int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts, m.gets, m.noTTL, m.noToken
}

// waitFor polls cond until it holds; the deadline only guards a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// execRun runs helpers with os/exec: nothing else waits for the test
// binary's children, unlike the daemon's (which forks through the reaper).
func execRun(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

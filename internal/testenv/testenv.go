// Package testenv starts a real envd for tests: in-process on an ephemeral
// loopback port (the same daemon.New that main uses), or the built binary as
// a child process. It hands out ready Connect clients for both codecs over
// HTTP/1.1 and h2c, and a plain HTTP client.
package testenv

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"

	"github.com/sandboxd/envd/internal/config"
	"github.com/sandboxd/envd/internal/daemon"
	"github.com/sandboxd/envd/internal/gen/filesystem/filesystemconnect"
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
)

// Version is the version the in-process daemon reports.
const Version = "0.0.0-test"

// Env is one running envd.
type Env struct {
	URL  string        // http://127.0.0.1:PORT
	Addr string        // 127.0.0.1:PORT
	HTTP *http.Client  // HTTP/1.1
	H2C  *http.Client  // cleartext HTTP/2 with prior knowledge
	Cfg  config.Config // what it runs with
	Log  *LogBuffer    // the daemon's log output (in-process only)
}

// Options change how Start runs envd. Args are command-line flags parsed
// exactly as the binary parses them.
type Options struct {
	Args []string
}

// Start runs envd in-process on 127.0.0.1 and stops it when the test ends.
// Unless Args say otherwise it runs with --isnotfc, cgroups off and a run
// dir inside the test's temp dir.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	args := append([]string{"--isnotfc", "--no-cgroups", "--listen-addr", "127.0.0.1",
		"--run-dir", t.TempDir(), "--mmds-addr", "127.0.0.1:1", "--forward-addr", "127.0.0.1"}, o.Args...)
	cfg, err := config.Parse(args, "wrenn", func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatalf("testenv: config: %v", err)
	}
	logs := &LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := daemon.New(cfg, log, daemon.Build{Version: Version, Commit: "test"})
	if err != nil {
		t.Fatalf("testenv: daemon: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- d.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("testenv: serve: %v", err)
		}
	})
	e := newEnv(t, ln.Addr().String())
	e.Cfg, e.Log = cfg, logs
	return e
}

func newEnv(t testing.TB, addr string) *Env {
	h1 := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}
	h2 := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(func() { h1.CloseIdleConnections(); h2.CloseIdleConnections() })
	return &Env{
		URL:  "http://" + addr,
		Addr: addr,
		HTTP: &http.Client{Transport: h1},
		H2C:  &http.Client{Transport: h2},
	}
}

// Codec names a Connect client configuration.
type Codec struct {
	Name string
	H2C  bool
	JSON bool
}

// Codecs lists every combination tests should cover.
var Codecs = []Codec{
	{Name: "proto-h1"}, {Name: "json-h1", JSON: true},
	{Name: "proto-h2c", H2C: true}, {Name: "json-h2c", H2C: true, JSON: true},
}

func (e *Env) clientOpts(c Codec) (*http.Client, []connect.ClientOption) {
	hc := e.HTTP
	if c.H2C {
		hc = e.H2C
	}
	var opts []connect.ClientOption
	if c.JSON {
		opts = append(opts, connect.WithProtoJSON())
	}
	return hc, opts
}

// Process returns a process.Process client for the codec.
func (e *Env) Process(c Codec) processconnect.ProcessClient {
	hc, opts := e.clientOpts(c)
	return processconnect.NewProcessClient(hc, e.URL, opts...)
}

// Filesystem returns a filesystem.Filesystem client for the codec.
func (e *Env) Filesystem(c Codec) filesystemconnect.FilesystemClient {
	hc, opts := e.clientOpts(c)
	return filesystemconnect.NewFilesystemClient(hc, e.URL, opts...)
}

// AsUser sets the Basic-auth user on a request (PROTOCOL.md 1.6).
func AsUser[T any](req *connect.Request[T], user string) *connect.Request[T] {
	req.Header().Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":")))
	return req
}

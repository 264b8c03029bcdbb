package server

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sandboxd/envd/internal/auth"
	"github.com/sandboxd/envd/internal/execctx"
	"github.com/sandboxd/envd/internal/files"
	"github.com/sandboxd/envd/internal/metrics"
	"github.com/sandboxd/envd/internal/users"
)

// filesEnv is a server with the real /files handlers, a private user
// database (root and tester, homes in temp dirs) and a token under the
// test's control.
type filesEnv struct {
	url        string
	token      *auth.Token
	defaults   *execctx.Defaults
	rootHome   string
	testerHome string
}

const filesTesterUID, filesTesterGID = 4321, 8765

func newFilesEnv(t *testing.T) *filesEnv {
	t.Helper()
	dir := t.TempDir()
	e := &filesEnv{token: &auth.Token{}, defaults: execctx.New(nil),
		rootHome: filepath.Join(dir, "root"), testerHome: filepath.Join(dir, "tester")}
	os.Mkdir(e.rootHome, 0o700)
	os.Mkdir(e.testerHome, 0o755)
	passwd := filepath.Join(dir, "passwd")
	group := filepath.Join(dir, "group")
	os.WriteFile(passwd, fmt.Appendf(nil, "root:x:0:0:root:%s:/bin/sh\ntester:x:%d:%d::%s:/bin/sh\n",
		e.rootHome, filesTesterUID, filesTesterGID, e.testerHome), 0o644)
	os.WriteFile(group, []byte("root:x:0:\n"), 0o644)
	fs, err := files.New(files.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Deps{Log: slog.New(slog.DiscardHandler), Users: users.New(passwd, group),
		Defaults: e.defaults, Token: e.token, Metrics: new(metrics.Collector), Files: fs})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

// filesURL builds /files?… with the query encoded as URLSearchParams does.
func (e *filesEnv) filesURL(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return e.url + "/files?" + v.Encode()
}

type filesResp struct {
	code int
	h    http.Header
	body string
}

func filesDo(t *testing.T, method, u string, body io.Reader, hdr ...string) filesResp {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return filesResp{resp.StatusCode, resp.Header, string(b)}
}

// filesWant fails unless r has the status and its body contains want.
func filesWant(t *testing.T, what string, r filesResp, code int, want string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.body, want) {
		t.Errorf("%s: %d %q, want %d containing %q", what, r.code, r.body, code, want)
	}
}

func filesRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func filesOwner(t *testing.T, p string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

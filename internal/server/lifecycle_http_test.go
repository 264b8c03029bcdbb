package server_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/envd/internal/testenv"
)

func post(t *testing.T, e *testenv.Env, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(http.MethodPost, e.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// PROTOCOL.md 4.5: 204 + no-store + X-Envd-Version with or without a body
// (Wrenn's host sends none); invalid JSON and E2B's strict token rules are
// 400 with an empty body; an oversized body is 413; only POST.
func TestLifecycleInitAnswers(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	check := func(name string, resp *http.Response, body string, status int, wantBody string) {
		t.Helper()
		if resp.StatusCode != status || body != wantBody {
			t.Errorf("%s: %d %q, want %d %q", name, resp.StatusCode, body, status, wantBody)
		}
		if resp.Header.Get("X-Envd-Version") != testenv.Version {
			t.Errorf("%s: X-Envd-Version %q", name, resp.Header.Get("X-Envd-Version"))
		}
	}
	resp, body := post(t, e, "/init", "")
	check("no body", resp, body, 204, "")
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	now := time.Now()
	for name, b := range map[string]string{
		"empty object":      `{}`,
		"rfc3339 timestamp": `{"timestamp":"` + now.Format(time.RFC3339Nano) + `"}`,
		"numeric timestamp": `{"timestamp":` + strconv.FormatInt(now.Unix(), 10) + `}`,
		"wrenn body":        `{"defaultUser":"root","envVars":{"X":"1"}}`,
		"null token":        `{"accessToken":null}`,
	} {
		resp, body := post(t, e, "/init", b)
		check(name, resp, body, 204, "")
	}
	for name, b := range map[string]string{
		"invalid json":      `{"envVars":`,
		"empty token":       `{"accessToken":""}`,
		"escaped token":     `{"accessToken":"a\u0041"}`,
		"numeric token":     `{"accessToken":5}`,
		"bad timestamp":     `{"timestamp":"yesterday"}`,
		"env of wrong type": `{"envVars":["A"]}`,
	} {
		resp, body := post(t, e, "/init", b)
		check(name, resp, body, 400, "")
	}
	big := `{"envVars":{"A":"` + strings.Repeat("x", 1<<20) + `"}}`
	resp, _ = post(t, e, "/init", big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", resp.StatusCode)
	}
	resp, _ = get(t, e.HTTP, e.URL+"/init")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /init: %d", resp.StatusCode)
	}
}

// PROTOCOL.md 5.2/5.3 over HTTP: /init and /snapshot/prepare stay open once
// a token is set, /init refusals are plain text 401, the E2B hooks need
// the token; /fsfreeze is disabled outside a VM; /collapse answers counts.
func TestLifecycleInitTokenAndGates(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	if resp, _ := post(t, e, "/init", `{"accessToken":"tok"}`); resp.StatusCode != 204 {
		t.Fatalf("set token: %d", resp.StatusCode)
	}
	if resp, _ := get(t, e.HTTP, e.URL+"/envs"); resp.StatusCode != 401 {
		t.Fatalf("/envs without token: %d", resp.StatusCode)
	}
	if resp, _ := get(t, e.HTTP, e.URL+"/envs", "X-Access-Token", "tok"); resp.StatusCode != 200 {
		t.Fatalf("/envs with token: %d", resp.StatusCode)
	}
	if resp, _ := post(t, e, "/init", `{"accessToken":"tok","envVars":{"A":"1"}}`); resp.StatusCode != 204 {
		t.Fatalf("/init with the same token and no header: %d", resp.StatusCode)
	}
	resp, body := post(t, e, "/init", `{"accessToken":"other"}`)
	if resp.StatusCode != 401 || body != "access token validation failed\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("other token: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	resp, body = post(t, e, "/init", `{}`)
	if resp.StatusCode != 401 || body != "access token reset not authorized\n" {
		t.Fatalf("reset: %d %q", resp.StatusCode, body)
	}
	for _, p := range []string{"/fsfreeze", "/fsthaw", "/collapse"} {
		if resp, _ := post(t, e, p, ""); resp.StatusCode != 401 {
			t.Errorf("%s without token: %d", p, resp.StatusCode)
		}
	}
	if resp, body := post(t, e, "/fsfreeze", "", "X-Access-Token", "tok"); resp.StatusCode != 501 || !strings.Contains(body, "disabled") {
		t.Errorf("/fsfreeze with --isnotfc: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, e, "/collapse", "", "X-Access-Token", "tok")
	var counts map[string]int64
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &counts) != nil {
		t.Fatalf("/collapse: %d %s", resp.StatusCode, body)
	}
	for _, k := range []string{"regions", "chunks", "collapsed", "alreadyHuge", "skipped", "elapsedMs"} {
		if _, ok := counts[k]; !ok {
			t.Errorf("/collapse lacks %q: %s", k, body)
		}
	}
	if counts["chunks"] != counts["collapsed"]+counts["alreadyHuge"]+counts["skipped"] {
		t.Errorf("/collapse counts do not add up: %s", body)
	}
	// /snapshot/prepare is open (Wrenn-HA sends no token).
	if resp, _ := post(t, e, "/snapshot/prepare", ""); resp.StatusCode != 204 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("prepare without token: %d", resp.StatusCode)
	}
}

// BEHAVIOR.md 11.3 E20 over HTTP: /envs shows the replaced user set.
func TestLifecycleInitEnvVarsReplaceOverHTTP(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	post(t, e, "/init", `{"envVars":{"A":"1","B":"2"}}`)
	post(t, e, "/init", `{"envVars":{"A":"3"}}`)
	_, body := get(t, e.HTTP, e.URL+"/envs")
	var env map[string]string
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	if env["A"] != "3" || env["B"] != "" || env["WRENN_SANDBOX"] != "false" {
		t.Fatalf("/envs: %v", env)
	}
}

// BEHAVIOR.md 11.4 W14 through the real daemon wiring (ConnState tracking,
// the restore trigger): prepare closes the idle keep-alive connection, the
// first request after restore is served and closes the pre-snapshot one.
func TestLifecycleSnapshotCycleThroughDaemon(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	idle, err := net.Dial("tcp", e.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	br := bufio.NewReader(idle)
	_, _ = io.WriteString(idle, "GET /health HTTP/1.1\r\nHost: envd\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("health on the idle conn: %v", err)
	} else {
		_, _ = io.ReadAll(resp.Body)
	}
	fresh, err := net.Dial("tcp", e.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	// The fresh conn must be accepted (tracked) before prepare; a request
	// on a third connection that completes proves the accept loop passed it.
	get(t, (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}), e.URL+"/health")

	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/snapshot/prepare", nil)
	resp, err := cl.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("prepare: %v", err)
	}
	resp.Body.Close()
	expectClosed(t, idle, "idle keep-alive connection at prepare")

	resp, body := get(t, cl, e.URL+"/health")
	if resp.StatusCode != 200 || !strings.Contains(string(body), testenv.Version) {
		t.Fatalf("first request after restore: %d %s", resp.StatusCode, body)
	}
	expectClosed(t, fresh, "pre-snapshot connection after restore")
}

func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: not closed by envd", what)
	}
}

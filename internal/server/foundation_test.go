package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"

	"github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/testenv"
)

func get(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestHealthPerFlavor(t *testing.T) {
	w := testenv.Start(t, testenv.Options{Args: []string{"--flavor", "wrenn"}})
	resp, body := get(t, w.HTTP, w.URL+"/health")
	var v struct{ Version string }
	if resp.StatusCode != 200 || json.Unmarshal(body, &v) != nil || v.Version != testenv.Version {
		t.Fatalf("wrenn health: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Error("health must not be cached")
	}
	e := testenv.Start(t, testenv.Options{Args: []string{"--flavor", "e2b"}})
	resp, body = get(t, e.HTTP, e.URL+"/health")
	if resp.StatusCode != 204 || len(body) != 0 || resp.Header.Get("Content-Type") != "" {
		t.Fatalf("e2b health: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
}

func TestEnvsCarryFlavourMarker(t *testing.T) {
	for flavor, key := range map[string]string{"wrenn": "WRENN_SANDBOX", "e2b": "E2B_SANDBOX"} {
		e := testenv.Start(t, testenv.Options{Args: []string{"--flavor", flavor}})
		resp, body := get(t, e.HTTP, e.URL+"/envs")
		var env map[string]string
		if resp.StatusCode != 200 || json.Unmarshal(body, &env) != nil || env[key] != "false" {
			t.Fatalf("%s envs: %d %q", flavor, resp.StatusCode, body)
		}
		marker, err := os.ReadFile(e.Cfg.RunDir + "/." + key)
		if err != nil || string(marker) != "false" {
			t.Fatalf("%s marker file: %q %v", flavor, marker, err)
		}
	}
}

func TestMetricsHasEveryField(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	resp, body := get(t, e.HTTP, e.URL+"/metrics")
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	var m map[string]json.Number
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ts", "cpu_count", "cpu_used_pct", "mem_total", "mem_used", "mem_cache",
		"mem_total_mib", "mem_used_mib", "disk_used", "disk_total"} {
		if _, ok := m[f]; !ok {
			t.Errorf("metrics lacks %s: %s", f, body)
		}
	}
	meminfo, _ := os.ReadFile("/proc/meminfo")
	var kb int64
	for _, line := range strings.Split(string(meminfo), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb = mustInt(t, f[1])
		}
	}
	if got, _ := m["mem_total"].Int64(); got != kb*1024 {
		t.Errorf("mem_total %d, /proc/meminfo says %d", got, kb*1024)
	}
}

func mustInt(t *testing.T, s string) int64 {
	var n int64
	for _, c := range s {
		n = n*10 + int64(c-'0')
	}
	return n
}

func TestUnknownRoutesAndWrongMethods(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	for _, p := range []string{"/nope", "/HEALTH", "/health/", "/envs/x"} {
		resp, body := get(t, e.HTTP, e.URL+p)
		var v struct {
			Code    int
			Message string
		}
		if resp.StatusCode != 404 || json.Unmarshal(body, &v) != nil || v.Code != 404 || v.Message == "" {
			t.Errorf("%s: %d %q", p, resp.StatusCode, body)
		}
	}
	resp, err := e.HTTP.Post(e.URL+"/metrics", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
		t.Errorf("POST /metrics: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// GET on an RPC: connect-go answers 405 with Allow: POST.
	resp, _ = get(t, e.HTTP, e.URL+"/process.Process/List")
	if resp.StatusCode != 405 {
		t.Errorf("GET on a unary RPC: %d", resp.StatusCode)
	}
	resp, _ = get(t, e.HTTP, e.URL+"/process.Process/Nope")
	if resp.StatusCode != 404 {
		t.Errorf("unknown RPC: %d", resp.StatusCode)
	}
}

func TestCORSPreflightAndHeaders(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	req, _ := http.NewRequest(http.MethodOptions, e.URL+"/process.Process/Start", nil)
	req.Header.Set("Origin", "https://example.test")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "x-access-token, content-type")
	resp, err := e.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "*" ||
		h.Get("Access-Control-Allow-Headers") != "x-access-token, content-type" ||
		h.Get("Access-Control-Max-Age") != "7200" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}
}

// Every codec over HTTP/1.1 and h2c reaches the same RPC and gets a
// well-formed answer.
func TestListInEveryCodecAndTransport(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	for _, c := range testenv.Codecs {
		t.Run(c.Name, func(t *testing.T) {
			resp, err := e.Process(c).List(context.Background(), connect.NewRequest(&process.ListRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Msg == nil {
				t.Fatal("nil message")
			}
		})
	}
}

func TestReflectionListsBothServices(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	client := grpcreflect.NewClient(e.H2C, e.URL)
	stream := client.NewStream(context.Background())
	defer stream.Close()
	names, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, n := range names {
		got[string(n)] = true
	}
	if !got["process.Process"] || !got["filesystem.Filesystem"] {
		t.Fatalf("reflection lists %v", names)
	}
	fd, err := stream.FileContainingSymbol("process.Process")
	if err != nil || len(fd) == 0 {
		t.Fatalf("descriptor for process.Process: %v", err)
	}
}

// Malformed Connect requests get the right Connect error and the daemon
// keeps serving.
func TestMalformedConnectRequests(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	post := func(path, ctype string, body []byte) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, e.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := e.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/process.Process/List", "application/json", []byte("{not json")); code != 400 || !strings.Contains(body, `"invalid_argument"`) {
		t.Errorf("invalid JSON: %d %s", code, body)
	}
	if code, _ := post("/process.Process/List", "text/plain", []byte("{}")); code != 415 {
		t.Errorf("wrong content type: %d", code)
	}
	if code, body := post("/process.Process/List", "application/proto", []byte{0xff, 0xff, 0xff}); code != 400 || !strings.Contains(body, `"invalid_argument"`) {
		t.Errorf("garbage proto: %d %s", code, body)
	}
	// A streaming request whose envelope claims more bytes than it carries.
	code, body := post("/process.Process/Start", "application/connect+json", []byte{0, 0, 0, 0, 100, '{'})
	if code != 200 || !strings.Contains(body, `"invalid_argument"`) && !strings.Contains(body, `"unknown"`) && !strings.Contains(body, `"internal"`) {
		t.Errorf("bad envelope: %d %q", code, body)
	}
	resp, _ := get(t, e.HTTP, e.URL+"/health")
	if resp.StatusCode != 200 {
		t.Fatalf("daemon stopped serving after malformed requests: %d", resp.StatusCode)
	}
}

// One log line per request with method, route, status and duration; never
// query strings or headers (they carry signatures and tokens).
func TestAccessLogHasNoSecrets(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	get(t, e.HTTP, e.URL+"/envs?signature=SECRET-SIG", "X-Access-Token", "SECRET-TOKEN", "Authorization", "Basic cm9vdDo=")
	logs := e.Log.String()
	if strings.Contains(logs, "SECRET") {
		t.Fatalf("secret in logs:\n%s", logs)
	}
	for _, want := range []string{"method=GET", "route=/envs", "status=200", "duration="} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestUnknownBasicUserRefusedOnEveryRoute(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	resp, body := get(t, e.HTTP, e.URL+"/health", "Authorization", "Basic bm9ib2R5LWhlcmU6") // nobody-here:
	if resp.StatusCode != 401 || !strings.Contains(string(body), "invalid username: 'nobody-here'") {
		t.Fatalf("unknown user on /health: %d %s", resp.StatusCode, body)
	}
	req := testenv.AsUser(connect.NewRequest(&process.ListRequest{}), "nobody-here")
	_, err := e.Process(testenv.Codecs[1]).List(context.Background(), req)
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("unknown user on RPC: %v", err)
	}
}

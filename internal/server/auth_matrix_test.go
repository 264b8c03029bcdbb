package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/sandboxd/envd/internal/auth"
	"github.com/sandboxd/envd/internal/execctx"
	"github.com/sandboxd/envd/internal/metrics"
	"github.com/sandboxd/envd/internal/users"
)

const (
	authTestToken = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	gateBody      = `{"code":401,"message":"unauthorized access, please provide a valid access token or method signing if supported"}` + "\n"
)

// authStubServer is the real route table and middleware with every handler
// replaced by a stub answering 299, so the gate is tested on every route
// without running handlers that touch the machine (/fsfreeze freezes /).
func authStubServer(t *testing.T) (*Server, *auth.Token, *httptest.Server) {
	t.Helper()
	tok := &auth.Token{}
	s, err := New(Deps{Log: slog.New(slog.DiscardHandler), Users: users.New("", ""),
		Defaults: execctx.New(nil), Token: tok, Metrics: new(metrics.Collector)})
	if err != nil {
		t.Fatal(err)
	}
	stub := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(299) })
	for _, byMethod := range s.exact {
		for m, rt := range byMethod {
			rt.h = stub
			byMethod[m] = rt
		}
	}
	for i := range s.prefix {
		s.prefix[i].h = stub
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, tok, hs
}

type authTarget struct {
	method, path string
	open         bool
}

// authTargets lists every exact route and every RPC of every Connect mount
// (methods taken from the registered service descriptors).
func authTargets(t *testing.T, s *Server) []authTarget {
	t.Helper()
	var out []authTarget
	for _, rt := range s.routes() {
		if rt.method != "" {
			out = append(out, authTarget{rt.method, rt.path, rt.open})
			continue
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(strings.Trim(rt.path, "/")))
		if err != nil {
			// grpcreflect registers its protos under a private package; its
			// services have one method.
			if !strings.Contains(rt.path, ".reflection.") {
				t.Fatalf("mount %s: no service descriptor: %v", rt.path, err)
			}
			out = append(out, authTarget{http.MethodPost, rt.path + "ServerReflectionInfo", rt.open})
			continue
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		if methods.Len() == 0 {
			t.Fatalf("mount %s has no methods", rt.path)
		}
		for i := range methods.Len() {
			out = append(out, authTarget{http.MethodPost, rt.path + string(methods.Get(i).Name()), rt.open})
		}
	}
	return out
}

func authDo(t *testing.T, url, method, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Access-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// PROTOCOL.md 5.2: with a token set, every route and RPC but the exempt ones
// needs X-Access-Token; missing or wrong gets the gate's plain-JSON 401.
func TestAuthMatrixEveryRouteAndRPC(t *testing.T) {
	s, tok, hs := authStubServer(t)
	targets := authTargets(t, s)
	seen := map[string]bool{}
	for _, tg := range targets {
		seen[tg.path] = true
	}
	for _, p := range []string{"/process.Process/Start", "/process.Process/CloseStdin", "/filesystem.Filesystem/Remove",
		"/filesystem.Filesystem/WatchDir", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"} {
		if !seen[p] {
			t.Fatalf("%s not enumerated; the Connect mounts were not walked", p)
		}
	}
	// No token set: everything is open (PROTOCOL.md 5.1).
	for _, tg := range targets {
		if code, _ := authDo(t, hs.URL+tg.path, tg.method, ""); code != 299 {
			t.Errorf("no token set: %s %s = %d, want the handler", tg.method, tg.path, code)
		}
	}
	tok.Set(authTestToken)
	for _, tg := range targets {
		for _, c := range []struct{ name, token string }{{"none", ""}, {"wrong", authTestToken + "x"}, {"prefix", authTestToken[:10]}, {"right", authTestToken}} {
			code, body := authDo(t, hs.URL+tg.path, tg.method, c.token)
			switch {
			case tg.open || c.name == "right":
				if code != 299 {
					t.Errorf("%s token: %s %s = %d %q, want the handler", c.name, tg.method, tg.path, code, body)
				}
			case code != http.StatusUnauthorized || body != gateBody:
				t.Errorf("%s token: %s %s = %d %q, want the gate's 401", c.name, tg.method, tg.path, code, body)
			}
		}
	}
	// Unknown paths are gated too (E2B); preflights never are.
	if code, body := authDo(t, hs.URL+"/nope", http.MethodGet, ""); code != 401 || body != gateBody {
		t.Errorf("unknown path without token: %d %q", code, body)
	}
	if code, _ := authDo(t, hs.URL+"/nope", http.MethodGet, authTestToken); code != 404 {
		t.Errorf("unknown path with token: %d", code)
	}
	req, _ := http.NewRequest(http.MethodOptions, hs.URL+"/metrics", nil)
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("preflight without token: %d", resp.StatusCode)
	}
}

// The route inventory: exactly these are open without a token (PROTOCOL.md
// 5.2; /files does its own check, /init its own rules).
func TestAuthOpenRouteInventory(t *testing.T) {
	s, _, _ := authStubServer(t)
	var open []string
	for _, rt := range s.routes() {
		if rt.open {
			open = append(open, rt.method+" "+rt.path)
		}
	}
	sort.Strings(open)
	want := []string{"GET /files", "GET /health", "POST /files", "POST /init", "POST /snapshot/prepare"}
	if strings.Join(open, ", ") != strings.Join(want, ", ") {
		t.Fatalf("open routes:\n got %v\nwant %v", open, want)
	}
	routes := s.routes()
	for i, rt := range routes {
		if rt.method == "" && rt.open {
			t.Errorf("Connect mount %s is open", rt.path)
		}
		if i > 0 && routes[i-1].path+" "+routes[i-1].method > rt.path+" "+rt.method {
			t.Errorf("route table not sorted: %s %s before %s %s", routes[i-1].method, routes[i-1].path, rt.method, rt.path)
		}
	}
}

// The token compare is exact: case, length and prefixes matter.
func TestAuthGateIsByteExact(t *testing.T) {
	_, tok, hs := authStubServer(t)
	tok.Set("Secret")
	for _, v := range []string{"secret", "SECRET", "Secre", "Secretx"} {
		if code, _ := authDo(t, hs.URL+"/envs", http.MethodGet, v); code != 401 {
			t.Errorf("token %q accepted", v)
		}
	}
}

// PROTOCOL.md 1.6: an unknown Basic user is refused on every route and RPC,
// /health included, before any handler runs; a known one passes.
func TestAuthUnknownBasicUserRefusedEverywhere(t *testing.T) {
	s, _, hs := authStubServer(t)
	for _, tg := range authTargets(t, s) {
		for user, want := range map[string]int{"ghost": http.StatusUnauthorized, "root": 299} {
			req, _ := http.NewRequest(tg.method, hs.URL+tg.path, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			req.SetBasicAuth(user, "")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want || (want == 401 && !strings.Contains(string(b), "invalid username: 'ghost'")) {
				t.Errorf("Basic %s: %s %s = %d %q, want %d", user, tg.method, tg.path, resp.StatusCode, b, want)
			}
		}
	}
}

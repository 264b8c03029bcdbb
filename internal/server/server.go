// Package server is envd's one route table: the Connect mounts, the plain
// HTTP routes, one auth gate and the middleware around them. It is the only
// package that sees wire types; subsystems get plain Go values.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/sandboxd/envd/internal/auth"
	"github.com/sandboxd/envd/internal/cgroups"
	"github.com/sandboxd/envd/internal/config"
	"github.com/sandboxd/envd/internal/execctx"
	"github.com/sandboxd/envd/internal/files"
	"github.com/sandboxd/envd/internal/filesystem"
	"github.com/sandboxd/envd/internal/lifecycle"
	"github.com/sandboxd/envd/internal/metrics"
	"github.com/sandboxd/envd/internal/process"
	"github.com/sandboxd/envd/internal/users"
)

// Deps are the parts the routes delegate to. main builds them.
type Deps struct {
	Log      *slog.Logger
	Version  string
	Flavor   config.Flavor
	Users    *users.DB
	Defaults *execctx.Defaults
	Token    *auth.Token
	Metrics  *metrics.Collector

	// Subsystems, one per issue.
	Process   *process.Manager
	FS        *filesystem.Service
	Files     *files.Service
	Lifecycle *lifecycle.Lifecycle
	Cgroups   *cgroups.Manager // /freeze, /unfreeze; nil: nothing to freeze
}

// Server turns requests into subsystem calls.
type Server struct {
	Deps
	exact  map[string]map[string]route // path → method → route
	prefix []route                     // Connect mounts
}

// New builds the route table.
func New(d Deps) (*Server, error) {
	if d.Log == nil || d.Users == nil || d.Defaults == nil || d.Token == nil || d.Metrics == nil {
		return nil, fmt.Errorf("server: missing dependency")
	}
	s := &Server{Deps: d, exact: map[string]map[string]route{}}
	for _, r := range s.routes() {
		if r.method == "" {
			s.prefix = append(s.prefix, r)
			continue
		}
		if s.exact[r.path] == nil {
			s.exact[r.path] = map[string]route{}
		}
		s.exact[r.path][r.method] = r
	}
	return s, nil
}

// Handler is the whole HTTP surface, middleware included. Order, outermost
// first: CORS, access log + panic guard, token gate, Basic user, router.
func (s *Server) Handler() http.Handler {
	var h http.Handler = http.HandlerFunc(s.route)
	h = withUser(s.Users, s.Defaults.User, h)
	h = s.gate(h)
	h = accessLog(s.Log, h)
	return cors(h)
}

// lookup finds the route for a request. It returns allowed methods when the
// path exists but the method does not.
func (s *Server) lookup(r *http.Request) (route, string, bool) {
	if byMethod, ok := s.exact[r.URL.Path]; ok {
		m := r.Method
		if m == http.MethodHead {
			if _, ok := byMethod[m]; !ok {
				m = http.MethodGet
			}
		}
		if rt, ok := byMethod[m]; ok {
			return rt, "", true
		}
		var allow []string
		for m := range byMethod {
			allow = append(allow, m)
		}
		return route{}, strings.Join(allow, ", "), false
	}
	for _, rt := range s.prefix {
		if strings.HasPrefix(r.URL.Path, rt.path) {
			return rt, "", true
		}
	}
	return route{}, "", false
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	rt, allow, ok := s.lookup(r)
	switch {
	case ok:
		rt.h.ServeHTTP(w, r)
	case allow != "":
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
	default:
		writeError(w, http.StatusNotFound, "404 page not found")
	}
}

// gate enforces X-Access-Token on every route that is not open
// (PROTOCOL.md 5.2). Unknown paths are gated too, as in E2B.
func (s *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, _, ok := s.lookup(r)
		if (!ok || !rt.open) && !s.Token.Allows(r.Header.Get("X-Access-Token")) {
			writeError(w, http.StatusUnauthorized, "unauthorized access, please provide a valid access token or method signing if supported")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// recoverRPC turns a handler panic into an internal error and a log line.
func (s *Server) recoverRPC(_ context.Context, procedure string, _ http.Header, v any) error {
	s.Log.Error("recovered panic", "in", procedure, "panic", v, "stack", string(debug.Stack()))
	return toConnect(errors.New("internal error"))
}

package server

import (
	"net/http"
)

// health answers per flavour: 204 empty (E2B's orchestrator accepts nothing
// else) or 200 {"version": ...} (Wrenn's host agent parses it).
func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.Flavor.HealthNoContent {
		w.Header()["Content-Type"] = nil
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, struct {
		Version string `json:"version"`
	}{s.Version})
}

// envs returns the sandbox-wide environment: internal plus /init variables.
func (s *Server) envs(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.Defaults.Env())
}

// metrics answers 500 with an empty body when a reading fails (PROTOCOL.md 4.2).
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	m, err := s.Metrics.Collect()
	if err != nil {
		s.Log.Warn("metrics collection failed", "err", err)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	writeJSON(w, m)
}

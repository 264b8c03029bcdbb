package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sandboxd/envd/internal/cgroups"
	"github.com/sandboxd/envd/internal/errs"
)

// freezeResult is E2B's FreezeResult (PROTOCOL.md 4.7).
type freezeResult struct {
	Mode         string `json:"mode"`
	Visited      int    `json:"visited"`
	Allowlisted  int    `json:"allowlisted"`
	Truncated    bool   `json:"truncated"`
	PreFrozen    int    `json:"preFrozen"`
	Requested    int    `json:"requested"`
	Frozen       int    `json:"frozen"`
	NotFrozen    int    `json:"notFrozen"`
	Failed       int    `json:"failed"`
	Unobservable int    `json:"unobservable"`
	SweepMs      int64  `json:"sweepMs"`
	WaitMs       int64  `json:"waitMs"`
}

// freeze is POST /freeze?mode=legacy|hierarchy&maxCgroups=N&maxWaitMs=N:
// 204 without a wait, 200 FreezeResult with one, 400 (plain text) on an
// unparsable parameter, 503 with an empty body when the shared freeze lock
// is not free before the client goes away. Per-cgroup failures are
// counted in the result, never a 500.
func (s *Server) freeze(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := cgroups.FreezeRequest{Mode: q.Get("mode")}
	if v := q.Get("maxCgroups"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			freezeBadParam(w, "maxCgroups", err)
			return
		}
		req.MaxCgroups = n
	}
	var waitMs int64
	if v := q.Get("maxWaitMs"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			freezeBadParam(w, "maxWaitMs", err)
			return
		}
		waitMs = n
	}
	if waitMs > 0 {
		req.MaxWait = time.Duration(min(waitMs, int64(cgroups.MaxWait/time.Millisecond))) * time.Millisecond
	}
	var res cgroups.FreezeResult
	if s.Cgroups != nil {
		var err error
		res, err = s.Cgroups.Freeze(r.Context(), req)
		switch {
		case errors.Is(err, errs.Invalid):
			freezeBadParam(w, "mode", err)
			return
		case err != nil:
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
	}
	if waitMs <= 0 {
		freezeNoContent(w)
		return
	}
	if res.Mode == "" {
		res.Mode = cgroups.ModeLegacy
	}
	writeJSON(w, freezeResult{
		Mode: res.Mode, Visited: res.Visited, Allowlisted: res.Allowlisted, Truncated: res.Truncated,
		PreFrozen: res.PreFrozen, Requested: res.Requested, Frozen: res.Frozen, NotFrozen: res.NotFrozen,
		Failed: res.Failed, Unobservable: res.Unobservable,
		SweepMs: res.Sweep.Milliseconds(), WaitMs: res.Wait.Milliseconds(),
	})
}

// unfreeze is POST /unfreeze, the pause-rollback thaw: 204, or 500 JSON
// when some cgroup could not be thawed.
func (s *Server) unfreeze(w http.ResponseWriter, _ *http.Request) {
	if s.Cgroups != nil {
		if _, err := s.Cgroups.Thaw(); err != nil {
			s.Log.Warn("unfreeze failed", "err", err)
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	freezeNoContent(w)
}

// freezeBadParam answers like E2B's generated binder: 400, plain text.
func freezeBadParam(w http.ResponseWriter, name string, err error) {
	http.Error(w, fmt.Sprintf("Invalid format for parameter %s: %v", name, err), http.StatusBadRequest)
}

func freezeNoContent(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

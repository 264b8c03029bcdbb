package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/lifecycle"
)

// maxInitBody bounds the /init body. Real ones are a few KiB (env vars, a
// CA certificate); E2B reads without a limit.
const maxInitBody = 1 << 20

// initBody is the wire form of POST /init (PROTOCOL.md 4.4). The token and
// the timestamp stay raw: both have rules the plain decoder cannot express.
type initBody struct {
	AccessToken    json.RawMessage   `json:"accessToken"`
	EnvVars        map[string]string `json:"envVars"`
	DefaultUser    string            `json:"defaultUser"`
	DefaultWorkdir string            `json:"defaultWorkdir"`
	Timestamp      json.RawMessage   `json:"timestamp"`
	HyperloopIP    string            `json:"hyperloopIP"`
	HyperloopIPRs  string            `json:"hyperloopIp"` // Wrenn-RS spelling
	VolumeMounts   []struct {
		NFSTarget string `json:"nfs_target"`
		Path      string `json:"path"`
	} `json:"volumeMounts"`
	LifecycleID string `json:"lifecycleID"`
	CABundle    string `json:"caBundle"`
}

// initHandler is POST /init (PROTOCOL.md 4.5). Errors are plain text; an
// invalid body is 400 with an empty body; success is 204.
func (s *Server) initHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Envd-Version", s.Version)
	w.Header().Set("Cache-Control", "no-store")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxInitBody+1))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if len(body) > maxInitBody {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	req, err := decodeInit(body)
	clear(body) // the token was in there
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if _, err := s.Lifecycle.Init(r.Context(), req); err != nil {
		http.Error(w, err.Error(), httpStatus(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var errBadInit = errors.New("invalid init body")

func decodeInit(body []byte) (lifecycle.InitRequest, error) {
	var req lifecycle.InitRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil // no body: Wrenn's host sends none
	}
	var b initBody
	if err := json.Unmarshal(body, &b); err != nil {
		return req, err
	}
	tok, err := decodeToken(b.AccessToken)
	if err != nil {
		return req, err
	}
	ts, err := decodeTimestamp(b.Timestamp)
	if err != nil {
		return req, err
	}
	req = lifecycle.InitRequest{
		AccessToken:    tok,
		EnvVars:        b.EnvVars,
		DefaultUser:    b.DefaultUser,
		DefaultWorkdir: b.DefaultWorkdir,
		Timestamp:      ts,
		HyperloopIP:    b.HyperloopIP,
		LifecycleID:    b.LifecycleID,
		CABundle:       b.CABundle,
	}
	if req.HyperloopIP == "" {
		req.HyperloopIP = b.HyperloopIPRs
	}
	for _, v := range b.VolumeMounts {
		req.VolumeMounts = append(req.VolumeMounts, lifecycle.VolumeMount{Target: v.NFSTarget, Path: v.Path})
	}
	return req, nil
}

// decodeToken follows E2B's strict token decoder: a non-empty JSON string
// without escapes; null or absent means no token (PROTOCOL.md 4.4, 9.1).
func decodeToken(raw json.RawMessage) (*string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if len(raw) < 3 || raw[0] != '"' || raw[len(raw)-1] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
		return nil, errBadInit
	}
	t := string(raw[1 : len(raw)-1])
	return &t, nil
}

// decodeTimestamp accepts RFC 3339 (E2B) or a number of seconds, as a JSON
// number or a numeric string (Wrenn-RS).
func decodeTimestamp(raw json.RawMessage) (*time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	text := string(raw)
	if raw[0] == '"' {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return nil, err
		}
		if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
			return &t, nil
		}
		text = strings.TrimSpace(str)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return nil, errBadInit
	}
	sec, frac := math.Modf(f)
	t := time.Unix(int64(sec), int64(frac*1e9))
	return &t, nil
}

// snapshotPrepare is POST /snapshot/prepare (PROTOCOL.md 4.6): quiesce,
// flush the 204, then collect garbage while nothing else runs.
func (s *Server) snapshotPrepare(w http.ResponseWriter, r *http.Request) {
	gen := s.Lifecycle.PrepareSnapshot(r.Context())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	_ = http.NewResponseController(w).Flush()
	s.Lifecycle.AfterPrepare(gen)
}

// fsFreeze and fsThaw are POST /fsfreeze and /fsthaw (PROTOCOL.md 4.7):
// 204, lock contention 503 with an empty body, other failures JSON.
func (s *Server) fsFreeze(w http.ResponseWriter, r *http.Request) {
	s.hookResult(w, s.Lifecycle.FSFreeze(r.Context()))
}

func (s *Server) fsThaw(w http.ResponseWriter, r *http.Request) {
	s.hookResult(w, s.Lifecycle.FSThaw(r.Context()))
}

func (s *Server) hookResult(w http.ResponseWriter, err error) {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errs.Kind(err) == errs.Unavailable:
		w.WriteHeader(httpStatus(err))
	default:
		writeErr(w, err)
	}
}

// collapse is POST /collapse (PROTOCOL.md 4.7): 200 CollapseResult JSON.
func (s *Server) collapse(w http.ResponseWriter, r *http.Request) {
	res, err := s.Lifecycle.Collapse(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, struct {
		Regions     int   `json:"regions"`
		Chunks      int   `json:"chunks"`
		Collapsed   int   `json:"collapsed"`
		AlreadyHuge int   `json:"alreadyHuge"`
		Skipped     int   `json:"skipped"`
		ElapsedMs   int64 `json:"elapsedMs"`
	}{res.Regions, res.Chunks, res.Collapsed, res.AlreadyHuge, res.Skipped, res.ElapsedMs})
}

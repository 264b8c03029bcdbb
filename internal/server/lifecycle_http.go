package server

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/lifecycle"
	"github.com/sandboxd/envd/internal/wirekit"
)

// maxInitBody bounds the /init body. Real ones are a few KiB (env vars, a
// CA certificate); E2B reads without a limit.
const maxInitBody = 1 << 20

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

// decodeInit reads the /init body (PROTOCOL.md 4.4). Keys match exactly,
// then case-insensitively as encoding/json does (E2B's decoder); the token
// and the timestamp stay raw, as both have rules of their own; unknown keys
// are ignored; a repeated key's last value wins.
func decodeInit(body []byte) (lifecycle.InitRequest, error) {
	var req lifecycle.InitRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil // no body: Wrenn's host sends none
	}
	var tokRaw, tsRaw []byte
	var hyperloopRs string // Wrenn-RS spells it hyperloopIp
	d := wirekit.NewJSONDecoder(body)
	err := d.Object(func(key string) (err error) {
		switch initKey(key) {
		case "accessToken":
			tokRaw, err = d.Raw()
		case "envVars":
			if req.EnvVars = nil; d.Null() {
				break // null: none sent, as encoding/json reads it
			}
			req.EnvVars = map[string]string{}
			err = d.Object(func(k string) error {
				v, err := d.String()
				req.EnvVars[k] = v
				return err
			})
		case "defaultUser":
			req.DefaultUser, err = d.NullableString()
		case "defaultWorkdir":
			req.DefaultWorkdir, err = d.NullableString()
		case "timestamp":
			tsRaw, err = d.Raw()
		case "hyperloopIP":
			req.HyperloopIP, err = d.NullableString()
		case "hyperloopIp":
			hyperloopRs, err = d.NullableString()
		case "volumeMounts":
			req.VolumeMounts = nil
			err = d.Array(func() error {
				var v lifecycle.VolumeMount
				err := d.Object(func(k string) (err error) {
					switch strings.ToLower(k) {
					case "nfs_target":
						v.Target, err = d.NullableString()
					case "path":
						v.Path, err = d.NullableString()
					default:
						err = d.Skip()
					}
					return err
				})
				req.VolumeMounts = append(req.VolumeMounts, v)
				return err
			})
		case "lifecycleID":
			req.LifecycleID, err = d.NullableString()
		case "caBundle":
			req.CABundle, err = d.NullableString()
		default:
			err = d.Skip()
		}
		return err
	})
	if err == nil {
		err = d.End()
	}
	if err != nil {
		return lifecycle.InitRequest{}, err
	}
	if req.AccessToken, err = decodeToken(tokRaw); err != nil {
		return lifecycle.InitRequest{}, err
	}
	if req.Timestamp, err = decodeTimestamp(tsRaw); err != nil {
		return lifecycle.InitRequest{}, err
	}
	if req.HyperloopIP == "" {
		req.HyperloopIP = hyperloopRs
	}
	return req, nil
}

// initKeys are the /init body's keys; initKey maps a key to one of them,
// exactly first, then ignoring case.
var initKeys = [...]string{"accessToken", "envVars", "defaultUser", "defaultWorkdir", "timestamp",
	"hyperloopIP", "hyperloopIp", "volumeMounts", "lifecycleID", "caBundle"}

func initKey(k string) string {
	for _, n := range initKeys {
		if k == n {
			return n
		}
	}
	for _, n := range initKeys {
		if strings.EqualFold(k, n) {
			return n
		}
	}
	return ""
}

// decodeToken follows E2B's strict token decoder: a non-empty JSON string
// without escapes; null or absent means no token (PROTOCOL.md 4.4, 9.1).
func decodeToken(raw []byte) (*string, error) {
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
func decodeTimestamp(raw []byte) (*time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	text := string(raw)
	if raw[0] == '"' {
		str, err := wirekit.NewJSONDecoder(raw).String()
		if err != nil {
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

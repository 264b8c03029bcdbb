package client

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// Health is envd's /health answer. The two host flavours differ: Wrenn
// answers 200 with the version, E2B 204 with nothing.
type Health struct {
	Version   string // "" when envd answered 204
	NoContent bool   // envd answered 204 (E2B flavour)
}

// maxJSONAnswer bounds the JSON answers of the lifecycle routes.
const maxJSONAnswer = 4 << 20

// getJSON performs a retried GET of a JSON route into v. A 204 leaves v
// untouched and reports noContent.
func (c *Client) getJSON(ctx context.Context, route string, v any) (noContent bool, err error) {
	op := "GET " + route
	err = c.idempotent(ctx, op, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+route, nil)
		if err != nil {
			return err
		}
		c.setAuth(req.Header)
		resp, err := c.hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusNoContent:
			noContent = true
			return nil
		case http.StatusOK:
			if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSONAnswer)).Decode(v); err != nil {
				return &Error{Op: op, Message: "decode answer: " + err.Error(), kind: ErrInternal}
			}
			return nil
		}
		return httpError(op, resp)
	})
	return noContent, err
}

// Health asks GET /health (open even when a token is set). Both flavours'
// answers are a success.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var body struct {
		Version string `json:"version"`
	}
	nc, err := c.getJSON(ctx, "/health", &body)
	if err != nil {
		return nil, err
	}
	return &Health{Version: body.Version, NoContent: nc}, nil
}

// Metrics is GET /metrics: the guest's CPU, memory and root disk.
type Metrics struct {
	Timestamp  int64   `json:"ts"`           // Unix seconds
	CPUCount   int     `json:"cpu_count"`    // logical CPUs
	CPUUsedPct float64 `json:"cpu_used_pct"` // since the previous call
	MemTotal   uint64  `json:"mem_total"`    // bytes
	MemUsed    uint64  `json:"mem_used"`     // bytes
	MemCache   uint64  `json:"mem_cache"`    // bytes of page cache
	DiskUsed   uint64  `json:"disk_used"`    // bytes on /
	DiskTotal  uint64  `json:"disk_total"`   // bytes on /
}

// Time is the sample's time.
func (m *Metrics) Time() time.Time { return time.Unix(m.Timestamp, 0) }

// Metrics asks GET /metrics.
func (c *Client) Metrics(ctx context.Context) (*Metrics, error) {
	var m Metrics
	if _, err := c.getJSON(ctx, "/metrics", &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Envs returns the sandbox-wide environment (envd's variables and those
// set by Init), not a process's own.
func (c *Client) Envs(ctx context.Context) (map[string]string, error) {
	m := map[string]string{}
	if _, err := c.getJSON(ctx, "/envs", &m); err != nil {
		return nil, err
	}
	return m, nil
}

// InitRequest is the body of POST /init; zero fields are left out
// (PROTOCOL.md 4.4).
type InitRequest struct {
	// AccessToken sets the token. Left out, E2B semantics clear the token
	// when that is authorised. The client's own WithToken is not changed.
	AccessToken    string            `json:"accessToken,omitempty"`
	EnvVars        map[string]string `json:"envVars,omitempty"` // replaces the /init variables
	DefaultUser    string            `json:"defaultUser,omitempty"`
	DefaultWorkdir string            `json:"defaultWorkdir,omitempty"`
	// Timestamp guards against stale replays and sets the guest clock.
	Timestamp   *time.Time    `json:"timestamp,omitempty"`
	HyperloopIP string        `json:"hyperloopIP,omitempty"`
	CABundle    string        `json:"caBundle,omitempty"` // PEM
	LifecycleID string        `json:"lifecycleID,omitempty"`
	Volumes     []VolumeMount `json:"volumeMounts,omitempty"`
}

// VolumeMount is an NFS mount made by /init.
type VolumeMount struct {
	NFSTarget string `json:"nfs_target"`
	Path      string `json:"path"`
}

// Init sends POST /init. It is not retried: the token rules make a repeat
// different from the first. The client's X-Access-Token goes with it.
func (c *Client) Init(ctx context.Context, r InitRequest) error {
	body, err := json.Marshal(r)
	if err != nil {
		return wrapErr("init", err)
	}
	return c.once(ctx, "init", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/init", bytes.NewReader(body))
		if err != nil {
			return err
		}
		c.setAuth(req.Header)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
			return httpError("init", resp)
		}
		return nil
	})
}

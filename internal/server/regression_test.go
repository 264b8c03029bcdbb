package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/testenv"
)

// BEHAVIOR.md 11.1 W3: envd once crashed at the exit of every pipe-mode
// process (a PTY handle closed unconditionally). Many pipe-mode exits in a
// row end cleanly and nothing panics.
func TestPipeModeExitsNeverPanic(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Process(testenv.Codecs[0])
	for range 50 {
		if r := procRun(t, c, procCmd("/bin/true")); r.end.GetExitCode() != 0 || r.end.GetError() != "" {
			t.Fatalf("end %v", r.end)
		}
	}
	if strings.Contains(e.Log.String(), "panic") {
		t.Fatalf("daemon log mentions a panic:\n%s", e.Log.String())
	}
}

// BEHAVIOR.md 11.3 W9: a PTY without a cwd starts in the user's home as
// /etc/passwd says (root: /root), never a synthesised /home/<user>.
func TestPTYWithoutCwdStartsInPasswdHome(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Process(testenv.Codecs[1])
	req := procCmd("/bin/sh", "-c", "pwd")
	req.Pty = &pb.PTY{Size: &pb.PTY_Size{Cols: 80, Rows: 24}}
	r := procRun(t, c, req)
	if got := strings.TrimSpace(r.pty.String()); got != "/root" {
		t.Fatalf("PTY cwd %q, want /root", got)
	}
}

// BEHAVIOR.md 2.5 and 11.3 W10: the documented precedence — passwd HOME,
// then the sandbox environment from /init, then the request's envs.
func TestEnvPrecedenceHomeInitRequest(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	resp, err := e.HTTP.Post(e.URL+"/init", "application/json", strings.NewReader(`{"envVars":{"HOME":"/from-init","ONLY_INIT":"i"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("/init: %d", resp.StatusCode)
	}
	c := e.Process(testenv.Codecs[0])
	r := procRun(t, c, procShell(`echo "$HOME $ONLY_INIT $USER"`))
	if got := strings.TrimSpace(r.stdout.String()); got != "/from-init i root" {
		t.Fatalf("with /init HOME: %q", got)
	}
	req := procShell(`echo "$HOME $ONLY_INIT"`)
	req.Process.Envs = map[string]string{"HOME": "/from-request"}
	r = procRun(t, c, req)
	if got := strings.TrimSpace(r.stdout.String()); got != "/from-request i" {
		t.Fatalf("with request HOME: %q", got)
	}
}

// BEHAVIOR.md 11.3 W11: CPU % was random when each request sampled for
// 100 ms. Two back-to-back /metrics calls both answer at once with a
// percentage in [0, 100] over the interval since the previous call.
func TestMetricsBackToBackAreConsistent(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	for i := range 2 {
		resp, err := e.HTTP.Get(e.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var m struct {
			CPU float64 `json:"cpu_used_pct"`
		}
		d := json.NewDecoder(bytes.NewReader(body))
		if err := d.Decode(&m); err != nil || m.CPU < 0 || m.CPU > 100 {
			t.Fatalf("call %d: %s (%v)", i, body, err)
		}
	}
}

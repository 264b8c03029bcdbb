package main_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/sandboxd/envd/internal/testenv"
)

func TestVersionCommitAndBadFlags(t *testing.T) {
	bin := testenv.Binary(t)
	for _, f := range []string{"-version", "--version"} {
		out, err := exec.Command(bin, f).Output()
		if err != nil || strings.TrimSpace(string(out)) == "" || strings.Contains(string(out), " ") {
			t.Errorf("%s: %q %v", f, out, err)
		}
	}
	if out, err := exec.Command(bin, "--commit").Output(); err != nil || strings.TrimSpace(string(out)) == "" {
		t.Errorf("--commit: %q %v", out, err)
	}
	cmd := exec.Command(bin, "--no-such-flag")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "no-such-flag") {
		t.Errorf("unknown flag: exit %v, output %q", err, out)
	}
	cmd = exec.Command(bin, "--flavor", "nope")
	out, err = cmd.CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "unknown flavor") {
		t.Errorf("bad flavour: exit %v, output %q", err, out)
	}
}

func TestBinaryServesBothFlavoursAndLogFormats(t *testing.T) {
	w := testenv.StartBinary(t, "--flavor", "wrenn", "--log-format", "json")
	resp, err := w.HTTP.Get(w.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"version"`) {
		t.Fatalf("wrenn binary health: %d %q", resp.StatusCode, body)
	}
	// h2c with prior knowledge on the same port.
	resp, err = w.H2C.Get(w.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("h2c: proto %d status %d", resp.ProtoMajor, resp.StatusCode)
	}
	var line map[string]any
	first := strings.SplitN(w.Output.String(), "\n", 2)[0]
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("--log-format json wrote %q", first)
	}

	e := testenv.StartBinary(t, "--flavor", "e2b")
	resp, err = e.HTTP.Get(e.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("e2b binary health: %d", resp.StatusCode)
	}
	if !strings.HasPrefix(e.Output.String(), "time=") {
		t.Fatalf("--isnotfc must default to text logs: %q", e.Output.String())
	}
}

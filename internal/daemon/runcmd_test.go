package daemon

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/envd/internal/reaper"
)

// Helper commands fork through the reaper (the one waiter for children) and
// report output and exit status; an ended context kills the helper's group.
func TestHelperRunnerThroughReaper(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rp, err := reaper.New(reaper.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	run := helperRunner(rp, log)
	out, err := run(context.Background(), "sh", "-c", "echo out; echo err >&2; exit 3")
	if err == nil || err.Error() != "exit status 3" || out != "out\nerr" {
		t.Fatalf("got %q, %v", out, err)
	}
	out, err = run(context.Background(), "sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x")
	if err != nil || len(out) != maxHelperOutput {
		t.Fatalf("bounded output: %d bytes, %v", len(out), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = run(ctx, "sh", "-c", "sleep 60 & sleep 60")
	if err == nil || !strings.Contains(err.Error(), "killed") || time.Since(start) > 10*time.Second {
		t.Fatalf("cancelled helper: %v after %v", err, time.Since(start))
	}
	if _, err := run(context.Background(), "no-such-helper-binary"); err == nil {
		t.Fatal("missing binary ran")
	}
}

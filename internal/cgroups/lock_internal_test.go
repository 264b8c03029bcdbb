package cgroups

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sandboxd/envd/internal/errs"
)

// TestFreezeLockContentionIsUnavailable: a freeze that cannot take the
// shared lock before its caller gives up answers unavailable (PROTOCOL.md
// 4.7: 503), and a thaw waits for the lock instead of being dropped.
func TestFreezeLockContentionIsUnavailable(t *testing.T) {
	m, err := New(Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.lock <- struct{}{} // another freeze or thaw holds it
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := m.Freeze(ctx, FreezeRequest{}); !errors.Is(err, errs.Unavailable) {
		t.Fatalf("freeze under contention: %v", err)
	}
	thawed := make(chan struct{})
	go func() { _, _ = m.Thaw(); close(thawed) }()
	select {
	case <-thawed:
		t.Fatal("thaw did not wait for the lock")
	case <-time.After(20 * time.Millisecond):
	}
	<-m.lock
	<-thawed
}

func TestMemLimit(t *testing.T) {
	for total, want := range map[uint64]uint64{
		512 << 20: 448 << 20,       // 1/8 of 512 MiB = 64 MiB
		4 << 30:   4<<30 - 128<<20, // capped at 128 MiB
		1 << 30:   1<<30 - 128<<20, // exactly at the cap
		8 << 30:   8<<30 - 128<<20,
	} {
		if got := memLimit(total); got != want {
			t.Errorf("memLimit(%d) = %d, want %d", total, got, want)
		}
	}
}

func TestCgroup2MountAndSelf(t *testing.T) {
	if p, err := selfCgroup("/proc/self/cgroup"); err != nil || p[0] != '/' {
		t.Fatalf("%q %v", p, err)
	}
}

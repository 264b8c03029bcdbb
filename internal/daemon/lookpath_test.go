package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Helpers (mount, umount) are found on $PATH as a shell finds them:
// executable regular files only, first match wins, names with a slash as is.
func TestLookPathFindsExecutablesOnly(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(a, "helper"), []byte("#!/bin/sh\n"), 0o644); err != nil { // not executable
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(a, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "helper"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", a+string(os.PathListSeparator)+b)
	if p, err := lookPath("helper"); err != nil || p != filepath.Join(b, "helper") {
		t.Fatalf("helper: %q %v", p, err)
	}
	if _, err := lookPath("dir"); err == nil {
		t.Fatal("a directory was taken for an executable")
	}
	if _, err := lookPath("no-such-helper"); err == nil || !strings.Contains(err.Error(), "not found in $PATH") {
		t.Fatalf("missing helper: %v", err)
	}
	if p, err := lookPath(filepath.Join(b, "helper")); err != nil || p != filepath.Join(b, "helper") {
		t.Fatalf("path with a slash: %q %v", p, err)
	}
}

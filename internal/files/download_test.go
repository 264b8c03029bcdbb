package files

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
)

func TestOpenRegularFileAndSymlink(t *testing.T) {
	s, u := newService(t), testUser(t)
	p := filepath.Join(u.Home, "a.txt")
	os.WriteFile(p, []byte("hello"), 0o644)
	os.Symlink("a.txt", filepath.Join(u.Home, "link"))
	for _, path := range []string{"a.txt", "~/a.txt", p, "link"} {
		d, err := s.Open(u, "", path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := io.ReadAll(d.File)
		d.File.Close()
		if string(b) != "hello" || d.Size != 5 {
			t.Errorf("%s: %q size %d", path, b, d.Size)
		}
	}
}

// W18: directories, devices, FIFOs and sockets are refused with 400 and
// never read; a FIFO without a writer must not block the request.
func TestOpenRefusesNonRegularFiles(t *testing.T) {
	s, u := newService(t), testUser(t)
	fifo := filepath.Join(u.Home, "fifo")
	unix.Mkfifo(fifo, 0o644)
	sock := filepath.Join(u.Home, "sock")
	fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		u.Home:      "is a directory",
		"/dev/zero": "is not a regular file",
		fifo:        "is not a regular file",
		sock:        "is not a regular file",
	}
	for path, msg := range cases {
		d, err := s.Open(u, "", path)
		if err == nil {
			d.File.Close()
		}
		if !errors.Is(err, errs.Invalid) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: got %v, want invalid %q", path, err, msg)
		}
	}
	_, err := s.Open(u, "", "missing")
	want := "path '" + filepath.Join(u.Home, "missing") + "' does not exist"
	if !errors.Is(err, errs.NotFound) || err.Error() != want {
		t.Errorf("missing: %v", err)
	}
	if _, err := s.Open(u, "", "~other/x"); !errors.Is(err, errs.Invalid) {
		t.Errorf("~other: %v", err)
	}
}

func TestOpenEmptyPathUsesWorkdirThenHome(t *testing.T) {
	s, u := newService(t), testUser(t)
	// Empty path resolves to the workdir (a directory): refused as such.
	if _, err := s.Open(u, "/tmp", ""); err == nil || !strings.Contains(err.Error(), "'/tmp' is a directory") {
		t.Fatalf("got %v", err)
	}
}

func TestWriteGzipRoundTrip(t *testing.T) {
	s, u := newService(t), testUser(t)
	content := bytes.Repeat([]byte("0123456789abcdef"), 100000)
	p := filepath.Join(u.Home, "z")
	os.WriteFile(p, content, 0o644)
	f, _ := os.Open(p)
	defer f.Close()
	var out bytes.Buffer
	if err := s.WriteGzip(&out, f); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("round trip differs: %v", err)
	}
}

// BEHAVIOR.md 5.3 Accept-Encoding algorithm.
func TestNegotiateEncoding(t *testing.T) {
	cases := []struct {
		accept       string
		identityOnly bool
		gzip         bool
		refused      bool
	}{
		{"", false, false, false},
		{"gzip", false, true, false},
		{"GZip", false, true, false},
		{"gzip;q=0", false, false, false},
		{"identity", false, false, false},
		{"identity, gzip", false, false, false},
		{"gzip, identity", false, true, false},
		{"identity;q=0.5, gzip;q=0.8", false, true, false},
		{"identity;q=0.9, gzip;q=0.8", false, false, false},
		{"*", false, false, false},
		{"*, identity;q=0", false, true, false},
		{"identity;q=0", false, false, true},
		{"identity;q=0, gzip", false, true, false},
		{"*;q=0", false, false, true},
		{"*;q=0, identity", false, false, false},
		{"*;q=0, gzip", false, true, false},
		{"br, deflate", false, false, false},
		{"br;q=1, gzip;q=0.5", false, true, false},
		{"br, identity;q=0", false, false, true},
		{"gzip", true, false, false},
		{"gzip, identity;q=0", true, false, true},
		{"gzip;q=abc", false, true, false},
	}
	for _, tc := range cases {
		gz, err := NegotiateEncoding(tc.accept, tc.identityOnly)
		if gz != tc.gzip || (err != nil) != tc.refused {
			t.Errorf("%q identityOnly=%v: gzip=%v err=%v; want gzip=%v refused=%v", tc.accept, tc.identityOnly, gz, err, tc.gzip, tc.refused)
		}
		if err != nil && err.Error() != "no acceptable encoding found, supported: [gzip]" {
			t.Errorf("message %q", err)
		}
	}
}

func TestComposeConcatenatesRenamesAndDeletesSources(t *testing.T) {
	s, u := newService(t), testUser(t)
	var srcs []string
	var want []byte
	for i, c := range []string{"aaa", "", strings.Repeat("c", 1<<20)} {
		p := filepath.Join(u.Home, "part"+string(rune('0'+i)))
		os.WriteFile(p, []byte(c), 0o644)
		srcs = append(srcs, p)
		want = append(want, c...)
	}
	e, err := s.Compose(u, "", srcs, "out/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(u.Home, "out/big.bin")
	if e.Path != dest || e.Name != "big.bin" || e.Type != "file" {
		t.Fatalf("entry %+v", e)
	}
	got, _ := os.ReadFile(dest)
	if !bytes.Equal(got, want) {
		t.Fatal("composed content differs")
	}
	if uid, gid := owner(t, dest); uid != u.UID || gid != u.GID {
		t.Errorf("owned by %d:%d", uid, gid)
	}
	for _, p := range srcs {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("source %s not deleted", p)
		}
	}
	if names := dirNames(t, filepath.Join(u.Home, "out")); len(names) != 1 {
		t.Errorf("leftovers %v", names)
	}
}

func TestComposeErrors(t *testing.T) {
	s, u := newService(t), testUser(t)
	a := filepath.Join(u.Home, "a")
	os.WriteFile(a, []byte("a"), 0o644)
	cases := []struct {
		name    string
		srcs    []string
		dest    string
		kind    error
		message string
	}{
		{"no sources", nil, "d", errs.Invalid, ""},
		{"no destination", []string{a}, "", errs.Invalid, ""},
		{"source is destination", []string{a}, "a", errs.Invalid, ""},
		{"missing source", []string{a, "nope"}, "d", errs.NotFound, "source file not found: " + filepath.Join(u.Home, "nope")},
		{"directory source", []string{u.Home}, "d", errs.Invalid, ""},
		{"destination is a directory", []string{a}, u.Home, errs.Invalid, ""},
	}
	for _, tc := range cases {
		_, err := s.Compose(u, "", tc.srcs, tc.dest)
		if !errors.Is(err, tc.kind) || (tc.message != "" && err.Error() != tc.message) {
			t.Errorf("%s: got %v, want %v %q", tc.name, err, tc.kind, tc.message)
		}
	}
	if readFile(t, a) != "a" {
		t.Fatal("a failed compose touched a source")
	}
}

// BEHAVIOR.md 10.3: ENOSPC → 507, temporary file removed, sources intact.
func TestComposeFullDisk(t *testing.T) {
	s, u := newService(t), testUser(t)
	dir := mountTmpfs(t, "1m")
	src := filepath.Join(u.Home, "src") // on the real disk
	os.WriteFile(src, make([]byte, 2<<20), 0o644)
	_, err := s.Compose(u, "", []string{src}, filepath.Join(dir, "dest"))
	if !errors.Is(err, errs.NoSpace) {
		t.Fatalf("got %v, want no space", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("leftovers %v", names)
	}
	if fi, err := os.Stat(src); err != nil || fi.Size() != 2<<20 {
		t.Fatal("source lost")
	}
}

package files

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"io"
	"mime/multipart"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/envd/internal/errs"
)

type part struct {
	form, filename, content string
}

// buildMultipart encodes parts with a known boundary. Filenames are written
// verbatim (multipart.Writer's CreateFormFile would escape them the same).
func buildMultipart(t testing.TB, parts ...part) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := `form-data; name="` + p.form + `"`
		if p.filename != "" {
			cd += `; filename="` + p.filename + `"`
		}
		h.Set("Content-Disposition", cd)
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p.content)
	}
	mw.Close()
	return &buf, mw.Boundary()
}

func TestMultipartWritesFilePartsInOrderVerbatimNames(t *testing.T) {
	s, u := newService(t), testUser(t)
	body, b := buildMultipart(t,
		part{"file", "dir/one.txt", "1"},
		part{"other", "", "ignored"},
		part{"file", filepath.Join(u.Home, "abs/two.txt"), "22"},
		part{"file", "caf\u00e9 \u6587\u4ef6.txt", "unicode"},
	)
	entries, err := s.WriteMultipart(Upload{User: u}, body, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(u.Home, "dir/one.txt"), filepath.Join(u.Home, "abs/two.txt"), filepath.Join(u.Home, "caf\u00e9 \u6587\u4ef6.txt")}
	if len(entries) != len(want) {
		t.Fatalf("entries %+v", entries)
	}
	for i, w := range want {
		if entries[i].Path != w || entries[i].Type != "file" || entries[i].Name != filepath.Base(w) {
			t.Errorf("entry %d = %+v, want %s", i, entries[i], w)
		}
	}
	if readFile(t, want[0]) != "1" || readFile(t, want[1]) != "22" || readFile(t, want[2]) != "unicode" {
		t.Fatal("content mismatch")
	}
}

func TestMultipartPathParamAndDuplicates(t *testing.T) {
	s, u := newService(t), testUser(t)
	body, b := buildMultipart(t, part{"file", "ignored-name", "by path"})
	entries, err := s.WriteMultipart(Upload{User: u, Path: "target.txt", HasPath: true}, body, b)
	if err != nil || len(entries) != 1 || readFile(t, filepath.Join(u.Home, "target.txt")) != "by path" {
		t.Fatalf("%+v %v", entries, err)
	}
	// Two parts for one path: 400 after the first was written (E2B).
	body, b = buildMultipart(t, part{"file", "x", "first"}, part{"file", "y", "second"})
	entries, err = s.WriteMultipart(Upload{User: u, Path: "dup.txt", HasPath: true}, body, b)
	if !errors.Is(err, errs.Invalid) || !strings.Contains(err.Error(), filepath.Join(u.Home, "dup.txt")) || len(entries) != 1 {
		t.Fatalf("duplicate: %+v %v", entries, err)
	}
	if readFile(t, filepath.Join(u.Home, "dup.txt")) != "first" {
		t.Fatal("first part not kept")
	}
	// A file part with neither filename nor path.
	body, b = buildMultipart(t, part{"file", "", "x"})
	if _, err := s.WriteMultipart(Upload{User: u}, body, b); !errors.Is(err, errs.Invalid) {
		t.Fatalf("no filename: %v", err)
	}
	// No file part at all: an empty list, not an error.
	body, b = buildMultipart(t, part{"note", "", "x"})
	if entries, err := s.WriteMultipart(Upload{User: u}, body, b); err != nil || len(entries) != 0 {
		t.Fatalf("no file part: %+v %v", entries, err)
	}
}

// Part content that contains near-boundaries, CRLFs and a boundary split at
// every buffer edge must come out byte for byte.
func TestMultipartBoundaryScanAcrossBufferEdges(t *testing.T) {
	s, u := newService(t), testUser(t)
	const boundary = "XyZboundary0123456789"
	content := make([]byte, 3*copyBufSize+12345)
	rand.Read(content)
	// Sprinkle partial delimiters, including at the 1 MiB edges.
	near := []byte("\r\n--XyZboundary012345678")
	for _, off := range []int{0, copyBufSize - 10, copyBufSize - len(near) + 3, 2 * copyBufSize, len(content) - len(near)} {
		copy(content[off:], near)
	}
	var body bytes.Buffer
	body.WriteString("preamble to skip\r\n--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n")
	body.Write(content)
	body.WriteString("\r\n--" + boundary + "  \r\nContent-Disposition: form-data; name=\"file\"; filename=\"empty.bin\"\r\n\r\n")
	body.WriteString("\r\n--" + boundary + "--\r\nepilogue")
	entries, err := s.WriteMultipart(Upload{User: u}, &body, boundary)
	if err != nil || len(entries) != 2 {
		t.Fatalf("%+v %v", entries, err)
	}
	got, _ := os.ReadFile(filepath.Join(u.Home, "big.bin"))
	if !bytes.Equal(got, content) {
		t.Fatalf("content differs (len %d vs %d)", len(got), len(content))
	}
	if fi, err := os.Stat(filepath.Join(u.Home, "empty.bin")); err != nil || fi.Size() != 0 {
		t.Fatalf("empty part: %v %v", fi, err)
	}
}

func TestMultipartTruncatedBodyKeepsOldFile(t *testing.T) {
	s, u := newService(t), testUser(t)
	p := filepath.Join(u.Home, "old.txt")
	os.WriteFile(p, []byte("old"), 0o644)
	body, b := buildMultipart(t, part{"file", "old.txt", strings.Repeat("n", 2<<20)})
	cut := io.LimitReader(body, int64(body.Len()-100))
	_, err := s.WriteMultipart(Upload{User: u}, cut, b)
	if err == nil || errs.Kind(err) != nil {
		t.Fatalf("got %v, want internal", err)
	}
	if readFile(t, p) != "old" || len(dirNames(t, u.Home)) != 1 {
		t.Fatalf("old file touched or temp left: %v", dirNames(t, u.Home))
	}
}

func TestMultipartHeaderLimits(t *testing.T) {
	s, u := newService(t), testUser(t)
	for name, body := range map[string]string{
		"header line longer than the buffer": "--b\r\nX: " + strings.Repeat("a", copyBufSize+1) + "\r\n\r\nx\r\n--b--\r\n",
		"too many headers":                   "--b\r\n" + strings.Repeat("X: y\r\n", maxPartHeaders+1) + "\r\nx\r\n--b--\r\n",
		"header without colon":               "--b\r\nnot a header\r\n\r\nx\r\n--b--\r\n",
		"no closing delimiter":               "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nxx",
	} {
		if _, err := s.WriteMultipart(Upload{User: u}, strings.NewReader(body), "b"); err == nil || errs.Kind(err) != nil {
			t.Errorf("%s: got %v, want internal (malformed multipart)", name, err)
		}
	}
}

func gz(t testing.TB, b []byte) *bytes.Buffer {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return &out
}

// PROTOCOL.md 4.9: Content-Encoding gzip covers the whole request body.
func TestGzipBodies(t *testing.T) {
	s, u := newService(t), testUser(t)
	content := bytes.Repeat([]byte("gzip me "), 300000)
	up := raw(u, "raw.gz.txt")
	up.Encoding = "gzip"
	if _, err := s.WriteRaw(up, gz(t, content)); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(u.Home, "raw.gz.txt")); !bytes.Equal(got, content) {
		t.Fatal("raw gzip content differs")
	}
	body, b := buildMultipart(t, part{"file", "mp.txt", string(content)})
	if _, err := s.WriteMultipart(Upload{User: u, Encoding: "GZIP"}, gz(t, body.Bytes()), b); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(u.Home, "mp.txt")); !bytes.Equal(got, content) {
		t.Fatal("multipart gzip content differs")
	}
	// Corrupt gzip is the client's error; an unknown encoding too.
	bad := gz(t, content).Bytes()
	bad[len(bad)-5] ^= 0xff // the CRC32 trailer
	up.Path = "bad.txt"
	if _, err := s.WriteRaw(up, bytes.NewReader(bad)); !errors.Is(err, errs.Invalid) {
		t.Fatalf("corrupt gzip: %v", err)
	}
	if _, err := os.Stat(filepath.Join(u.Home, "bad.txt")); !os.IsNotExist(err) {
		t.Fatal("corrupt gzip left a file")
	}
	if _, err := s.WriteRaw(up, strings.NewReader("plain")); err == nil {
		t.Fatal("plain body declared gzip accepted")
	}
	up.Encoding = "br"
	if _, err := s.WriteRaw(up, strings.NewReader("x")); !errors.Is(err, errs.Invalid) {
		t.Fatalf("br: %v", err)
	}
}

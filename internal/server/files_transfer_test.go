package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestFilesDownloadHeaders(t *testing.T) {
	e := newFilesEnv(t)
	for name, want := range map[string]string{
		"plain.txt":     "inline; filename=plain.txt",
		"my file.txt":   `inline; filename="my file.txt"`,
		"caf\u00e9.bin": "inline; filename*=utf-8''caf%C3%A9.bin",
		"noext":         "inline; filename=noext",
		"page.html":     "inline; filename=page.html",
	} {
		os.WriteFile(filepath.Join(e.rootHome, name), []byte("<html>x</html>"), 0o644)
		r := filesDo(t, "GET", e.filesURL("path", name), nil)
		if r.code != 200 || r.h.Get("Content-Disposition") != want || r.h.Get("Vary") != "Accept-Encoding" ||
			r.h.Get("Accept-Ranges") != "bytes" || r.h.Get("Content-Length") != "14" || r.h.Get("Last-Modified") == "" {
			t.Errorf("%s: %d %v", name, r.code, r.h)
		}
		if _, params, err := mime.ParseMediaType(r.h.Get("Content-Disposition")); err != nil || params["filename"] != name {
			t.Errorf("%s: disposition does not parse back: %v %v", name, params, err)
		}
	}
	ct := func(name string) string {
		return filesDo(t, "GET", e.filesURL("path", name), nil).h.Get("Content-Type")
	}
	if got := ct("plain.txt"); got != "text/plain; charset=utf-8" {
		t.Errorf("by extension: %q", got)
	}
	if got := ct("noext"); got != "text/html; charset=utf-8" {
		t.Errorf("sniffed: %q", got)
	}
	os.WriteFile(filepath.Join(e.rootHome, "empty"), nil, 0o644)
	if r := filesDo(t, "GET", e.filesURL("path", "empty"), nil); r.code != 200 || r.h.Get("Content-Length") != "0" {
		t.Errorf("empty file: %d %v", r.code, r.h)
	}
	// HEAD gives the headers and no body.
	if r := filesDo(t, "HEAD", e.filesURL("path", "plain.txt"), nil); r.code != 200 || r.body != "" || r.h.Get("Content-Length") != "14" {
		t.Errorf("HEAD: %d %q %v", r.code, r.body, r.h)
	}
}

// W18 and 4.8 step 4: what is not a regular file is refused, never read.
func TestFilesDownloadRefusals(t *testing.T) {
	e := newFilesEnv(t)
	fifo := filepath.Join(e.rootHome, "fifo")
	unix.Mkfifo(fifo, 0o644)
	filesWant(t, "directory", filesDo(t, "GET", e.filesURL("path", e.rootHome), nil), 400, fmt.Sprintf(`"path '%s' is a directory"`, e.rootHome))
	filesWant(t, "/dev/zero", filesDo(t, "GET", e.filesURL("path", "/dev/zero"), nil), 400, "is not a regular file")
	filesWant(t, "fifo", filesDo(t, "GET", e.filesURL("path", fifo), nil), 400, "is not a regular file")
	r := filesDo(t, "GET", e.filesURL("path", "missing.txt"), nil)
	want := fmt.Sprintf(`{"code":404,"message":"path '%s' does not exist"}`+"\n", filepath.Join(e.rootHome, "missing.txt"))
	if r.code != 404 || r.body != want || r.h.Get("Content-Type") != "application/json; charset=utf-8" || r.h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("missing: %d %q %v", r.code, r.body, r.h)
	}
	filesWant(t, "identity refused", filesDo(t, "GET", e.filesURL("path", fifo), nil, "Accept-Encoding", "identity;q=0"), 400, "")
	os.WriteFile(filepath.Join(e.rootHome, "f"), []byte("x"), 0o644)
	filesWant(t, "406", filesDo(t, "GET", e.filesURL("path", "f"), nil, "Accept-Encoding", "br, identity;q=0"),
		406, `{"code":406,"message":"no acceptable encoding found, supported: [gzip]"}`)
	filesWant(t, "range with identity refused", filesDo(t, "GET", e.filesURL("path", "f"), nil,
		"Accept-Encoding", "gzip, identity;q=0", "Range", "bytes=0-0"), 406, "no acceptable encoding")
}

// Range requests at the edges (PROTOCOL.md 4.8 step 9).
func TestFilesRangeEdges(t *testing.T) {
	e := newFilesEnv(t)
	content := "0123456789"
	os.WriteFile(filepath.Join(e.rootHome, "r.txt"), []byte(content), 0o644)
	u := e.filesURL("path", "r.txt")
	for _, tc := range []struct {
		rng, body, contentRange string
		code                    int
	}{
		{"bytes=0-0", "0", "bytes 0-0/10", 206},
		{"bytes=9-9", "9", "bytes 9-9/10", 206},
		{"bytes=-1", "9", "bytes 9-9/10", 206},
		{"bytes=9-", "9", "bytes 9-9/10", 206},
		{"bytes=0-", content, "bytes 0-9/10", 206},
		{"bytes=5-100", "56789", "bytes 5-9/10", 206},
		{"bytes=10-", "", "bytes */10", 416},
		{"bytes=20-30", "", "bytes */10", 416},
	} {
		// Accept-Encoding gzip too: a range forces identity.
		r := filesDo(t, "GET", u, nil, "Range", tc.rng, "Accept-Encoding", "gzip")
		if r.code != tc.code || r.h.Get("Content-Range") != tc.contentRange || (tc.code == 206 && r.body != tc.body) || r.h.Get("Content-Encoding") != "" {
			t.Errorf("%s: %d %q %q", tc.rng, r.code, r.h.Get("Content-Range"), r.body)
		}
	}
	r := filesDo(t, "GET", u, nil, "Range", "bytes=0-0,8-9")
	mt, params, _ := mime.ParseMediaType(r.h.Get("Content-Type"))
	if r.code != 206 || mt != "multipart/byteranges" {
		t.Fatalf("multiple ranges: %d %q", r.code, r.h.Get("Content-Type"))
	}
	mr := multipart.NewReader(strings.NewReader(r.body), params["boundary"])
	var got []string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p)
		got = append(got, p.Header.Get("Content-Range")+"="+string(b))
	}
	if strings.Join(got, ";") != "bytes 0-0/10=0;bytes 8-9/10=89" {
		t.Errorf("parts %v", got)
	}
	fi, _ := os.Stat(filepath.Join(e.rootHome, "r.txt"))
	r = filesDo(t, "GET", u, nil, "If-Modified-Since", fi.ModTime().Add(time.Second).UTC().Format(http.TimeFormat), "Accept-Encoding", "gzip")
	if r.code != 304 || r.body != "" {
		t.Errorf("If-Modified-Since: %d %q", r.code, r.body)
	}
}

func TestFilesGzipRoundTrip(t *testing.T) {
	e := newFilesEnv(t)
	content := bytes.Repeat([]byte("round trip "), 200000)
	var zbody bytes.Buffer
	zw := gzip.NewWriter(&zbody)
	zw.Write(content)
	zw.Close()
	filesWant(t, "gzip upload", filesDo(t, "POST", e.filesURL("path", "data.json"), &zbody,
		"Content-Type", "application/octet-stream", "Content-Encoding", "gzip"), 200, "data.json")
	r := filesDo(t, "GET", e.filesURL("path", "data.json"), nil, "Accept-Encoding", "gzip")
	if r.code != 200 || r.h.Get("Content-Encoding") != "gzip" || r.h.Get("Content-Length") != "" ||
		r.h.Get("Content-Type") != "application/json" || r.h.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip download: %d %v", r.code, r.h)
	}
	zr, err := gzip.NewReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("round trip differs: %v", err)
	}
	if len(r.body) >= len(content)/10 {
		t.Errorf("compressed %d of %d bytes", len(r.body), len(content))
	}
	os.WriteFile(filepath.Join(e.rootHome, "x.unknownext"), []byte("x"), 0o644)
	if ct := filesDo(t, "GET", e.filesURL("path", "x.unknownext"), nil, "Accept-Encoding", "gzip").h.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("gzip default type %q", ct)
	}
	if r := filesDo(t, "HEAD", e.filesURL("path", "data.json"), nil, "Accept-Encoding", "gzip"); r.code != 200 || r.body != "" {
		t.Errorf("gzip HEAD: %d %d bytes", r.code, len(r.body))
	}
}

func TestFilesUploadForms(t *testing.T) {
	e := newFilesEnv(t)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range []struct{ name, content string }{{"a/one.txt", "1"}, {"b/two.txt", "22"}} {
		w, _ := mw.CreateFormFile("file", f.name)
		io.WriteString(w, f.content)
	}
	mw.Close()
	r := filesDo(t, "POST", e.filesURL(), &body, "Content-Type", mw.FormDataContentType(), "X-Metadata-Origin", "test")
	want := fmt.Sprintf(`[{"path":"%s","name":"one.txt","type":"file","metadata":{"origin":"test"}},{"path":"%s","name":"two.txt","type":"file","metadata":{"origin":"test"}}]`+"\n",
		filepath.Join(e.rootHome, "a/one.txt"), filepath.Join(e.rootHome, "b/two.txt"))
	if r.code != 200 || r.body != want {
		t.Fatalf("multipart: %d %q", r.code, r.body)
	}
	if filesRead(t, filepath.Join(e.rootHome, "b/two.txt")) != "22" {
		t.Fatal("content")
	}
	filesWant(t, "octet-stream without path", filesDo(t, "POST", e.filesURL(), strings.NewReader("x"), "Content-Type", "application/octet-stream"), 400, "path is required")
	filesWant(t, "unsupported type", filesDo(t, "POST", e.filesURL("path", "x"), strings.NewReader("x"), "Content-Type", "text/plain"), 400, "unsupported content type: text/plain")
	filesWant(t, "no type", filesDo(t, "POST", e.filesURL("path", "x"), strings.NewReader("x")), 400, "unsupported content type")
	filesWant(t, "no boundary", filesDo(t, "POST", e.filesURL("path", "x"), strings.NewReader("x"), "Content-Type", "multipart/form-data"), 500, "error parsing multipart form")
	filesWant(t, "bad encoding", filesDo(t, "POST", e.filesURL("path", "x"), strings.NewReader("x"), "Content-Type", "application/octet-stream", "Content-Encoding", "br"), 400, "unsupported Content-Encoding")
	filesWant(t, "onto a directory", filesDo(t, "POST", e.filesURL("path", "a"), strings.NewReader("x"), "Content-Type", "application/octet-stream"), 400, "path is a directory")
	filesWant(t, "no file parts", filesDo(t, "POST", e.filesURL(), strings.NewReader("--b--\r\n"), "Content-Type", "multipart/form-data; boundary=b"), 200, "[]")
	// Invalid metadata is refused before anything is written.
	filesWant(t, "bad metadata", filesDo(t, "POST", e.filesURL("path", "meta.txt"), strings.NewReader("x"),
		"Content-Type", "application/octet-stream", "X-Metadata-K", strings.Repeat("v", 4096)), 400, "metadata")
	if _, err := os.Stat(filepath.Join(e.rootHome, "meta.txt")); !os.IsNotExist(err) {
		t.Error("refused metadata upload wrote the file")
	}
}

// E37 through HTTP: 507 with the SDK's NotEnoughSpaceError status, and no
// partial file on the full 1 MiB tmpfs.
func TestFilesUploadFullDiskIs507(t *testing.T) {
	e := newFilesEnv(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	filesWant(t, "raw", filesDo(t, "POST", e.filesURL("path", filepath.Join(dir, "big")), bytes.NewReader(make([]byte, 3<<20)),
		"Content-Type", "application/octet-stream"), 507, "not enough disk space available")
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("file", filepath.Join(dir, "big2"))
	w.Write(make([]byte, 3<<20))
	mw.Close()
	filesWant(t, "multipart", filesDo(t, "POST", e.filesURL(), &body, "Content-Type", mw.FormDataContentType()), 507, "not enough disk space")
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("partial files left: %v", ents)
	}
}

// An upload cut off mid-body (the client dies) leaves the old file intact
// and no temporary file.
func TestFilesUploadCutOffKeepsOldFile(t *testing.T) {
	e := newFilesEnv(t)
	p := filepath.Join(e.rootHome, "precious.txt")
	os.WriteFile(p, []byte("old content"), 0o644)
	u, _ := url.Parse(e.url)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /files?path=%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
		url.QueryEscape(p), 8<<20)
	conn.Write(bytes.Repeat([]byte("n"), 3<<20))
	conn.(*net.TCPConn).CloseWrite() // the body ends 5 MiB early
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("cut-off upload answered %d", resp.StatusCode)
	}
	if got := filesRead(t, p); got != "old content" {
		t.Fatalf("old content destroyed (%d bytes)", len(got))
	}
	if ents, _ := os.ReadDir(e.rootHome); len(ents) != 1 {
		t.Fatalf("leftovers: %v", ents)
	}
}

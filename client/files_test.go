package client_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/envd/client"
	"github.com/sandboxd/envd/internal/testenv"
)

func TestWriteAndReadRoundTrip(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e, client.WithUser("root"))
	ctx := ctxT(t)
	dir := t.TempDir()
	data := make([]byte, 3<<20+17)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(data)

	// Known length (bytes.Reader), unknown length (a plain reader: chunked)
	// and an *os.File.
	info, err := c.Write(ctx, filepath.Join(dir, "new/dirs/a.bin"), bytes.NewReader(data))
	if err != nil || info.Path != filepath.Join(dir, "new/dirs/a.bin") || info.Name != "a.bin" || info.Type != "file" {
		t.Fatalf("%v %+v", err, info)
	}
	if _, err := c.Write(ctx, filepath.Join(dir, "b.bin"), io.MultiReader(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := c.Write(ctx, filepath.Join(dir, "c.bin"), f); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(ctx, filepath.Join(dir, "empty"), strings.NewReader("")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"new/dirs/a.bin", "b.bin", "c.bin"} {
		got, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %v, %d bytes", n, err, len(got))
		}
		r, err := c.Read(ctx, filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if r.Size != int64(len(data)) {
			t.Fatalf("size %d", r.Size)
		}
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			t.Fatal(err)
		}
		r.Close()
		if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("%s: downloaded content differs", n)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "empty")); err != nil || st.Size() != 0 {
		t.Fatalf("empty: %v", err)
	}
	_, err = c.Read(ctx, filepath.Join(dir, "missing"))
	var ce *client.Error
	if !errors.Is(err, client.ErrNotFound) || !errors.As(err, &ce) || ce.Status != 404 || !strings.Contains(ce.Message, "does not exist") {
		t.Fatalf("read missing: %#v", err)
	}
	if _, err := c.Read(ctx, dir); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("read a directory: %v", err)
	}
	if _, err := c.Write(ctx, dir, strings.NewReader("x")); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("write onto a directory: %v", err)
	}
}

func TestWriteFilesMultipart(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e)
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write(big); pw.Close() }()
	infos, err := c.WriteFiles(ctxT(t), []client.Upload{
		{Path: filepath.Join(dir, "one.txt"), Data: strings.NewReader("one")},
		{Path: filepath.Join(dir, "nested/two.bin"), Data: pr},
		{Path: filepath.Join(dir, `q"uote.txt`), Data: strings.NewReader("three")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 || infos[0].Name != "one.txt" || infos[1].Path != filepath.Join(dir, "nested/two.bin") {
		t.Fatalf("%+v", infos)
	}
	for name, want := range map[string][]byte{"one.txt": []byte("one"), "nested/two.bin": big, `q"uote.txt`: []byte("three")} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %v, %d bytes", name, err, len(got))
		}
	}
	// A failing source ends the request with its error.
	_, err = c.WriteFiles(ctxT(t), []client.Upload{{Path: filepath.Join(dir, "bad"), Data: failingReader{}}})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("failing source: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

package server_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sandboxd/envd/internal/testenv"
)

// xferSource yields size bytes of varied data without holding them: one
// random 1 MiB block, each copy stamped with its index.
type xferSource struct {
	block     []byte
	size, off int64
}

func newXferSource(size int64) *xferSource {
	b := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return &xferSource{block: b, size: size}
}

func (s *xferSource) Read(p []byte) (int, error) {
	if s.off >= s.size {
		return 0, io.EOF
	}
	in := s.off % int64(len(s.block))
	if in == 0 {
		binary.LittleEndian.PutUint64(s.block, uint64(s.off))
	}
	n := copy(p, s.block[in:min(int64(len(s.block)), in+s.size-s.off)])
	s.off += int64(n)
	return n, nil
}

// xferStatus reads one field (in kB) of /proc/PID/status.
func xferStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in status", field)
	return 0
}

func xferPost(t testing.TB, c *http.Client, u string, body io.Reader, size int64, ct string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, body)
	req.ContentLength = size
	req.Header.Set("Content-Type", ct)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
}

// xferMultipart streams one file part of size bytes from src.
func xferMultipart(src io.Reader, name string, size int64) (io.Reader, int64, string) {
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	mw.CreateFormFile("file", name)
	tail := "\r\n--" + mw.Boundary() + "--\r\n"
	body := io.MultiReader(bytes.NewReader(head.Bytes()), io.LimitReader(src, size), strings.NewReader(tail))
	return body, int64(head.Len()) + size + int64(len(tail)), mw.FormDataContentType()
}

func xferCRC() hash.Hash32 { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }

// BEHAVIOR.md 5.4: both directions stream with bounded buffers. 2 GiB up
// (raw and multipart) and down, and the daemon's peak RSS stays under 32 MB.
func TestFilesTwoGiBTransfersKeepDaemonRSSSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 6 GiB")
	}
	const size = 2 << 30
	p := testenv.StartBinary(t)
	dir := t.TempDir() // on the real disk; removed at cleanup
	pid := p.Cmd.Process.Pid
	target := filepath.Join(dir, "big.bin")

	sum := xferCRC()
	xferPost(t, p.HTTP, p.URL+"/files?path="+url.QueryEscape(target), io.TeeReader(newXferSource(size), sum), size, "application/octet-stream")
	if fi, err := os.Stat(target); err != nil || fi.Size() != size {
		t.Fatalf("uploaded file: %v %v", fi, err)
	}

	body, n, ct := xferMultipart(newXferSource(size), filepath.Join(dir, "big-mp.bin"), size)
	xferPost(t, p.HTTP, p.URL+"/files", bufio.NewReaderSize(body, 1<<20), n, ct)
	if fi, err := os.Stat(filepath.Join(dir, "big-mp.bin")); err != nil || fi.Size() != size {
		t.Fatalf("multipart file: %v %v", fi, err)
	}
	os.Remove(filepath.Join(dir, "big-mp.bin"))

	resp, err := p.HTTP.Get(p.URL + "/files?path=" + url.QueryEscape(target))
	if err != nil {
		t.Fatal(err)
	}
	got := xferCRC()
	read, err := io.Copy(got, resp.Body)
	resp.Body.Close()
	if err != nil || read != size || got.Sum32() != sum.Sum32() || resp.Header.Get("Content-Length") != strconv.Itoa(size) {
		t.Fatalf("download: %d bytes, crc %x want %x, err %v", read, got.Sum32(), sum.Sum32(), err)
	}
	hwm := xferStatus(t, pid, "VmHWM")
	t.Logf("daemon peak RSS %d kB after 6 GiB of transfers", hwm)
	if hwm*1024 >= 32_000_000 {
		t.Fatalf("daemon peak RSS %d kB, want < 32 MB", hwm)
	}
}

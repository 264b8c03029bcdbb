package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/testenv"
)

// xferCPU is the daemon's user+system CPU time in seconds (/proc/PID/stat
// utime and stime, in clock ticks of 1/100 s).
func xferCPU(b testing.TB, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// xferBench runs op b.N times against the built binary and reports the
// daemon's CPU seconds per GiB moved (targets: upload ≤ 0.4, download ≤ 0.1).
func xferBench(b *testing.B, perOp int64, op func(p *testenv.Proc, dir string)) {
	p := testenv.StartBinary(b)
	dir := b.TempDir()
	op(p, dir) // warm up: page cache, connections, daemon heap
	b.SetBytes(perOp)
	cpu0 := xferCPU(b, p.Cmd.Process.Pid)
	b.ResetTimer()
	for range b.N {
		op(p, dir)
	}
	b.StopTimer()
	gib := float64(perOp) * float64(b.N) / (1 << 30)
	b.ReportMetric((xferCPU(b, p.Cmd.Process.Pid)-cpu0)/gib, "cpu-s/GiB")
}

const xferBenchSize = 512 << 20

// BenchmarkFilesUploadRaw: application/octet-stream, 512 MiB per op.
func BenchmarkFilesUploadRaw(b *testing.B) {
	src := newXferSource(xferBenchSize)
	xferBench(b, xferBenchSize, func(p *testenv.Proc, dir string) {
		src.off = 0
		xferPost(b, p.HTTP, p.URL+"/files?path="+url.QueryEscape(filepath.Join(dir, "raw.bin")), src, xferBenchSize, "application/octet-stream")
	})
}

// BenchmarkFilesUploadMultipart: one multipart/form-data part, 512 MiB per op.
func BenchmarkFilesUploadMultipart(b *testing.B) {
	src := newXferSource(xferBenchSize)
	xferBench(b, xferBenchSize, func(p *testenv.Proc, dir string) {
		src.off = 0
		body, n, ct := xferMultipart(src, filepath.Join(dir, "mp.bin"), xferBenchSize)
		xferPost(b, p.HTTP, p.URL+"/files", body, n, ct)
	})
}

// BenchmarkFilesDownload: identity download (sendfile), 512 MiB per op.
func BenchmarkFilesDownload(b *testing.B) {
	var path string
	xferBench(b, xferBenchSize, func(p *testenv.Proc, dir string) {
		if path == "" {
			path = filepath.Join(dir, "down.bin")
			f, _ := os.Create(path)
			io.Copy(f, newXferSource(xferBenchSize))
			f.Close()
		}
		resp, err := p.HTTP.Get(p.URL + "/files?path=" + url.QueryEscape(path))
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != xferBenchSize {
			b.Fatalf("downloaded %d bytes", n)
		}
	})
}

// BenchmarkFilesSmallUploads: 2,000 uploads of 4 KiB (raw, new files) per
// op, sequential on one connection and from 8 concurrent clients, onto the
// disk and onto a tmpfs (the disk's inode allocation can dominate: on this
// machine's journal-less ext4 a bare create costs ~1 ms after many recent
// deletions). Target ≥ 3,000 uploads/s.
func BenchmarkFilesSmallUploads(b *testing.B) {
	for _, where := range []string{"disk", "tmpfs"} {
		for _, workers := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/clients=%d", where, workers), func(b *testing.B) {
				xferSmall(b, where == "tmpfs", workers)
			})
		}
	}
}

func xferSmall(b *testing.B, tmpfs bool, workers int) {
	const count = 2000
	data := bytes.Repeat([]byte("x"), 4096)
	p := testenv.StartBinary(b)
	dir := b.TempDir()
	if tmpfs {
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", dir).CombinedOutput(); err != nil {
			b.Skipf("cannot mount tmpfs: %v %s", err, out)
		}
		b.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	}
	round := 0
	one := func(i int) {
		u := p.URL + "/files?path=" + url.QueryEscape(filepath.Join(dir, strconv.Itoa(round), strconv.Itoa(i)))
		xferPost(b, p.HTTP, u, bytes.NewReader(data), int64(len(data)), "application/octet-stream")
	}
	cpu0 := xferCPU(b, p.Cmd.Process.Pid)
	b.ResetTimer()
	for range b.N {
		round++
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < count; i += workers {
					one(i)
				}
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(count*b.N)/b.Elapsed().Seconds(), "uploads/s")
	b.ReportMetric((xferCPU(b, p.Cmd.Process.Pid)-cpu0)*1e6/float64(count*b.N), "cpu-µs/upload")
}

package server_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
	"github.com/sandboxd/envd/internal/testenv"
)

// fsReportPercentiles adds p50 and p99 latency (ms) to a benchmark.
func fsReportPercentiles(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	ms := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// BenchmarkStat measures one Stat round trip over loopback HTTP/1.1 (the
// SDK's JSON codec and the host's proto codec). Target: p50 ≤ 0.15 ms.
func BenchmarkStat(b *testing.B) {
	e := testenv.Start(b, testenv.Options{})
	f := b.TempDir() + "/file"
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, codec := range testenv.Codecs[:2] {
		b.Run(codec.Name, func(b *testing.B) {
			c := e.Filesystem(codec)
			ctx := context.Background() // no deadline: a long -benchtime must not run out of one
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				if _, err := c.Stat(ctx, connect.NewRequest(&fspb.StatRequest{Path: f})); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			fsReportPercentiles(b, lat)
		})
	}
}

// BenchmarkListDir10k lists a directory of 10,000 files through the RPC.
// Target: well under 100 ms.
func BenchmarkListDir10k(b *testing.B) {
	e := testenv.Start(b, testenv.Options{})
	dir := b.TempDir()
	for i := range 10_000 {
		if err := os.WriteFile(fmt.Sprintf("%s/file-%05d", dir, i), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, codec := range testenv.Codecs[:2] {
		b.Run(codec.Name, func(b *testing.B) {
			c := e.Filesystem(codec)
			ctx := context.Background() // no deadline: a long -benchtime must not run out of one
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				r, err := c.ListDir(ctx, connect.NewRequest(&fspb.ListDirRequest{Path: dir}))
				if err != nil || len(r.Msg.Entries) != 10_000 {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			fsReportPercentiles(b, lat)
		})
	}
	// What envd spends, without the Go client's decoding: the raw JSON
	// answer over HTTP/1.1, read and discarded.
	b.Run("json-raw", func(b *testing.B) {
		body := fmt.Sprintf(`{"path":%q}`, dir)
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			t0 := time.Now()
			resp, err := e.HTTP.Post(e.URL+"/filesystem.Filesystem/ListDir", "application/json", strings.NewReader(body))
			if err != nil || resp.StatusCode != 200 {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
			b.SetBytes(n)
		}
		fsReportPercentiles(b, lat)
	})
}

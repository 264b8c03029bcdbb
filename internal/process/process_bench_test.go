package process

import (
	"context"
	"sort"
	"testing"
	"time"
)

// BenchmarkStartTrueNoRPC is Start of /bin/true to its end event inside the
// subsystem (no HTTP): the spawn, reap and end-publication cost.
func BenchmarkStartTrueNoRPC(b *testing.B) {
	m := newManagerB(b)
	u := rootB(b)
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		t0 := time.Now()
		s, err := m.Start(StartOptions{Config: Config{Cmd: "/bin/true"}, User: u, Dir: "/"})
		if err != nil {
			b.Fatal(err)
		}
		for {
			ev, err := s.Next(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if ev.End != nil {
				break
			}
		}
		s.Close()
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

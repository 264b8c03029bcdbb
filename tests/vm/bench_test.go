package vm

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkVMLifecycle measures, per iteration: a fresh boot until envd's
// /health answers (qemu start included), envd's RSS in the guest after
// boot, then benchCycles pause/resume cycles (prepare, snapshot with qemu
// quitting, restore into a new qemu until /health answers), and envd's RSS
// after them. Run it with -benchtime=1x; each iteration costs about a
// minute of TCG on a quiet machine:
//
//	ENVD_VM_TESTS=1 go test -run '^$' -bench VMLifecycle -benchtime 1x ./tests/vm
func BenchmarkVMLifecycle(b *testing.B) {
	const benchCycles = 20
	m, _ := golden(b)
	var boot, snap, restoreSum, restoreMin time.Duration
	var snapBytes int64
	var rssBoot, rssAfter int
	for it := 0; it < b.N; it++ {
		dir := b.TempDir()
		start := time.Now()
		vm, err := m.Boot(filepath.Join(dir, "boot"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(vm.Kill)
		if _, err := vm.WaitHealthy(bootTimeout); err != nil {
			b.Fatal(err)
		}
		boot += time.Since(start)
		g := dial(b, vm)
		rssBoot += g.pid1RSS()
		for c := 1; c <= benchCycles; c++ {
			g.upload(fmt.Sprintf("/tmp/bench-%d", c), []byte("cycle"))
			if out := g.sh(fmt.Sprintf("cat /tmp/bench-%d", c)); out != "cycle" {
				b.Fatalf("cycle %d: %q", c, out)
			}
			g.prepare()
			file := filepath.Join(dir, "bench.snap")
			st, err := vm.Snapshot(file)
			if err != nil {
				b.Fatal(err)
			}
			snap += st.Took
			snapBytes += st.Bytes
			rs := time.Now()
			if vm, err = m.Restore(filepath.Join(dir, fmt.Sprint("vm-", c)), file); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(vm.Kill)
			if _, err := vm.WaitHealthy(restoreTimeout); err != nil {
				b.Fatal(err)
			}
			took := time.Since(rs)
			restoreSum += took
			if restoreMin == 0 || took < restoreMin {
				restoreMin = took
			}
			g = dial(b, vm)
		}
		rssAfter += g.pid1RSS()
		vm.Kill()
	}
	n := float64(b.N)
	cyc := n * benchCycles
	b.ReportMetric(boot.Seconds()/n, "boot-s")
	b.ReportMetric(float64(snap.Milliseconds())/cyc, "snapshot-ms")
	b.ReportMetric(float64(snapBytes)/cyc/(1<<20), "snapshot-MiB")
	b.ReportMetric(float64(restoreSum.Milliseconds())/cyc, "restore-ms")
	b.ReportMetric(float64(restoreMin.Milliseconds()), "restore-min-ms")
	b.ReportMetric(float64(rssBoot)/n, "envd-rss-boot-KiB")
	b.ReportMetric(float64(rssAfter)/n, "envd-rss-20cycles-KiB")
}

package vm

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

// WaitHealthy polls GET /health until envd answers 200 or 204. Each
// attempt is short and on a new connection: slirp accepts the host side
// at once and a connection made before the guest's eth0 is up hangs on
// slirp's retransmit schedule instead of failing. It returns how long it
// waited.
func (v *VM) WaitHealthy(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Timeout: time.Second, Transport: tr}
	for {
		resp, err := hc.Get("http://" + v.Addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent {
				return time.Since(start), nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("envd not healthy after %s (last: %v)\n%s", timeout, err, v.Logs())
		}
		if !v.pause(10 * time.Millisecond) {
			return 0, fmt.Errorf("qemu exited before envd was healthy: %v\n%s", v.waitErr, v.Logs())
		}
	}
}

// Post sends an empty POST to path on a new connection and returns the
// status (a host's /snapshot/prepare or /init).
func (v *VM) Post(path string) (int, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	resp, err := hc.Post("http://"+v.Addr+path, "application/json", nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// SnapshotStats describes one snapshot.
type SnapshotStats struct {
	Took  time.Duration // stop until the state is written
	Bytes int64         // snapshot file size
}

// Snapshot pauses the guest, writes its whole state (RAM and devices) to
// path through an fd handed over QMP, and quits qemu, as a Firecracker
// pause + snapshot + teardown does. Restore it with Machine.Restore.
func (v *VM) Snapshot(path string) (SnapshotStats, error) {
	var st SnapshotStats
	start := time.Now()
	if _, err := v.qmp.Execute("stop", nil); err != nil {
		return st, err
	}
	// Migration is throttled by default; a local file needs no limit.
	if _, err := v.qmp.Execute("migrate-set-parameters", map[string]any{"max-bandwidth": int64(1) << 36}); err != nil {
		return st, err
	}
	f, err := os.Create(path)
	if err != nil {
		return st, err
	}
	_, err = v.qmp.Execute("getfd", map[string]any{"fdname": "snapshot"}, int(f.Fd()))
	f.Close() // qemu has its own copy now
	if err != nil {
		return st, err
	}
	if _, err := v.qmp.Execute("migrate", map[string]any{"uri": "fd:snapshot"}); err != nil {
		return st, err
	}
	for {
		status, desc, err := v.qmp.migrateStatus()
		if err != nil {
			return st, err
		}
		if status == "completed" {
			break
		}
		if status == "failed" || status == "cancelled" {
			return st, fmt.Errorf("snapshot %s: %s", status, desc)
		}
		if !v.pause(2 * time.Millisecond) {
			return st, fmt.Errorf("qemu exited during the snapshot: %v\n%s", v.waitErr, v.Logs())
		}
	}
	st.Took = time.Since(start)
	if fi, err := os.Stat(path); err == nil {
		st.Bytes = fi.Size()
	}
	_, _ = v.qmp.Execute("quit", nil) // the reply may race the exit
	select {
	case <-v.exited:
	case <-time.After(30 * time.Second):
		v.Kill()
		return st, fmt.Errorf("qemu did not quit after the snapshot")
	}
	v.Kill() // closes QMP
	return st, nil
}

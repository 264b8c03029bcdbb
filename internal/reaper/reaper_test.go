package reaper

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func startSh(t *testing.T, r *Reaper, script string, stdout *os.File) *Child {
	t.Helper()
	files := []uintptr{0, 1, 2}
	if stdout != nil {
		files[1] = stdout.Fd()
	}
	c, err := r.Start(func() (int, error) {
		return syscall.ForkExec("/bin/sh", []string{"sh", "-c", script},
			&syscall.ProcAttr{Files: files, Sys: &syscall.SysProcAttr{Setpgid: true}})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Kill(-c.Pid, unix.SIGKILL) })
	return c
}

func wait(t *testing.T, c *Child) unix.WaitStatus {
	t.Helper()
	select {
	case <-c.Done():
		return c.Status()
	case <-time.After(10 * time.Second):
		t.Fatalf("child %d not reaped", c.Pid)
		return 0
	}
}

func newReaper(t *testing.T, orphans bool) *Reaper {
	r, err := New(Options{ReapOrphans: orphans})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestExitStatusBothModes(t *testing.T) {
	for _, orphans := range []bool{false, true} {
		r := newReaper(t, orphans)
		if ws := wait(t, startSh(t, r, "exit 3", nil)); !ws.Exited() || ws.ExitStatus() != 3 {
			t.Fatalf("orphans=%v: status %v", orphans, ws)
		}
		c := startSh(t, r, "exec sleep 1000", nil)
		if err := r.Signal(c, unix.SIGKILL, true); err != nil {
			t.Fatal(err)
		}
		if ws := wait(t, c); !ws.Signaled() || ws.Signal() != unix.SIGKILL {
			t.Fatalf("orphans=%v: status %v", orphans, ws)
		}
		// After the reap, Signal is a no-op (the pid may be reused).
		if err := r.Signal(c, unix.SIGKILL, true); err != nil {
			t.Fatalf("signal after reap: %v", err)
		}
		if r.Live() != 0 {
			t.Fatalf("orphans=%v: %d children still registered", orphans, r.Live())
		}
		r.Close()
	}
}

// A child that exits before Start registered it must still be reported:
// the lock held across fork and registration makes sure of it.
func TestChildExitingBeforeRegistrationIsNotLost(t *testing.T) {
	for _, orphans := range []bool{false, true} {
		r := newReaper(t, orphans)
		c, err := r.Start(func() (int, error) {
			pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
			if err == nil {
				waitZombie(t, pid)
			}
			return pid, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if ws := wait(t, c); !ws.Exited() || ws.ExitStatus() != 0 {
			t.Fatalf("orphans=%v: status %v", orphans, ws)
		}
		r.Close()
	}
}

// waitZombie waits on a pidfd until pid has exited (not reaped).
func waitZombie(t *testing.T, pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10000); err != nil {
		t.Fatal(err)
	}
}

// Orphan mode: reparented grandchildren are reaped and never registered,
// so the table stays bounded and no zombie is left behind.
func TestOrphansAreReapedAndNotKept(t *testing.T) {
	r := newReaper(t, true)
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	c := startSh(t, r, "for i in 1 2 3 4 5 6 7 8; do sleep 0.2 & echo $!; done", wr)
	wr.Close()
	var pids []int
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		pid, _ := strconv.Atoi(sc.Text())
		pids = append(pids, pid)
	}
	wait(t, c)
	if len(pids) != 8 {
		t.Fatalf("got %d orphan pids", len(pids))
	}
	for _, pid := range pids {
		waitReaped(t, pid)
	}
	if r.Live() != 0 {
		t.Fatalf("%d entries kept", r.Live())
	}
}

// waitReaped waits until pid no longer exists at all (not even a zombie).
// The orphan's exit is observable on a pidfd; its reap by the loop is not,
// so after the exit this polls /proc briefly.
func waitReaped(t *testing.T, pid int) {
	t.Helper()
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10000)
		unix.Close(fd)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if !strings.Contains(string(b), ") Z ") || time.Now().After(deadline) {
			t.Fatalf("orphan %d not reaped: %s", pid, b)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestStartAfterCloseFails(t *testing.T) {
	r := newReaper(t, false)
	r.Close()
	if _, err := r.Start(func() (int, error) { t.Fatal("fork called"); return 0, nil }); err != ErrClosed {
		t.Fatalf("got %v", err)
	}
}

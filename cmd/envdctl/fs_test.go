package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sandboxd/envd/internal/testenv"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFileCommands(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	dir := t.TempDir()
	write(t, dir+"/a.txt", "alpha\n")
	write(t, dir+"/sub/b.txt", "beta\n")
	if err := os.Symlink("a.txt", dir+"/link"); err != nil {
		t.Fatal(err)
	}

	if r := ctl(t, e, "", "ls", dir).ok(t); r.stdout != "a.txt\nlink -> "+dir+"/a.txt\nsub/\n" {
		t.Fatalf("ls:\n%s", r.stdout)
	}
	r := ctl(t, e, "", "ls", "-l", "--depth", "2", dir).ok(t)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "-rw-r--r-- root root 6 ") || !strings.HasSuffix(lines[0], " a.txt") ||
		!strings.HasPrefix(lines[2], "drwxr-xr-x") || !strings.HasSuffix(lines[3], " sub/b.txt") {
		t.Fatalf("ls -l --depth 2:\n%s", r.stdout)
	}
	ctl(t, e, "", "ls", dir+"/missing").fails(t, 1, "not_found")

	r = ctl(t, e, "", "stat", dir+"/a.txt", dir+"/link").ok(t)
	for _, want := range []string{"Path:     " + dir + "/a.txt\n", "Type:     file\n", "Size:     6\n",
		"Mode:     -rw-r--r-- (0644)\n", "Owner:    root:root\n", "Target:   " + dir + "/a.txt\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("stat lacks %q:\n%s", want, r.stdout)
		}
	}
	ctl(t, e, "", "stat").fails(t, 2, "missing PATH")

	ctl(t, e, "", "mkdir", dir+"/x/y", dir+"/z").ok(t)
	if fi, err := os.Stat(dir + "/x/y"); err != nil || !fi.IsDir() {
		t.Fatalf("mkdir: %v", err)
	}
	ctl(t, e, "", "mkdir", dir+"/z").fails(t, 1, "already_exists")
	ctl(t, e, "", "mkdir", "-p", dir+"/z").ok(t)

	ctl(t, e, "", "mv", dir+"/a.txt", dir+"/x/y/moved.txt").ok(t)
	if read(t, dir+"/x/y/moved.txt") != "alpha\n" {
		t.Fatal("mv lost content")
	}
	ctl(t, e, "", "mv", dir+"/gone", dir+"/x").fails(t, 1, "not_found")
	ctl(t, e, "", "mv", dir).fails(t, 2, "want SRC and DST")

	if r := ctl(t, e, "", "cat", dir+"/x/y/moved.txt", dir+"/sub/b.txt").ok(t); r.stdout != "alpha\nbeta\n" {
		t.Fatalf("cat: %q", r.stdout)
	}
	ctl(t, e, "", "cat", dir+"/nope").fails(t, 1, "does not exist")

	ctl(t, e, "", "rm", dir+"/x", dir+"/sub/b.txt", dir+"/never-was").ok(t)
	if _, err := os.Stat(dir + "/x"); !os.IsNotExist(err) {
		t.Fatal("rm left the tree")
	}
	if _, err := os.Stat(dir + "/sub/b.txt"); !os.IsNotExist(err) {
		t.Fatal("rm left the file")
	}
}

func TestCp(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	local, remote := t.TempDir(), t.TempDir()
	write(t, local+"/tree/a.txt", "alpha\n")
	write(t, local+"/tree/deep/er/b.txt", "beta\n")
	write(t, local+"/tree/empty", "")
	if err := os.Mkdir(local+"/tree/emptydir", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", local+"/tree/link"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(local+"/tree/fifo", 0o644); err != nil {
		t.Fatal(err)
	}

	// A file to a new name, and into an existing directory.
	ctl(t, e, "", "cp", local+"/tree/a.txt", ":"+remote+"/new/name.txt").ok(t)
	ctl(t, e, "", "cp", local+"/tree/a.txt", ":"+remote).ok(t)
	if read(t, remote+"/new/name.txt") != "alpha\n" || read(t, remote+"/a.txt") != "alpha\n" {
		t.Fatal("file upload")
	}
	// A directory, recursively, into an existing directory; special files
	// are skipped with a warning, links to files copied as files.
	r := ctl(t, e, "", "cp", local+"/tree", ":"+remote).ok(t)
	if !strings.Contains(r.stderr, "skipping "+local+"/tree/fifo") {
		t.Fatalf("no warning for the fifo: %q", r.stderr)
	}
	if read(t, remote+"/tree/deep/er/b.txt") != "beta\n" || read(t, remote+"/tree/link") != "alpha\n" ||
		read(t, remote+"/tree/empty") != "" {
		t.Fatal("tree upload")
	}
	if fi, err := os.Stat(remote + "/tree/emptydir"); err != nil || !fi.IsDir() {
		t.Fatalf("empty dir not uploaded: %v", err)
	}
	// And back: the remote tree into a new local directory, then into an
	// existing one.
	ctl(t, e, "", "cp", ":"+remote+"/tree", local+"/back").ok(t)
	ctl(t, e, "", "cp", ":"+remote+"/tree", local+"/back").ok(t)
	for _, p := range []string{"back/deep/er/b.txt", "back/tree/deep/er/b.txt"} {
		if read(t, local+"/"+p) != "beta\n" {
			t.Fatalf("%s", p)
		}
	}
	if fi, err := os.Stat(local + "/back/emptydir"); err != nil || !fi.IsDir() {
		t.Fatalf("empty dir not downloaded: %v", err)
	}
	ctl(t, e, "", "cp", ":"+remote+"/tree/a.txt", local+"/one.txt").ok(t)
	if read(t, local+"/one.txt") != "alpha\n" {
		t.Fatal("file download")
	}
	// stdin and stdout.
	ctl(t, e, "from stdin", "cp", "-", ":"+remote+"/stdin.txt").ok(t)
	if r := ctl(t, e, "", "cp", ":"+remote+"/stdin.txt", "-").ok(t); r.stdout != "from stdin" {
		t.Fatalf("to stdout: %q", r.stdout)
	}
	ctl(t, e, "", "cp", local+"/a", local+"/b").fails(t, 2, "leading ':'")
	ctl(t, e, "", "cp", ":/a", ":/b").fails(t, 2, "both paths are remote")
	ctl(t, e, "", "cp", ":"+remote+"/missing", local).fails(t, 1, "not_found")
	ctl(t, e, "", "cp", local+"/missing", ":"+remote).fails(t, 1, "no such file")
}

func TestWatchCommand(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	dir := t.TempDir()
	cmd := exec.Command(binary(t, raceEnabled), "watch", "-r", dir)
	cmd.Env = append(cleanEnv(), "ENVD_ADDR="+e.Addr)
	out, errw := &testenv.LogBuffer{}, &testenv.LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, errw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	errw.WaitFor(t, "watching "+dir, 0)
	write(t, dir+"/sub/f.txt", "x")
	out.WaitFor(t, "CREATE sub\n", 0)
	out.WaitFor(t, "CREATE sub/f.txt\n", 0)
	if err := os.Remove(dir + "/sub/f.txt"); err != nil {
		t.Fatal(err)
	}
	out.WaitFor(t, "REMOVE sub/f.txt\n", 0)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch after Ctrl-C: %v (%s)", err, errw.String())
	}
	ctl(t, e, "", "watch", dir+"/missing").fails(t, 1, "not_found")
}

package cgroups

import (
	"bufio"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sandboxd/envd/internal/fsutil"
)

// Memory protection for envd's own group, as E2B's unit sets it
// (MemoryMin=50M, MemoryLow=100M; BEHAVIOR.md 1.2).
const (
	selfMemoryMin = 50 << 20
	selfMemoryLow = 100 << 20
)

// protectOOM makes envd the OOM killer's last choice. Children inherit
// the score until their start prelude writes 100 (3.9, E11).
func protectOOM(log *slog.Logger) {
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0); err != nil {
		log.Warn("cannot set envd's oom_score_adj", "err", err)
	}
}

// locateSelf finds envd's own cgroup from /proc/self/cgroup and the
// cgroup2 mount that holds root, and records it with its ancestors: the
// chain a freeze must never touch (freezing any of them freezes envd).
func (m *Manager) locateSelf(root string) {
	mnt, err := cgroup2Mount("/proc/self/mountinfo", root)
	if err != nil {
		m.log.Warn("cannot locate the cgroup2 mount; hierarchy freeze falls back to legacy", "err", err)
		return
	}
	rel, err := selfCgroup("/proc/self/cgroup")
	if err != nil {
		m.log.Warn("cannot read envd's own cgroup; hierarchy freeze falls back to legacy", "err", err)
		return
	}
	for p := filepath.Join(mnt, rel); ; p = filepath.Dir(p) {
		m.chain[p] = true
		if p == mnt || p == "/" {
			break
		}
	}
	m.self = filepath.Join(mnt, rel)
	m.known = true
}

// selfCgroup returns the cgroup2 ("0::") path of the calling process.
func selfCgroup(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Clean("/" + p), nil
		}
	}
	return "", errors.New("no cgroup2 (0::) line in " + file)
}

// cgroup2Mount returns the cgroup2 mount point that contains root.
func cgroup2Mount(mountinfo, root string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", err
	}
	defer f.Close()
	best := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		mp := fsutil.UnescapeMountinfo(fields[4])
		if (root == mp || strings.HasPrefix(root, mp+"/") || mp == "/") && len(mp) > len(best) {
			best = mp
		}
	}
	if best == "" {
		return "", errors.New("no cgroup2 mount holds " + root)
	}
	return best, sc.Err()
}

// protectMemory sets memory.min and memory.low on envd's own group where
// they are still 0, without moving envd: a host that configured them (E2B's
// unit does) keeps its values. The root cgroup has no such files, and
// without the memory controller there is nothing to set: both are logged.
func (m *Manager) protectMemory() {
	if !m.known {
		return
	}
	for _, p := range []prop{{"memory.min", strconv.Itoa(selfMemoryMin)}, {"memory.low", strconv.Itoa(selfMemoryLow)}} {
		file := filepath.Join(m.self, p.name)
		cur, err := os.ReadFile(file)
		if err != nil {
			m.log.Info("envd memory protection skipped", "property", p.name, "group", m.self, "err", err)
			continue
		}
		if strings.TrimSpace(string(cur)) != "0" {
			continue
		}
		if err := os.WriteFile(file, []byte(p.value), 0); err != nil {
			m.log.Info("envd memory protection skipped", "property", p.name, "group", m.self, "err", err)
		}
	}
}

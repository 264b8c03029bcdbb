package lifecycle

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// maxHostsFile bounds how much of /etc/hosts is read.
const maxHostsFile = 1 << 20

// hostsWriter maps the events host name to the hyperloop address in
// /etc/hosts, asynchronously and serialised by one goroutine: concurrent
// rewrites once corrupted the file (BEHAVIOR.md 11.3 E21). Requests
// coalesce: only the newest address is written.
type hostsWriter struct {
	path, host string
	log        *slog.Logger
	want       chan string // one slot; set replaces a pending address
}

func (h *hostsWriter) set(ip string) {
	for {
		select {
		case h.want <- ip:
			return
		default:
		}
		select {
		case <-h.want: // drop the older pending address
		default:
		}
	}
}

func (h *hostsWriter) run(ctx context.Context, done func(ip string)) {
	for {
		select {
		case <-ctx.Done():
			return
		case ip := <-h.want:
			if err := h.write(ip); err != nil {
				h.log.Warn("cannot write hyperloop hosts entry", "path", h.path, "err", err)
				continue
			}
			done(ip)
		}
	}
}

// write replaces every entry for the events host with "ip host". It is a
// no-op when that is already the only entry.
func (h *hostsWriter) write(ip string) error {
	old, err := readBounded(h.path, maxHostsFile)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	want := ip + "\t" + h.host
	var b strings.Builder
	found, others := false, false
	for _, line := range strings.SplitAfter(string(old), "\n") {
		if line == "" {
			continue
		}
		fields := strings.Fields(strings.SplitN(line, "#", 2)[0])
		if len(fields) >= 2 && containsName(fields[1:], h.host) {
			if len(fields) == 2 && fields[0] == ip && !found {
				found = true
			} else {
				others = true
			}
			continue
		}
		b.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
	if found && !others {
		return nil
	}
	b.WriteString(want + "\n")
	return replaceFile(h.path, []byte(b.String()), 0o644)
}

func containsName(names []string, host string) bool {
	for _, n := range names {
		if strings.EqualFold(n, host) {
			return true
		}
	}
	return false
}

// readBounded reads a whole file, refusing one larger than limit.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// replaceFile writes data to path atomically (temp file + rename). Where
// rename cannot replace the file (a bind-mounted /etc/hosts answers EBUSY)
// it rewrites the file in place.
func replaceFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err == nil {
		name := tmp.Name()
		_, werr := tmp.Write(data)
		if werr == nil {
			werr = tmp.Chmod(mode)
		}
		if cerr := tmp.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil {
			if werr = os.Rename(name, path); werr == nil {
				return nil
			}
		}
		_ = os.Remove(name)
	}
	return os.WriteFile(path, data, mode)
}

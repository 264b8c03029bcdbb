package filesystem

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/safe"
)

// ListDir lists path to depth levels (0 means 1) in lexical pre-order,
// without following symlinks below path. Paths are re-based on the
// requested path (E33); entries that vanish mid-walk are skipped (E32).
func (s *Service) ListDir(path string, depth int) ([]EntryInfo, error) {
	if depth <= 0 {
		depth = 1
	}
	if err := checkDir(path); err != nil {
		return nil, err
	}
	l := lister{s: s, cache: newNameCache(s.names)}
	// O_DIRECTORY without O_NOFOLLOW: a symlinked root is listed.
	fd, err := openDir(unix.AT_FDCWD, path, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, errs.New(errs.NotFound, "path not found: %s", path)
		}
		return nil, internalf("error reading directory %s: %v", path, err)
	}
	if err := l.walk(fd, filepath.Clean(path), depth); err != nil {
		return nil, err
	}
	return l.out, nil
}

// lister is one ListDir walk.
type lister struct {
	s     *Service
	cache *nameCache // for directories statted on the calling goroutine
	out   []EntryInfo
}

const (
	// readBatch bounds one getdents pass so a huge directory is read in
	// slices and the entry cap stops it early.
	readBatch = 1024
	// Directories with at least parallelMin entries are statted by up to
	// maxStatWorkers goroutines: lstat and listxattr dominate a listing.
	parallelMin    = 512
	maxStatWorkers = 4
)

// walk lists the directory open at fd (which it closes) as dir.
func (l *lister) walk(fd int, dir string, depth int) error {
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	var names []string
	for {
		batch, err := f.Readdirnames(readBatch)
		names = append(names, batch...)
		if len(l.out)+len(names) > l.s.maxList {
			return errs.New(errs.Invalid, "listing %s exceeds %d entries: use a smaller depth or a deeper path", dir, l.s.maxList)
		}
		if err == io.EOF || (err == nil && len(batch) == 0) {
			break
		}
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil // the directory itself vanished (E32)
			}
			return internalf("error reading directory %s: %v", dir, err)
		}
	}
	slices.Sort(names)
	res, err := l.statAll(fd, dir, names)
	if err != nil {
		return err
	}
	l.out = slices.Grow(l.out, len(res))
	for i := range res {
		r := &res[i]
		if !r.ok {
			continue // vanished during the walk (E32)
		}
		l.out = append(l.out, r.entry)
		if depth <= 1 || !r.dir {
			continue
		}
		sub, err := openDir(fd, names[i], unix.O_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			continue // vanished or replaced during the walk
		}
		if err != nil {
			return internalf("error reading directory %s: %v", r.entry.Path, err)
		}
		if err := l.walk(sub, r.entry.Path, depth-1); err != nil {
			return err
		}
	}
	return nil
}

// statResult is one name's entry; ok is false when it vanished.
type statResult struct {
	entry EntryInfo
	ok    bool
	dir   bool
	err   error
}

// statAll builds the entries of names in dir (open at fd), in order.
func (l *lister) statAll(fd int, dir string, names []string) ([]statResult, error) {
	res := make([]statResult, len(names))
	workers := min(runtime.GOMAXPROCS(0), maxStatWorkers)
	if len(names) < parallelMin || workers < 2 {
		statRange(fd, dir, names, res, l.cache)
	} else {
		chunk := (len(names) + workers - 1) / workers
		finished := make([]bool, workers)
		var wg sync.WaitGroup
		for w := range workers {
			lo, hi := w*chunk, min((w+1)*chunk, len(names))
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer safe.Recover(l.s.log, "filesystem list worker")
				statRange(fd, dir, names[lo:hi], res[lo:hi], newNameCache(l.s.names))
				finished[w] = true
			}()
		}
		wg.Wait()
		for _, ok := range finished {
			if !ok {
				return nil, internalf("error reading directory %s: worker failed", dir)
			}
		}
	}
	for i := range res {
		if res[i].err != nil {
			return nil, res[i].err
		}
	}
	return res, nil
}

func statRange(fd int, dir string, names []string, res []statResult, cache *nameCache) {
	for i, name := range names {
		var st unix.Stat_t
		err := ignoringEINTR(func() error { return unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			res[i].err = internalf("error reading %s: %v", filepath.Join(dir, name), err)
			return
		}
		p := dir + "/" + name
		if dir == "/" {
			p = "/" + name
		}
		res[i] = statResult{entry: makeEntry(p, name, &st, cache), ok: true, dir: st.Mode&unix.S_IFMT == unix.S_IFDIR}
	}
}

func openDir(dirfd int, name string, flags int) (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|flags, 0)
		return err
	})
	return fd, err
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/sandboxd/envd/client"
)

func cpCommand() *command {
	return &command{name: "cp", args: "[-q] SRC DST", short: "copy files and directories to or from the sandbox",
		long: `Copies between this machine and the sandbox; exactly one side is remote,
marked by a leading ':' (':' alone is the user's home):

  envdctl cp ./a.txt :/tmp/a.txt     upload
  envdctl cp :/tmp/a.txt ./b.txt     download
  envdctl cp ./dir :/tmp             upload dir as /tmp/dir, recursively
  envdctl cp - :/tmp/in.txt          upload stdin;  cp :/tmp/x -  prints it

A destination that is an existing directory receives SRC under its own
name. Directories are copied recursively; symlinks to files are copied as
files, other special files are skipped with a warning. Files are streamed,
never held in memory. On a terminal, large files show a progress bar
unless -q is given.`, setup: setupCp}
}

func setupCp(fs *flag.FlagSet) runFunc {
	quiet := fs.Bool("q", false, "no progress bar")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) != 2 {
			return usagef("want SRC and DST")
		}
		cp := &copier{a: a, progress: !*quiet && term.IsTerminal(int(a.stderr.Fd()))}
		src, dst := args[0], args[1]
		srcRemote, dstRemote := strings.HasPrefix(src, ":"), strings.HasPrefix(dst, ":")
		switch {
		case srcRemote && dstRemote:
			return usagef("both paths are remote; one must be local")
		case !srcRemote && !dstRemote:
			return usagef("mark the remote path with a leading ':'")
		case dstRemote:
			return cp.upload(ctx, src, dst[1:], strings.HasSuffix(dst, "/"))
		}
		return cp.download(ctx, src[1:], dst)
	}
}

// copier copies files one after the other, each as one stream.
type copier struct {
	a        *app
	progress bool
}

func (c *copier) warn(format string, args ...any) {
	fmt.Fprintf(c.a.stderr, "envdctl cp: "+format+"\n", args...)
}

// upload copies local to remote. remote names the target, or the
// directory to put it in when it exists as one (or ends in '/').
func (c *copier) upload(ctx context.Context, local, remote string, intoDir bool) error {
	if local == "-" {
		_, err := c.a.c.Write(ctx, remote, c.a.stdin)
		return err
	}
	fi, err := os.Stat(local)
	if err != nil {
		return err
	}
	if st, err := c.a.c.Stat(ctx, remote); err == nil && st.IsDir() || intoDir {
		remote = path.Join(remote, filepath.Base(local))
	} else if err != nil && !errors.Is(err, client.ErrNotFound) {
		return err
	}
	if !fi.IsDir() {
		return c.uploadFile(ctx, local, remote, fi.Size())
	}
	return filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(local, p)
		target := path.Join(remote, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			if _, err := c.a.c.MakeDir(ctx, target); err != nil && !errors.Is(err, client.ErrAlreadyExists) {
				return err
			}
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return c.uploadFile(ctx, p, target, st.Size())
			}
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return c.uploadFile(ctx, p, target, info.Size())
		}
		c.warn("skipping %s: not a regular file or directory", p)
		return nil
	})
}

func (c *copier) uploadFile(ctx context.Context, local, remote string, size int64) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if bar := c.bar(filepath.Base(local), size); bar != nil {
		defer bar.finish()
		r = &sizedReader{Reader: io.TeeReader(f, bar), left: size}
	}
	_, err = c.a.c.Write(ctx, remote, r)
	return err
}

// sizedReader keeps an upload's Content-Length known through a wrapper.
type sizedReader struct {
	io.Reader
	left int64
}

func (s *sizedReader) Read(p []byte) (int, error) {
	n, err := s.Reader.Read(p)
	s.left -= int64(n)
	return n, err
}

func (s *sizedReader) Len() int { return int(max(s.left, 0)) }

// download copies remote to local; into local when it is a directory.
func (c *copier) download(ctx context.Context, remote, local string) error {
	if local == "-" {
		return c.downloadFile(ctx, remote, nil, 0)
	}
	st, err := c.a.c.Stat(ctx, remote)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(local); err == nil && fi.IsDir() {
		local = filepath.Join(local, st.Name)
	}
	if !st.IsDir() {
		return c.downloadTo(ctx, st, local)
	}
	return c.downloadDir(ctx, st.Path, local)
}

func (c *copier) downloadDir(ctx context.Context, remote, local string) error {
	if err := os.MkdirAll(local, 0o755); err != nil {
		return err
	}
	entries, err := c.a.c.ListDir(ctx, remote, 1)
	if err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		target := filepath.Join(local, e.Name)
		switch {
		case e.IsDir() && e.SymlinkTarget == "": // linked directories could loop
			err = c.downloadDir(ctx, e.Path, target)
		case e.Type == client.TypeFile:
			err = c.downloadTo(ctx, e, target)
		default:
			c.warn("skipping :%s: not a regular file or directory", e.Path)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) downloadTo(ctx context.Context, e *client.EntryInfo, local string) error {
	mode := e.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	f, err := os.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	err = c.downloadFile(ctx, e.Path, f, e.Size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// downloadFile streams remote into f (stdout when f is nil).
func (c *copier) downloadFile(ctx context.Context, remote string, f *os.File, size int64) error {
	r, err := c.a.c.Read(ctx, remote)
	if err != nil {
		return err
	}
	defer r.Close()
	var w io.Writer = c.a.stdout
	if f != nil {
		w = f
		if r.Size >= 0 {
			size = r.Size
		}
		if bar := c.bar(path.Base(remote), size); bar != nil {
			defer bar.finish()
			w = io.MultiWriter(f, bar)
		}
	}
	n, err := io.Copy(w, r)
	if err == nil && r.Size >= 0 && n != r.Size {
		err = fmt.Errorf("download of %s ended after %d of %d bytes", remote, n, r.Size)
	}
	return err
}

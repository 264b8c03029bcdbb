package vm

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
	"syscall"
)

// cpioWriter writes a "newc" cpio archive, the format the kernel unpacks
// as an initramfs. It needs neither root nor cpio(1): device nodes are
// just header fields. Parent directories are emitted before their
// entries because the kernel's unpacker does not create them.
type cpioWriter struct {
	w    *bufio.Writer
	ino  uint32
	dirs map[string]bool // directories (and symlinks) already written
	err  error
}

func newCPIO(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriter(w), ino: 300000, dirs: map[string]bool{"": true, "/": true}}
}

func (c *cpioWriter) header(name string, mode uint32, size int, nlink uint32, rmaj, rmin uint32) {
	if c.err != nil {
		return
	}
	c.ino++
	name = strings.TrimPrefix(name, "/")
	_, c.err = fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rmaj, rmin, len(name)+1, 0)
	if c.err == nil {
		_, c.err = c.w.WriteString(name + "\x00")
	}
	c.pad(110 + len(name) + 1)
}

// pad aligns the stream to 4 bytes after n bytes of a header or body.
func (c *cpioWriter) pad(n int) {
	if c.err == nil && n%4 != 0 {
		_, c.err = c.w.Write(make([]byte, 4-n%4))
	}
}

// parents writes every missing ancestor of p as a 0755 directory.
func (c *cpioWriter) parents(p string) {
	dir := path.Dir(path.Clean("/" + p))
	if c.dirs[dir] {
		return
	}
	c.parents(dir)
	c.Dir(dir, 0o755)
}

// Dir adds a directory.
func (c *cpioWriter) Dir(p string, perm uint32) {
	p = path.Clean("/" + p)
	if c.dirs[p] {
		return
	}
	c.parents(p)
	c.dirs[p] = true
	c.header(p, syscall.S_IFDIR|perm, 0, 2, 0, 0)
}

// File adds a regular file with the given content.
func (c *cpioWriter) File(p string, perm uint32, data []byte) {
	c.parents(p)
	c.header(p, syscall.S_IFREG|perm, len(data), 1, 0, 0)
	if c.err == nil {
		_, c.err = c.w.Write(data)
	}
	c.pad(len(data))
}

// Symlink adds a symbolic link p → target.
func (c *cpioWriter) Symlink(p, target string) {
	p = path.Clean("/" + p)
	c.parents(p)
	c.dirs[p] = true // a name in place: never written again as a directory
	c.header(p, syscall.S_IFLNK|0o777, len(target), 1, 0, 0)
	if c.err == nil {
		_, c.err = c.w.WriteString(target)
	}
	c.pad(len(target))
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(p string, perm, major, minor uint32) {
	c.parents(p)
	c.header(p, syscall.S_IFCHR|perm, 0, 1, major, minor)
}

// Close writes the trailer and flushes.
func (c *cpioWriter) Close() error {
	c.header("TRAILER!!!", 0, 0, 1, 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}

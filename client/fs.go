package client

import (
	"context"
	"io/fs"
	"time"

	"connectrpc.com/connect"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
)

// FileType is the kind of a filesystem entry. For a symlink envd reports
// the type of its target (PROTOCOL.md 3.4) and sets SymlinkTarget.
type FileType int

const (
	TypeOther   FileType = iota // FIFO, socket, device, or a dangling symlink
	TypeFile                    // regular file
	TypeDir                     // directory
	TypeSymlink                 // only from envds that report links as such
)

func (t FileType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	}
	return "other"
}

// EntryInfo describes one filesystem entry in the guest.
type EntryInfo struct {
	Name          string
	Path          string
	Type          FileType
	Size          int64
	Mode          fs.FileMode // permission bits only
	Permissions   string      // "-rw-r--r--", "drwxr-xr-x", "Lrwxrwxrwx"
	Owner, Group  string
	ModTime       time.Time
	SymlinkTarget string            // fully resolved target; "" when not a symlink
	Metadata      map[string]string // user metadata (E2B xattrs)
}

// IsDir reports a directory (or a symlink to one).
func (e *EntryInfo) IsDir() bool { return e.Type == TypeDir }

func entryFrom(e *fspb.EntryInfo) *EntryInfo {
	if e == nil {
		return nil
	}
	out := &EntryInfo{Name: e.GetName(), Path: e.GetPath(), Size: e.GetSize(), Mode: fs.FileMode(e.GetMode()) & fs.ModePerm,
		Permissions: e.GetPermissions(), Owner: e.GetOwner(), Group: e.GetGroup(),
		SymlinkTarget: e.GetSymlinkTarget(), Metadata: e.GetMetadata()}
	switch e.GetType() {
	case fspb.FileType_FILE_TYPE_FILE:
		out.Type = TypeFile
	case fspb.FileType_FILE_TYPE_DIRECTORY:
		out.Type = TypeDir
	case fspb.FileType_FILE_TYPE_SYMLINK:
		out.Type = TypeSymlink
	}
	if mt := e.GetModifiedTime(); mt != nil {
		out.ModTime = mt.AsTime()
	}
	return out
}

// Stat describes path without following a final symlink. Relative paths
// are relative to the user's home; "~" expands to it.
func (c *Client) Stat(ctx context.Context, path string) (*EntryInfo, error) {
	var out *EntryInfo
	err := c.idempotent(ctx, "stat "+path, func(ctx context.Context) error {
		resp, err := c.fs.Stat(ctx, connect.NewRequest(&fspb.StatRequest{Path: path}))
		if err == nil {
			out = entryFrom(resp.Msg.GetEntry())
		}
		return err
	})
	return out, err
}

// ListDir lists a directory (following a symlink to it) down to depth
// levels (0 means 1), directories before their contents, names in lexical
// order. Symlinks inside are not followed.
func (c *Client) ListDir(ctx context.Context, path string, depth int) ([]EntryInfo, error) {
	var out []EntryInfo
	err := c.idempotent(ctx, "list "+path, func(ctx context.Context) error {
		resp, err := c.fs.ListDir(ctx, connect.NewRequest(&fspb.ListDirRequest{Path: path, Depth: uint32(max(depth, 0))}))
		if err != nil {
			return err
		}
		out = make([]EntryInfo, 0, len(resp.Msg.GetEntries()))
		for _, e := range resp.Msg.GetEntries() {
			out = append(out, *entryFrom(e))
		}
		return nil
	})
	return out, err
}

// MakeDir creates path and its missing parents, owned by the user. An
// existing directory gives ErrAlreadyExists. Not retried (a retry would
// report its own first attempt as already existing).
func (c *Client) MakeDir(ctx context.Context, path string) (*EntryInfo, error) {
	var out *EntryInfo
	err := c.once(ctx, "mkdir "+path, func(ctx context.Context) error {
		resp, err := c.fs.MakeDir(ctx, connect.NewRequest(&fspb.MakeDirRequest{Path: path}))
		if err == nil {
			out = entryFrom(resp.Msg.GetEntry())
		}
		return err
	})
	return out, err
}

// Move renames src to dst (rename(2): an existing file is replaced),
// creating dst's missing parents. Not retried.
func (c *Client) Move(ctx context.Context, src, dst string) (*EntryInfo, error) {
	var out *EntryInfo
	err := c.once(ctx, "move "+src, func(ctx context.Context) error {
		resp, err := c.fs.Move(ctx, connect.NewRequest(&fspb.MoveRequest{Source: src, Destination: dst}))
		if err == nil {
			out = entryFrom(resp.Msg.GetEntry())
		}
		return err
	})
	return out, err
}

// Remove deletes a file, a symlink or a directory tree. A missing path is
// not an error.
func (c *Client) Remove(ctx context.Context, path string) error {
	return c.idempotent(ctx, "remove "+path, func(ctx context.Context) error {
		_, err := c.fs.Remove(ctx, connect.NewRequest(&fspb.RemoveRequest{Path: path}))
		return err
	})
}

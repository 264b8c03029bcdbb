package server

import (
	"context"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/sandboxd/envd/internal/rpc"
	"github.com/sandboxd/envd/internal/wirekit"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/filesystem"
	fspb "github.com/sandboxd/envd/internal/gen/filesystem/filesystemwire"
	"github.com/sandboxd/envd/internal/users"
)

// filesystemRPC adapts filesystem.Filesystem RPCs to the filesystem
// subsystem: it resolves the user and paths (PROTOCOL.md 3.0), converts
// plain Go values to wire types and applies the legacy trimming (3.5).
type filesystemRPC struct {
	fspb.UnimplementedFilesystemHandler
	s *Server
}

// resolve returns the request user and p resolved for them.
func (f *filesystemRPC) resolve(ctx context.Context, p string) (string, *users.User, error) {
	u := requestUser(ctx)
	if u == nil {
		return "", nil, errs.New(errs.Unauthenticated, "no user for the request")
	}
	path, err := users.Resolve(p, u, f.s.Defaults.Workdir())
	return path, u, err
}

func owner(u *users.User) filesystem.Owner { return filesystem.Owner{UID: u.UID, GID: u.GID} }

func (f *filesystemRPC) Stat(ctx context.Context, req *rpc.Request[fspb.StatRequest]) (*rpc.Response[fspb.StatResponse], error) {
	p, _, err := f.resolve(ctx, req.Msg.GetPath())
	if err != nil {
		return nil, toConnect(err)
	}
	e, err := f.s.FS.Stat(p)
	if err != nil {
		return nil, toConnect(err)
	}
	legacy := isLegacySDK(req.Header())
	return legacyResponse(rpc.NewResponse(&fspb.StatResponse{Entry: wireEntry(e, legacy)}), legacy), nil
}

func (f *filesystemRPC) ListDir(ctx context.Context, req *rpc.Request[fspb.ListDirRequest]) (*rpc.Response[fspb.ListDirResponse], error) {
	p, _, err := f.resolve(ctx, req.Msg.GetPath())
	if err != nil {
		return nil, toConnect(err)
	}
	entries, err := f.s.FS.ListDir(p, int(min(req.Msg.GetDepth(), 1<<16)))
	if err != nil {
		return nil, toConnect(err)
	}
	legacy := isLegacySDK(req.Header())
	out := make([]*fspb.EntryInfo, len(entries))
	for i := range entries {
		out[i] = wireEntry(entries[i], legacy)
	}
	return legacyResponse(rpc.NewResponse(&fspb.ListDirResponse{Entries: out}), legacy), nil
}

func (f *filesystemRPC) MakeDir(ctx context.Context, req *rpc.Request[fspb.MakeDirRequest]) (*rpc.Response[fspb.MakeDirResponse], error) {
	p, u, err := f.resolve(ctx, req.Msg.GetPath())
	if err != nil {
		return nil, toConnect(err)
	}
	e, err := f.s.FS.MakeDir(p, owner(u))
	if err != nil {
		return nil, toConnect(err)
	}
	legacy := isLegacySDK(req.Header())
	return legacyResponse(rpc.NewResponse(&fspb.MakeDirResponse{Entry: wireEntry(e, legacy)}), legacy), nil
}

func (f *filesystemRPC) Move(ctx context.Context, req *rpc.Request[fspb.MoveRequest]) (*rpc.Response[fspb.MoveResponse], error) {
	src, u, err := f.resolve(ctx, req.Msg.GetSource())
	if err != nil {
		return nil, toConnect(err)
	}
	dst, _, err := f.resolve(ctx, req.Msg.GetDestination())
	if err != nil {
		return nil, toConnect(err)
	}
	e, err := f.s.FS.Move(src, dst, owner(u))
	if err != nil {
		return nil, toConnect(err)
	}
	legacy := isLegacySDK(req.Header())
	return legacyResponse(rpc.NewResponse(&fspb.MoveResponse{Entry: wireEntry(e, legacy)}), legacy), nil
}

func (f *filesystemRPC) Remove(ctx context.Context, req *rpc.Request[fspb.RemoveRequest]) (*rpc.Response[fspb.RemoveResponse], error) {
	p, _, err := f.resolve(ctx, req.Msg.GetPath())
	if err != nil {
		return nil, toConnect(err)
	}
	if err := f.s.FS.Remove(p); err != nil {
		return nil, toConnect(err)
	}
	return legacyResponse(rpc.NewResponse(&fspb.RemoveResponse{}), isLegacySDK(req.Header())), nil
}

func (f *filesystemRPC) watchOptions(ctx context.Context, path string, recursive, entry, network bool) (filesystem.WatchOptions, error) {
	p, _, err := f.resolve(ctx, path)
	return filesystem.WatchOptions{Path: p, Recursive: recursive, IncludeEntry: entry, AllowNetworkMounts: network}, err
}

// WatchDir streams start{}, then events and keepalives until the client
// goes, the deadline passes, the watched directory is removed (clean end)
// or the watcher fails (internal).
func (f *filesystemRPC) WatchDir(ctx context.Context, req *rpc.Request[fspb.WatchDirRequest], stream *rpc.ServerStream[fspb.WatchDirResponse]) error {
	m := req.Msg
	o, err := f.watchOptions(ctx, m.GetPath(), m.GetRecursive(), m.GetIncludeEntry(), m.GetAllowNetworkMounts())
	if err != nil {
		return toConnect(err)
	}
	legacy := isLegacySDK(req.Header())
	if legacy {
		stream.ResponseHeader().Set(legacyHeader, "true")
	}
	w, err := f.s.FS.Watch(o)
	if err != nil {
		return toConnect(err)
	}
	defer w.Close()
	if err := stream.Send(&fspb.WatchDirResponse{Event: &fspb.WatchDirResponse_Start{Start: &fspb.WatchDirResponse_StartEvent{}}}); err != nil {
		return err
	}
	interval := keepaliveInterval(req.Header())
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return toConnect(ctx.Err())
		case <-tick.C:
			if err := stream.Send(&fspb.WatchDirResponse{Event: &fspb.WatchDirResponse_Keepalive{Keepalive: &fspb.WatchDirResponse_KeepAlive{}}}); err != nil {
				return err
			}
		case ev, ok := <-w.Events():
			if !ok {
				return toConnect(w.Err())
			}
			if err := stream.Send(&fspb.WatchDirResponse{Event: &fspb.WatchDirResponse_Filesystem{Filesystem: wireEvent(ev, legacy)}}); err != nil {
				return err
			}
			tick.Reset(interval)
		}
	}
}

func (f *filesystemRPC) CreateWatcher(ctx context.Context, req *rpc.Request[fspb.CreateWatcherRequest]) (*rpc.Response[fspb.CreateWatcherResponse], error) {
	m := req.Msg
	o, err := f.watchOptions(ctx, m.GetPath(), m.GetRecursive(), m.GetIncludeEntry(), m.GetAllowNetworkMounts())
	if err != nil {
		return nil, toConnect(err)
	}
	id, err := f.s.FS.CreateWatcher(o)
	if err != nil {
		return nil, toConnect(err)
	}
	return legacyResponse(rpc.NewResponse(&fspb.CreateWatcherResponse{WatcherId: id}), isLegacySDK(req.Header())), nil
}

func (f *filesystemRPC) GetWatcherEvents(_ context.Context, req *rpc.Request[fspb.GetWatcherEventsRequest]) (*rpc.Response[fspb.GetWatcherEventsResponse], error) {
	events, err := f.s.FS.WatcherEvents(req.Msg.GetWatcherId())
	if err != nil {
		return nil, toConnect(err)
	}
	legacy := isLegacySDK(req.Header())
	out := make([]*fspb.FilesystemEvent, len(events))
	for i, ev := range events {
		out[i] = wireEvent(ev, legacy)
	}
	return legacyResponse(rpc.NewResponse(&fspb.GetWatcherEventsResponse{Events: out}), legacy), nil
}

func (f *filesystemRPC) RemoveWatcher(_ context.Context, req *rpc.Request[fspb.RemoveWatcherRequest]) (*rpc.Response[fspb.RemoveWatcherResponse], error) {
	if err := f.s.FS.RemoveWatcher(req.Msg.GetWatcherId()); err != nil {
		return nil, toConnect(err)
	}
	return legacyResponse(rpc.NewResponse(&fspb.RemoveWatcherResponse{}), isLegacySDK(req.Header())), nil
}

// wireEntry converts an entry; legacy keeps only name, type and path (3.5).
func wireEntry(e filesystem.EntryInfo, legacy bool) *fspb.EntryInfo {
	out := &fspb.EntryInfo{Name: validUTF8(e.Name), Type: fspb.FileType(e.Type), Path: validUTF8(e.Path)}
	if legacy {
		return out
	}
	out.Size = e.Size
	out.Mode = e.Mode
	out.Permissions = e.Permissions
	out.Owner = e.Owner
	out.Group = e.Group
	// Timestamps outside years 1–9999 are not valid proto JSON: omit them
	// rather than fail the whole answer.
	if !e.ModTime.IsZero() && e.ModTime.UTC().Year() >= 1 && e.ModTime.UTC().Year() <= 9999 {
		out.ModifiedTime = wirekit.NewTimestamp(e.ModTime)
	}
	if e.IsSymlink {
		t := validUTF8(e.SymlinkTarget)
		out.SymlinkTarget = &t
	}
	out.Metadata = e.Metadata // the subsystem keeps only valid UTF-8
	return out
}

// wireEvent converts an event; legacy keeps only name and type (3.5).
func wireEvent(ev filesystem.Event, legacy bool) *fspb.FilesystemEvent {
	out := &fspb.FilesystemEvent{Name: validUTF8(ev.Name), Type: fspb.EventType(ev.Type)}
	if ev.Entry != nil && !legacy {
		out.Entry = wireEntry(*ev.Entry, false)
	}
	return out
}

// legacyHeader marks responses trimmed for old Python SDKs (PROTOCOL.md 3.5).
const legacyHeader = "X-E2B-Legacy-SDK"

func isLegacySDK(h http.Header) bool { return h.Get("User-Agent") == "connect-python" }

func legacyResponse[T any](r *rpc.Response[T], legacy bool) *rpc.Response[T] {
	if legacy {
		r.Header().Set(legacyHeader, "true")
	}
	return r
}

// validUTF8 repairs a name for the wire: proto3 strings must be valid
// UTF-8, and one odd file name must not fail a whole listing. Invalid
// bytes become U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string([]rune(s)) // each invalid byte decodes to U+FFFD
}

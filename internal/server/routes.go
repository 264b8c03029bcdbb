package server

import (
	"math"
	"net/http"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem/filesystemwire"
	pb "github.com/sandboxd/envd/internal/gen/process/processwire"
	"github.com/sandboxd/envd/internal/rpc"
)

// route is one entry of the route table. open routes skip the token gate
// (PROTOCOL.md 5.2); /files does its own token-or-signature check.
type route struct {
	method string // "" for an RPC mount (any method; internal/rpc answers 405 itself)
	path   string // exact path, or a prefix ending in "/" for a Connect mount
	open   bool
	h      http.Handler
}

// routes is the one route table. The inventory test pins which entries are
// open without a token; keep it sorted by path.
func (s *Server) routes() []route {
	opts := rpc.WithOptions(rpc.WithRecover(s.recoverRPC), rpc.WithReadMaxBytes(maxRPCMessage))
	// Filesystem answers are gzipped from 1 KiB: clients accept gzip by
	// default, and compressing a 300-byte Stat answer costs more than the
	// rest of the request.
	fsPath, fsH := fspb.NewFilesystemHandler(&filesystemRPC{s: s}, opts, rpc.WithCompressMinBytes(1024))
	// Process output is never gzipped: compressing a stream costs far more
	// CPU than the link saves (requests may still arrive compressed).
	procPath, procH := pb.NewProcessHandler(&processRPC{s: s}, opts, rpc.WithCompressMinBytes(math.MaxInt32))
	reflV1Path, reflV1, reflV1aPath, reflV1a := rpc.NewReflection(
		[]*rpc.FileDesc{pb.File_process_process_proto, fspb.File_filesystem_filesystem_proto}, opts)

	return []route{
		{method: http.MethodPost, path: "/collapse", h: http.HandlerFunc(s.collapse)},
		{method: http.MethodGet, path: "/envs", h: http.HandlerFunc(s.envs)},
		// /files checks the token or a URL signature itself (PROTOCOL.md 5.4).
		{method: http.MethodGet, path: "/files", open: true, h: http.HandlerFunc(s.filesGet)},
		{method: http.MethodPost, path: "/files", open: true, h: http.HandlerFunc(s.filesPost)},
		{method: http.MethodPost, path: "/files/compose", h: http.HandlerFunc(s.filesCompose)},
		{path: fsPath, h: fsH},
		{method: http.MethodPost, path: "/freeze", h: http.HandlerFunc(s.freeze)},
		{method: http.MethodPost, path: "/fsfreeze", h: http.HandlerFunc(s.fsFreeze)},
		{method: http.MethodPost, path: "/fsthaw", h: http.HandlerFunc(s.fsThaw)},
		{path: reflV1Path, h: reflV1},
		{path: reflV1aPath, h: reflV1a},
		{method: http.MethodGet, path: "/health", open: true, h: http.HandlerFunc(s.health)},
		// /init authorises itself with the token rules of PROTOCOL.md 5.3.
		{method: http.MethodPost, path: "/init", open: true, h: http.HandlerFunc(s.initHandler)},
		{method: http.MethodGet, path: "/metrics", h: http.HandlerFunc(s.metrics)},
		{path: procPath, h: procH},
		{method: http.MethodPost, path: "/snapshot/prepare", open: true, h: http.HandlerFunc(s.snapshotPrepare)},
		{method: http.MethodPost, path: "/unfreeze", h: http.HandlerFunc(s.unfreeze)},
	}
}

// maxRPCMessage bounds one RPC message (SendInput payloads are the largest).
const maxRPCMessage = 32 << 20

package server

import (
	"net/http"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"

	"github.com/sandboxd/envd/internal/gen/filesystem/filesystemconnect"
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
)

// route is one entry of the route table. open routes skip the token gate
// (PROTOCOL.md 5.2); /files does its own token-or-signature check.
type route struct {
	method string // "" for a Connect mount (any method; connect-go answers 405 itself)
	path   string // exact path, or a prefix ending in "/" for a Connect mount
	open   bool
	h      http.Handler
}

// routes is the one route table. The inventory test pins which entries are
// open without a token; keep it sorted by path.
func (s *Server) routes() []route {
	opts := connect.WithHandlerOptions(
		connect.WithRecover(s.recoverRPC),
		connect.WithReadMaxBytes(maxRPCMessage),
	)
	fsPath, fsH := filesystemconnect.NewFilesystemHandler(&filesystemRPC{s: s}, opts)
	procPath, procH := processconnect.NewProcessHandler(&processRPC{s: s}, opts)
	reflector := grpcreflect.NewStaticReflector(processconnect.ProcessName, filesystemconnect.FilesystemName)
	reflV1Path, reflV1 := grpcreflect.NewHandlerV1(reflector, opts)
	reflV1aPath, reflV1a := grpcreflect.NewHandlerV1Alpha(reflector, opts)

	return []route{
		{path: fsPath, h: fsH},
		{path: reflV1Path, h: reflV1},
		{path: reflV1aPath, h: reflV1a},
		{method: http.MethodGet, path: "/envs", h: http.HandlerFunc(s.envs)},
		{method: http.MethodGet, path: "/health", open: true, h: http.HandlerFunc(s.health)},
		{method: http.MethodGet, path: "/metrics", h: http.HandlerFunc(s.metrics)},
		{path: procPath, h: procH},
	}
}

// maxRPCMessage bounds one RPC message (SendInput payloads are the largest).
const maxRPCMessage = 32 << 20

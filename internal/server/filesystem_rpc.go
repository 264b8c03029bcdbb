package server

import (
	"github.com/sandboxd/envd/internal/gen/filesystem/filesystemconnect"
)

// filesystemRPC adapts filesystem.Filesystem RPCs to the filesystem subsystem.
type filesystemRPC struct {
	filesystemconnect.UnimplementedFilesystemHandler
	s *Server
}

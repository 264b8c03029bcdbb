package server

import (
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
)

// processRPC adapts process.Process RPCs to the process subsystem.
type processRPC struct {
	processconnect.UnimplementedProcessHandler
	s *Server
}

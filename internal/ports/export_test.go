package ports

// Test helpers for the external test package (the binary tests import
// testenv, which imports this package).

const FwdAddr = fwdAddr

var (
	NeedNetns   = needNetns
	Serve       = serve
	Echo        = echo
	DialWithin  = dialWithin
	FdCount     = fdCount
	AwaitSettle = awaitSettle
	SendPattern = sendPattern
)

func (s *server) Port() int   { return s.port }
func (s *server) Fwd() string { return s.fwd() }

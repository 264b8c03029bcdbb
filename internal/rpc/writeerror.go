package rpc

import "net/http"

// WriteError answers r with err in the form its protocol expects, for
// middleware that refuses a call before any procedure runs: a Connect
// unary JSON error (also for requests that are not RPCs), a Connect
// end-of-stream message, or gRPC status trailers.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	ct := r.Header.Get("Content-Type")
	p, cd := classify(ct)
	if p == protoNone {
		p = protoConnectUnary
	}
	c := &conn{w: w, rc: http.NewResponseController(w), r: r, proto: p, codec: cd, contentType: ct, cfg: &config{}, pools: &pools{}}
	c.finish(err)
}

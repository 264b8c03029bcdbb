package rpc

import (
	"context"
	"net/http"
	"strings"
)

// Option configures handlers.
type Option func(*config)

type config struct {
	recover     func(ctx context.Context, procedure string, h http.Header, panicValue any) error
	readMax     int
	compressMin int
}

// DefaultReadMax bounds one request message when WithReadMaxBytes is not
// given: no read is unbounded.
const DefaultReadMax = 4 << 20

// WithRecover turns a handler panic into the error fn returns (and lets fn
// report it). Without it a panic is an internal error.
func WithRecover(fn func(ctx context.Context, procedure string, h http.Header, panicValue any) error) Option {
	return func(c *config) { c.recover = fn }
}

// WithReadMaxBytes bounds one request message, after decompression.
func WithReadMaxBytes(n int) Option { return func(c *config) { c.readMax = n } }

// WithCompressMinBytes leaves answers smaller than n uncompressed.
func WithCompressMinBytes(n int) Option { return func(c *config) { c.compressMin = n } }

// WithOptions bundles options.
func WithOptions(opts ...Option) Option {
	return func(c *config) {
		for _, o := range opts {
			o(c)
		}
	}
}

type streamKind uint8

const (
	kindUnary streamKind = iota
	kindServerStream
	kindClientStream
	kindBidi
)

// Handler serves one procedure.
type Handler struct {
	procedure string
	kind      streamKind
	cfg       config
	pools     pools
	call      func(ctx context.Context, c *conn) error
}

func newHandler(procedure string, kind streamKind, opts []Option, call func(context.Context, *conn) error) *Handler {
	h := &Handler{procedure: procedure, kind: kind, call: call, cfg: config{readMax: DefaultReadMax}}
	for _, o := range opts {
		o(&h.cfg)
	}
	if h.cfg.readMax <= 0 {
		h.cfg.readMax = DefaultReadMax
	}
	return h
}

// NewUnaryHandler serves a unary procedure.
func NewUnaryHandler[Req, Res any, PReq reqPtr[Req], PRes resPtr[Res]](procedure string, fn UnaryFunc[Req, Res], opts ...Option) *Handler {
	return newHandler(procedure, kindUnary, opts, func(ctx context.Context, c *conn) error {
		req := new(Req)
		if err := receiveOne(c, PReq(req)); err != nil {
			return err
		}
		res, err := fn(ctx, &Request[Req]{Msg: req, header: c.r.Header, peer: c.r.RemoteAddr, proc: procedure})
		if err != nil {
			return err
		}
		if res == nil || res.Msg == nil {
			return errorf(CodeInternal, "handler returned a nil response")
		}
		return reply(c, PRes(res.Msg), res.header, res.trailer)
	})
}

// NewServerStreamHandler serves a server-streaming procedure.
func NewServerStreamHandler[Req, Res any, PReq reqPtr[Req], PRes resPtr[Res]](procedure string, fn ServerStreamFunc[Req, Res], opts ...Option) *Handler {
	return newHandler(procedure, kindServerStream, opts, func(ctx context.Context, c *conn) error {
		req := new(Req)
		if err := receiveOne(c, PReq(req)); err != nil {
			return err
		}
		s := &ServerStream[Res]{c: c, send: func(m *Res) error { return send(c, PRes(m)) }}
		return fn(ctx, &Request[Req]{Msg: req, header: c.r.Header, peer: c.r.RemoteAddr, proc: procedure}, s)
	})
}

// NewClientStreamHandler serves a client-streaming procedure.
func NewClientStreamHandler[Req, Res any, PReq reqPtr[Req], PRes resPtr[Res]](procedure string, fn ClientStreamFunc[Req, Res], opts ...Option) *Handler {
	return newHandler(procedure, kindClientStream, opts, func(ctx context.Context, c *conn) error {
		s := &ClientStream[Req]{c: c, proc: procedure, recv: func() (*Req, error) {
			m := new(Req)
			return m, receive(c, PReq(m))
		}}
		res, err := fn(ctx, s)
		if err != nil {
			return err
		}
		if res == nil || res.Msg == nil {
			return errorf(CodeInternal, "handler returned a nil response")
		}
		return reply(c, PRes(res.Msg), res.header, res.trailer)
	})
}

// reply sends the one answer of a unary or client-stream call with its
// headers and trailers. It is generic over the pointer type only, so one
// copy serves every procedure (a struct type parameter would stencil one
// per response type: 16 KB).
func reply[P encoder](c *conn, m P, header, trailer http.Header) error {
	mergeHeader(c.w.Header(), header)
	c.trailer = trailer
	if c.proto == protoConnectUnary {
		return sendUnary(c, m)
	}
	return send(c, m)
}

// NewBidiStreamHandler serves a bidirectional procedure (HTTP/2 only).
func NewBidiStreamHandler[Req, Res any, PReq reqPtr[Req], PRes resPtr[Res]](procedure string, fn BidiStreamFunc[Req, Res], opts ...Option) *Handler {
	return newHandler(procedure, kindBidi, opts, func(ctx context.Context, c *conn) error {
		return fn(ctx, &BidiStream[Req, Res]{c: c,
			recv: func() (*Req, error) {
				m := new(Req)
				if err := receive(c, PReq(m)); err != nil {
					return nil, err
				}
				return m, nil
			},
			send: func(m *Res) error { return send(c, PRes(m)) }})
	})
}

// ServeHTTP negotiates the protocol, runs the procedure under the
// request's deadline with panics recovered, and ends the call.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.kind == kindBidi && r.ProtoMajor < 2 {
		// A full-duplex client on HTTP/1.1 would hang: close the connection.
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusHTTPVersionNotSupported)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	ct := r.Header.Get("Content-Type")
	p, cd := classify(ct)
	if !h.accepts(p) {
		w.Header().Set("Accept-Post", acceptPost(h.kind != kindUnary))
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	c := &conn{w: w, rc: http.NewResponseController(w), r: r, proto: p, codec: cd, contentType: ct, cfg: &h.cfg, pools: &h.pools}
	content, accept := p.encodingHeaders()
	switch enc := strings.TrimSpace(r.Header.Get(content)); enc {
	case "", "identity":
	case "gzip":
		c.reqGzip = true
	default:
		c.finish(errorf(CodeUnimplemented, "unknown compression \""+enc+"\": supported encodings are gzip"))
		return
	}
	c.respGzip = acceptsGzip(r.Header.Get(accept))
	ctx := r.Context()
	d, ok, terr := p.timeout(r.Header)
	if terr != nil {
		c.finish(terr)
		return
	}
	if ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if h.kind == kindBidi {
		_ = c.rc.EnableFullDuplex()
	}
	c.finish(h.run(ctx, c))
}

// accepts says whether the procedure can be called in protocol p: gRPC and
// gRPC-Web always; Connect's unary form for unary procedures only, its
// streaming form for the others.
func (h *Handler) accepts(p protocol) bool {
	switch p {
	case protoGRPC, protoGRPCWeb:
		return true
	case protoConnectUnary:
		return h.kind == kindUnary
	case protoConnectStream:
		return h.kind != kindUnary
	}
	return false
}

// run calls the procedure; a panic becomes an error, never a dead daemon.
func (h *Handler) run(ctx context.Context, c *conn) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = errorf(CodeInternal, "internal error")
			if h.cfg.recover != nil {
				err = h.cfg.recover(ctx, h.procedure, c.r.Header, v)
			}
		}
	}()
	return h.call(ctx, c)
}

// FileDesc is a proto file's descriptor for gRPC reflection.
type FileDesc struct {
	Name     string      // "process/process.proto"
	Raw      []byte      // serialized google.protobuf.FileDescriptorProto
	Deps     []*FileDesc // direct dependencies
	Services []string    // full names, "process.Process"
	Symbols  []string    // every full name the file defines
}

// service routes a mounted service's procedures by path.
type service map[string]*Handler

// NewServiceHandler routes a service's procedures by path; an unknown
// procedure under the service prefix is 404, as with connect-go.
func NewServiceHandler(hs ...*Handler) http.Handler {
	s := make(service, len(hs))
	for _, h := range hs {
		s[h.procedure] = h
	}
	return s
}

func (s service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := s[r.URL.Path]; ok {
		h.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

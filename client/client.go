package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/sandboxd/envd/internal/gen/filesystem/filesystemconnect"
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
)

// DefaultAddr is envd's well-known address on the sandbox side.
const DefaultAddr = "localhost:49983"

// Defaults for the options below.
const (
	DefaultTimeout  = 60 * time.Second // each unary call, when ctx has no deadline
	DefaultRetries  = 4                // attempts of an idempotent call
	DefaultBackoff  = 50 * time.Millisecond
	maxBackoff      = 2 * time.Second
	defaultDialWait = 10 * time.Second
)

// Client talks to one envd. It is safe for concurrent use. Close releases
// its idle connections.
type Client struct {
	base    string // http://host:port, no trailing slash
	token   string // X-Access-Token; "" sends none
	user    string // Basic-auth user and /files username; "" means envd's default
	timeout time.Duration
	retries int
	backoff time.Duration
	hc      *http.Client
	own     *http.Transport // the transport New built, nil with WithHTTPClient
	proc    processconnect.ProcessClient
	fs      filesystemconnect.FilesystemClient
}

// Option configures New.
type Option func(*config)

type config struct {
	token, user string
	json, h2c   bool
	timeout     time.Duration
	dialTimeout time.Duration
	retries     int
	backoff     time.Duration
	hc          *http.Client
}

// WithToken sends the access token set by /init (X-Access-Token) on every
// request and signs file URLs with it (PROTOCOL.md 5.2, 5.4).
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithUser runs RPCs as user (Authorization: Basic base64("user:")) and
// passes it as username to /files. Without it envd uses its default user.
func WithUser(user string) Option { return func(c *config) { c.user = user } }

// WithJSON selects the Connect JSON codec instead of binary protobuf.
func WithJSON() Option { return func(c *config) { c.json = true } }

// WithH2C speaks cleartext HTTP/2 with prior knowledge instead of HTTP/1.1.
// Every stream then shares one connection.
func WithH2C() Option { return func(c *config) { c.h2c = true } }

// WithTimeout bounds each unary call whose context has no deadline
// (default DefaultTimeout; 0 means no bound). Streams are never bounded by
// it: a process's lifetime is the deadline of the context given to Start.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithDialTimeout bounds connection set-up (default 10s).
func WithDialTimeout(d time.Duration) Option { return func(c *config) { c.dialTimeout = d } }

// WithRetry sets how often an idempotent call is attempted when the
// connection fails (attempts ≥ 1) and the first back-off, which doubles up
// to 2s. Streams and non-idempotent calls are never retried.
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(c *config) { c.retries, c.backoff = max(attempts, 1), backoff }
}

// WithHTTPClient uses hc instead of a transport of the client's own; the
// H2C and dial options then do not apply.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.hc = hc } }

// New returns a client for the envd at addr: "host:port", or an
// "http://host:port" base URL. An empty addr means DefaultAddr.
func New(addr string, opts ...Option) (*Client, error) {
	cfg := config{timeout: DefaultTimeout, dialTimeout: defaultDialWait, retries: DefaultRetries, backoff: DefaultBackoff}
	for _, o := range opts {
		o(&cfg)
	}
	base, err := baseURL(addr)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, token: cfg.token, user: cfg.user, timeout: cfg.timeout,
		retries: cfg.retries, backoff: cfg.backoff, hc: cfg.hc}
	if c.hc == nil {
		c.own = newTransport(cfg)
		c.hc = &http.Client{Transport: c.own}
	}
	copts := []connect.ClientOption{connect.WithInterceptors(headerInterceptor{c})}
	if cfg.json {
		copts = append(copts, connect.WithProtoJSON())
	}
	c.proc = processconnect.NewProcessClient(c.hc, c.base, copts...)
	c.fs = filesystemconnect.NewFilesystemClient(c.hc, c.base, copts...)
	return c, nil
}

func baseURL(addr string) (string, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("envd client: bad address %q: want host:port or http://host:port", addr)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// newTransport keeps compression off: file bodies are streamed as they are
// and process output is never gzipped by envd anyway.
func newTransport(cfg config) *http.Transport {
	d := &net.Dialer{Timeout: cfg.dialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext:         d.DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	if cfg.h2c {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

// Close releases idle connections. Streams in flight are not affected.
func (c *Client) Close() error {
	if c.own != nil {
		c.own.CloseIdleConnections()
	}
	return nil
}

// BaseURL is the http:// URL the client talks to.
func (c *Client) BaseURL() string { return c.base }

// setAuth puts the token and the user on one request's headers.
func (c *Client) setAuth(h http.Header) {
	if c.token != "" {
		h.Set("X-Access-Token", c.token)
	}
	if c.user != "" {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.user+":")))
	}
}

// headerInterceptor adds the credentials to every RPC.
type headerInterceptor struct{ c *Client }

func (i headerInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		i.c.setAuth(req.Header())
		return next(ctx, req)
	}
}

func (i headerInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		i.c.setAuth(conn.RequestHeader())
		return conn
	}
}

func (i headerInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// unaryCtx applies the client's per-call timeout when ctx has no deadline.
func (c *Client) unaryCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// idempotent runs a unary op, retrying it (see retry); each attempt gets
// its own per-call deadline.
func (c *Client) idempotent(ctx context.Context, name string, op func(context.Context) error) error {
	return c.retry(ctx, name, func() error {
		cctx, cancel := c.unaryCtx(ctx)
		defer cancel()
		return op(cctx)
	})
}

// retry runs op, retrying with exponential back-off while it fails because
// the connection failed (never after envd answered), at most c.retries
// attempts in all.
func (c *Client) retry(ctx context.Context, name string, op func() error) error {
	wait := c.backoff
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		err = wrapErr(name, err)
		if attempt >= c.retries || !connFailure(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return wrapErr(name, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, maxBackoff)
	}
}

// once runs a non-idempotent unary op with the per-call deadline.
func (c *Client) once(ctx context.Context, name string, op func(context.Context) error) error {
	cctx, cancel := c.unaryCtx(ctx)
	defer cancel()
	if err := op(cctx); err != nil {
		return wrapErr(name, err)
	}
	return nil
}

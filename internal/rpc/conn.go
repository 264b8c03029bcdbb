package rpc

import (
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sandboxd/envd/internal/wirekit"
)

// conn is one call: the negotiated protocol and codec, and the response
// state.
type conn struct {
	w           http.ResponseWriter
	rc          *http.ResponseController
	r           *http.Request
	proto       protocol
	codec       codec
	contentType string
	cfg         *config
	pools       *pools // the handler's
	reqGzip     bool   // request messages may be gzip-compressed
	respGzip    bool   // the client accepts gzip answers
	wroteHeader bool
	trailer     http.Header // set by handlers: stream trailers, unary trailers
	in          []byte      // request payload scratch, reused while small
}

// readUnary reads a Connect unary body, inflating it if it is gzipped.
func (c *conn) readUnary() ([]byte, error) {
	max := c.cfg.readMax
	buf, err := io.ReadAll(io.LimitReader(c.r.Body, int64(max)+1))
	if err != nil {
		return nil, readError(err)
	}
	if len(buf) > max {
		return nil, tooLarge(int64(len(buf)), max)
	}
	if c.reqGzip && len(buf) > 0 {
		return c.pools.decompress(nil, buf, max)
	}
	return buf, nil
}

// receive decodes the next request message into m; io.EOF at the end of a
// stream.
func receive[P decoder](c *conn, m P) error {
	payload, err := c.nextPayload()
	if err != nil {
		return err
	}
	return decode(c.codec, payload, m)
}

// nextPayload reads the next enveloped request message, inflated.
func (c *conn) nextPayload() ([]byte, error) {
	if c.proto == protoConnectUnary {
		return nil, errors.New("rpc: receive on a unary Connect call")
	}
	flags, payload, err := readEnvelope(c.r.Body, c.in, c.cfg.readMax)
	if err != nil {
		return nil, err
	}
	if cap(payload) <= 64<<10 {
		c.in = payload[:0]
	}
	if flags&^flagCompressed != 0 {
		return nil, errorf(CodeInvalidArgument, "protocol error: invalid envelope flags "+strconv.Itoa(int(flags)))
	}
	if flags&flagCompressed != 0 {
		if !c.reqGzip {
			return nil, errorf(CodeInternal, "protocol error: received compressed message without an encoding header")
		}
		return c.pools.decompress(nil, payload, c.cfg.readMax)
	}
	return payload, nil
}

// receiveOne decodes the single request message of a unary or
// server-stream call; other counts are cardinality violations.
func receiveOne[P decoder](c *conn, m P) error {
	if c.proto == protoConnectUnary {
		body, err := c.readUnary()
		if err != nil {
			return err
		}
		return decode(c.codec, body, m)
	}
	if err := receive(c, m); err != nil {
		if err == io.EOF {
			return errorf(CodeUnimplemented, "unary request has zero messages")
		}
		return err
	}
	var extra [5]byte
	if n, _ := io.ReadFull(c.r.Body, extra[:]); n > 0 {
		return errorf(CodeUnimplemented, "unary request has multiple messages")
	}
	return nil
}

// header writes the response headers once.
func (c *conn) header() {
	if c.wroteHeader {
		return
	}
	c.wroteHeader = true
	h := c.w.Header()
	h.Set("Content-Type", c.contentType)
	switch c.proto {
	case protoConnectUnary:
		h.Set("Accept-Encoding", "gzip")
	case protoConnectStream:
		h.Set(hdrConnectStreamAccept, "gzip")
		if c.respGzip {
			h.Set(hdrConnectStreamEncoding, "gzip")
		}
	default:
		h.Set(hdrGRPCAccept, "gzip")
		if c.respGzip {
			h.Set(hdrGRPCEncoding, "gzip")
		}
	}
	c.w.WriteHeader(http.StatusOK)
}

// sendUnary writes a Connect unary answer.
func sendUnary[P encoder](c *conn, m P) error {
	buf := c.pools.getBuf()
	defer c.pools.putBuf(buf)
	body := encode(c.codec, *buf, m)
	*buf = body
	h := c.w.Header()
	if c.respGzip && len(body) >= c.cfg.compressMin {
		z := c.pools.getBuf()
		defer c.pools.putBuf(z)
		*z = c.pools.compress(*z, body)
		body = *z
		h.Set("Content-Encoding", "gzip")
	}
	for k, vs := range c.trailer {
		for _, v := range vs {
			h.Add("Trailer-"+k, v)
		}
	}
	c.header()
	_, err := c.w.Write(body)
	return err
}

// send writes one enveloped message and flushes it.
func send[P encoder](c *conn, m P) error {
	c.header()
	buf := c.pools.getBuf()
	defer c.pools.putBuf(buf)
	out := encode(c.codec, append(*buf, 0, 0, 0, 0, 0), m)
	*buf = out
	if c.respGzip && len(out)-5 >= c.cfg.compressMin {
		z := c.pools.getBuf()
		defer c.pools.putBuf(z)
		*z = c.pools.compress(append(*z, flagCompressed, 0, 0, 0, 0), out[5:])
		out = *z
	}
	binary.BigEndian.PutUint32(out[1:5], uint32(len(out)-5))
	if _, err := c.w.Write(out); err != nil {
		return NewError(CodeCanceled, err)
	}
	if err := c.rc.Flush(); err != nil {
		return NewError(CodeCanceled, err)
	}
	return nil
}

// finish ends the call: the error (or success) in the protocol's form.
func (c *conn) finish(err error) {
	var e *Error
	if err != nil {
		e = asError(err)
	}
	switch c.proto {
	case protoConnectUnary:
		if e == nil || c.wroteHeader {
			return
		}
		h := c.w.Header()
		mergeHeader(h, e.meta)
		h.Set("Content-Type", "application/json")
		h.Set("Accept-Encoding", "gzip")
		c.wroteHeader = true
		c.w.WriteHeader(e.code.httpStatus())
		_, _ = c.w.Write(appendErrorJSON(nil, e))
	case protoConnectStream:
		c.header()
		body := []byte{flagEndStream, 0, 0, 0, 0}
		body = appendEndStream(body, e, c.trailer)
		binary.BigEndian.PutUint32(body[1:5], uint32(len(body)-5))
		_, _ = c.w.Write(body)
	case protoGRPC:
		c.header()
		h := c.w.Header()
		for k, vs := range grpcTrailers(e, c.trailer) {
			for _, v := range vs {
				h.Add(http.TrailerPrefix+k, v)
			}
		}
	case protoGRPCWeb:
		c.header()
		body := []byte{flagTrailer, 0, 0, 0, 0}
		t := grpcTrailers(e, c.trailer)
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			for _, v := range t[k] {
				body = append(body, strings.ToLower(k)...)
				body = append(body, ": "...)
				body = append(body, v...)
				body = append(body, "\r\n"...)
			}
		}
		binary.BigEndian.PutUint32(body[1:5], uint32(len(body)-5))
		_, _ = c.w.Write(body)
	}
}

func mergeHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append(dst[k], vs...)
	}
}

// appendEndStream writes Connect's end-of-stream JSON:
// {"error":{...},"metadata":{"k":["v"]}}, either member optional.
func appendEndStream(b []byte, e *Error, trailer http.Header) []byte {
	b = append(b, '{')
	if e != nil {
		b = append(b, `"error":`...)
		b = appendErrorJSON(b, e)
	}
	meta := http.Header{}
	mergeHeader(meta, trailer)
	if e != nil {
		mergeHeader(meta, e.meta)
	}
	if len(meta) > 0 {
		if e != nil {
			b = append(b, ',')
		}
		b = append(b, `"metadata":{`...)
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = wirekit.AppendJSONString(b, k)
			b = append(b, ":["...)
			for j, v := range meta[k] {
				if j > 0 {
					b = append(b, ',')
				}
				b = wirekit.AppendJSONString(b, v)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// grpcTrailers are the gRPC status trailers plus the handler's.
func grpcTrailers(e *Error, trailer http.Header) http.Header {
	t := http.Header{}
	mergeHeader(t, trailer)
	if e == nil {
		t.Set("Grpc-Status", "0")
		return t
	}
	mergeHeader(t, e.meta)
	t.Set("Grpc-Status", strconv.Itoa(int(e.code)))
	if m := e.Message(); m != "" {
		t.Set("Grpc-Message", grpcPercentEncode(m))
	}
	return t
}

// grpcPercentEncode escapes what gRPC requires in grpc-message: bytes
// outside printable ASCII, and '%'.
func grpcPercentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' || c == '%' {
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

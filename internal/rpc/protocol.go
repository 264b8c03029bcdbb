package rpc

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// protocol is the RPC protocol of one request, from its Content-Type.
type protocol uint8

const (
	protoNone protocol = iota
	protoConnectUnary
	protoConnectStream
	protoGRPC
	protoGRPCWeb
)

// codec is the message encoding of one request.
type codec uint8

const (
	codecProto codec = iota
	codecJSON
)

func encode[P encoder](c codec, b []byte, m P) []byte {
	if c == codecJSON {
		return m.AppendProtoJSON(b)
	}
	return m.AppendProto(b)
}

func decode[P decoder](c codec, b []byte, m P) error {
	if c == codecJSON {
		if len(b) == 0 {
			return errorf(CodeInvalidArgument, "unmarshal message: zero-length payload is not a valid JSON object")
		}
		if err := m.UnmarshalProtoJSON(b); err != nil {
			return errorf(CodeInvalidArgument, "unmarshal message: "+err.Error())
		}
		return nil
	}
	if err := m.UnmarshalProto(b); err != nil {
		return errorf(CodeInvalidArgument, "unmarshal message: "+err.Error())
	}
	return nil
}

// classify maps a Content-Type to its protocol and codec. Parameters other
// than charset=utf-8 on JSON make it unsupported, as in connect-go.
func classify(contentType string) (protocol, codec) {
	base, params, _ := strings.Cut(contentType, ";")
	base = strings.ToLower(strings.TrimSpace(base))
	if p := strings.ToLower(strings.TrimSpace(params)); p != "" && p != "charset=utf-8" {
		return protoNone, 0
	}
	var sub string
	var p protocol
	switch {
	case base == "application/proto":
		return protoConnectUnary, codecProto
	case base == "application/json":
		return protoConnectUnary, codecJSON
	case strings.HasPrefix(base, "application/connect+"):
		p, sub = protoConnectStream, base[len("application/connect+"):]
	case base == "application/grpc-web":
		return protoGRPCWeb, codecProto
	case strings.HasPrefix(base, "application/grpc-web+"):
		p, sub = protoGRPCWeb, base[len("application/grpc-web+"):]
	case base == "application/grpc":
		return protoGRPC, codecProto
	case strings.HasPrefix(base, "application/grpc+"):
		p, sub = protoGRPC, base[len("application/grpc+"):]
	default:
		return protoNone, 0
	}
	switch sub {
	case "proto":
		return p, codecProto
	case "json":
		return p, codecJSON
	}
	return protoNone, 0
}

// acceptPost lists what a 415 answer says the procedure accepts.
func acceptPost(stream bool) string {
	grpc := "application/grpc, application/grpc+json, application/grpc+proto, application/grpc-web, application/grpc-web+json, application/grpc-web+proto"
	if stream {
		return "application/connect+json, application/connect+proto, " + grpc
	}
	return "application/json, application/proto, " + grpc
}

// Header names per protocol.
const (
	hdrConnectTimeout        = "Connect-Timeout-Ms"
	hdrConnectStreamEncoding = "Connect-Content-Encoding"
	hdrConnectStreamAccept   = "Connect-Accept-Encoding"
	hdrGRPCTimeout           = "Grpc-Timeout"
	hdrGRPCEncoding          = "Grpc-Encoding"
	hdrGRPCAccept            = "Grpc-Accept-Encoding"
)

// encodingHeaders names the request-compression and accept-compression
// headers of p.
func (p protocol) encodingHeaders() (content, accept string) {
	switch p {
	case protoConnectUnary:
		return "Content-Encoding", "Accept-Encoding"
	case protoConnectStream:
		return hdrConnectStreamEncoding, hdrConnectStreamAccept
	}
	return hdrGRPCEncoding, hdrGRPCAccept
}

// timeout parses the deadline header of p; ok false means none.
func (p protocol) timeout(h http.Header) (d time.Duration, ok bool, err *Error) {
	if p == protoConnectUnary || p == protoConnectStream {
		v := h.Get(hdrConnectTimeout)
		if v == "" {
			return 0, false, nil
		}
		if len(v) > 10 {
			return 0, false, errorf(CodeInvalidArgument, "parse timeout: "+strconv.Quote(v)+" has >10 digits")
		}
		ms, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || ms < 0 {
			return 0, false, errorf(CodeInvalidArgument, "parse timeout: invalid "+strconv.Quote(v))
		}
		return time.Duration(ms) * time.Millisecond, true, nil
	}
	v := h.Get(hdrGRPCTimeout)
	if v == "" {
		return 0, false, nil
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false, errorf(CodeInvalidArgument, "protocol error: timeout "+strconv.Quote(v)+" has an invalid unit")
	}
	n, perr := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if perr != nil || n < 0 || n > 99999999 {
		return 0, false, errorf(CodeInvalidArgument, "protocol error: invalid timeout "+strconv.Quote(v))
	}
	if unit == time.Hour && n > int64(1<<63-1)/int64(time.Hour) {
		return 0, false, nil // effectively unbounded
	}
	return time.Duration(n) * unit, true, nil
}

// acceptsGzip reports whether an accept-encoding header lists gzip.
func acceptsGzip(v string) bool {
	for v != "" {
		var tok string
		tok, v, _ = strings.Cut(v, ",")
		name, _, _ := strings.Cut(tok, ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			return true
		}
	}
	return false
}

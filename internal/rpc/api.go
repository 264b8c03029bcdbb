package rpc

import (
	"context"
	"net/http"
)

// Request is a unary or server-stream request: the decoded message and the
// request headers.
type Request[T any] struct {
	Msg    *T
	header http.Header
	peer   string
	proc   string
}

// NewRequest wraps a message (tests and in-process callers).
func NewRequest[T any](m *T) *Request[T] { return &Request[T]{Msg: m, header: http.Header{}} }

// Header is the request's HTTP headers.
func (r *Request[T]) Header() http.Header { return r.header }

// Procedure is "/package.Service/Method".
func (r *Request[T]) Procedure() string { return r.proc }

// Peer is the client's remote address.
func (r *Request[T]) Peer() string { return r.peer }

// Response is a unary answer and the headers and trailers to send with it.
type Response[T any] struct {
	Msg     *T
	header  http.Header
	trailer http.Header
}

// NewResponse wraps a message.
func NewResponse[T any](m *T) *Response[T] {
	return &Response[T]{Msg: m, header: http.Header{}, trailer: http.Header{}}
}

// Header is sent as HTTP response headers.
func (r *Response[T]) Header() http.Header { return r.header }

// Trailer is sent as trailers (Connect unary: Trailer- prefixed headers).
func (r *Response[T]) Trailer() http.Header { return r.trailer }

// UnaryFunc, ServerStreamFunc, ClientStreamFunc and BidiStreamFunc are the
// handler shapes, as in connect-go.
type (
	UnaryFunc[Req, Res any]        func(context.Context, *Request[Req]) (*Response[Res], error)
	ServerStreamFunc[Req, Res any] func(context.Context, *Request[Req], *ServerStream[Res]) error
	ClientStreamFunc[Req, Res any] func(context.Context, *ClientStream[Req]) (*Response[Res], error)
	BidiStreamFunc[Req, Res any]   func(context.Context, *BidiStream[Req, Res]) error
)

// reqPtr and resPtr tie a generated struct T to its pointer's methods, one
// direction each (see encoder).
type reqPtr[T any] interface {
	*T
	decoder
}

type resPtr[T any] interface {
	*T
	encoder
}

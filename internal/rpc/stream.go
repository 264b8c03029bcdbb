package rpc

import (
	"errors"
	"io"
	"net/http"
)

// ServerStream sends a server-stream call's messages.
type ServerStream[T any] struct {
	c    *conn
	send func(*T) error
}

// Send writes and flushes one message.
func (s *ServerStream[T]) Send(m *T) error { return s.send(m) }

// ResponseHeader is sent with the first message; set it before.
func (s *ServerStream[T]) ResponseHeader() http.Header { return s.c.w.Header() }

// ResponseTrailer is sent at the end of the stream.
func (s *ServerStream[T]) ResponseTrailer() http.Header {
	if s.c.trailer == nil {
		s.c.trailer = http.Header{}
	}
	return s.c.trailer
}

// ClientStream receives a client-stream call's messages.
type ClientStream[T any] struct {
	c    *conn
	proc string
	recv func() (*T, error)
	msg  *T
	err  error
}

// Receive advances to the next message; false at the end or on error.
func (s *ClientStream[T]) Receive() bool {
	if s.err != nil {
		return false
	}
	m, err := s.recv()
	if err != nil {
		s.err = err
		s.msg = nil
		return false
	}
	s.msg = m
	return true
}

// Msg is the message Receive read.
func (s *ClientStream[T]) Msg() *T { return s.msg }

// Err is the error that ended Receive; nil at a clean end.
func (s *ClientStream[T]) Err() error {
	if errors.Is(s.err, io.EOF) {
		return nil
	}
	return s.err
}

// RequestHeader is the request's HTTP headers.
func (s *ClientStream[T]) RequestHeader() http.Header { return s.c.r.Header }

// Procedure is "/package.Service/Method".
func (s *ClientStream[T]) Procedure() string { return s.proc }

// BidiStream is both directions of a bidi call.
type BidiStream[Req, Res any] struct {
	c    *conn
	recv func() (*Req, error)
	send func(*Res) error
}

// Receive reads the next message; io.EOF at the end.
func (s *BidiStream[Req, Res]) Receive() (*Req, error) { return s.recv() }

// Send writes and flushes one message.
func (s *BidiStream[Req, Res]) Send(m *Res) error { return s.send(m) }

// RequestHeader is the request's HTTP headers.
func (s *BidiStream[Req, Res]) RequestHeader() http.Header { return s.c.r.Header }

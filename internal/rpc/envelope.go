package rpc

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"sync"
)

// Envelope flags (PROTOCOL.md 1.2).
const (
	flagCompressed = 0x01
	flagEndStream  = 0x02 // Connect: the JSON end-of-stream message
	flagTrailer    = 0x80 // gRPC-Web: the trailers block
)

// pools keep encode buffers and compressor and decompressor state (~1 MB
// for a gzip writer) across calls instead of allocating them per message.
// Each Handler owns one; an idle stream holds nothing from it.
type pools struct {
	bufs    sync.Pool // *[]byte, at most maxPooledBuffer each
	writers sync.Pool // *gzip.Writer
	readers sync.Pool // *gzip.Reader
}

// Buffers over maxPooledBuffer (larger than any process output event,
// even base64-encoded) are left to the GC.
const maxPooledBuffer = 1 << 20

func (g *pools) getBuf() *[]byte {
	if p, ok := g.bufs.Get().(*[]byte); ok {
		return p
	}
	return new([]byte)
}

func (g *pools) putBuf(p *[]byte) {
	if cap(*p) <= maxPooledBuffer {
		*p = (*p)[:0]
		g.bufs.Put(p)
	}
}

// compress appends the gzip form of p to dst.
func (g *pools) compress(dst, p []byte) []byte {
	buf := bytes.NewBuffer(dst)
	zw, _ := g.writers.Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(buf, gzip.BestSpeed)
	} else {
		zw.Reset(buf)
	}
	_, _ = zw.Write(p) // writes to a bytes.Buffer cannot fail
	_ = zw.Close()
	g.writers.Put(zw)
	return buf.Bytes()
}

// decompress appends the inflated p to dst, failing past max bytes so a
// small compressed body cannot expand without bound.
func (g *pools) decompress(dst, p []byte, max int) ([]byte, error) {
	zr, _ := g.readers.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(p))
	} else {
		err = zr.Reset(bytes.NewReader(p))
	}
	if err != nil {
		return dst, errorf(CodeInvalidArgument, "decompress message: "+err.Error())
	}
	defer g.readers.Put(zr)
	buf := bytes.NewBuffer(dst)
	n, err := buf.ReadFrom(io.LimitReader(zr, int64(max)+1))
	if err != nil {
		return dst, errorf(CodeInvalidArgument, "decompress message: "+err.Error())
	}
	if n > int64(max) {
		return dst, tooLarge(n, max)
	}
	return buf.Bytes(), nil
}

func tooLarge(n int64, max int) *Error {
	return errorf(CodeResourceExhausted, "message size "+strconv.FormatInt(n, 10)+
		" is larger than configured max "+strconv.Itoa(max))
}

// readEnvelope reads one enveloped message into buf (reused). It returns
// io.EOF only at a clean end between envelopes.
func readEnvelope(r io.Reader, buf []byte, max int) (flags byte, payload []byte, err error) {
	var hdr [5]byte
	n, err := io.ReadFull(r, hdr[:])
	switch {
	case n == 0 && (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)):
		return 0, nil, io.EOF
	case err != nil && n > 0:
		return 0, nil, errorf(CodeInvalidArgument, "protocol error: incomplete envelope: "+err.Error())
	case err != nil:
		return 0, nil, readError(err)
	}
	size := binary.BigEndian.Uint32(hdr[1:])
	if int64(size) > int64(max) {
		return 0, nil, tooLarge(int64(size), max)
	}
	if cap(buf) < int(size) {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, errorf(CodeInvalidArgument, "protocol error: promised "+strconv.Itoa(int(size))+
			" bytes in enveloped message, got fewer: "+err.Error())
	}
	return hdr[0], buf, nil
}

// readError classifies a failed body read: a vanished client is canceled.
func readError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return NewError(CodeCanceled, err)
}

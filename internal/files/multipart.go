package files

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/textproto"
	"strings"
)

// mpReader streams a multipart body straight from one large buffer: part
// data goes from the buffer to the file with no further copy, and the
// boundary search runs over the whole buffer at once. (mime/multipart reads
// through a 4 KiB buffer, which costs a syscall and a scan per 4 KiB.)
// Memory is bounded by the buffer: a header line longer than it, or more
// than maxPartHeaders header lines, is an error.
type mpReader struct {
	br       *bufio.Reader
	dash     []byte // "--boundary": the first delimiter
	nlDash   []byte // "\r\n--boundary": every later delimiter
	started  bool
	inBody   bool // positioned inside a part's body
	finished bool // the closing delimiter was read
}

const maxPartHeaders = 64

var errMalformed = errors.New("malformed multipart body")

func newMPReader(br *bufio.Reader, boundary string) *mpReader {
	nlDash := []byte("\r\n--" + boundary)
	return &mpReader{br: br, nlDash: nlDash, dash: nlDash[2:]}
}

// next skips the rest of the current part and returns the next part's
// headers, or io.EOF after the closing delimiter.
func (m *mpReader) next() (textproto.MIMEHeader, error) {
	if m.finished {
		return nil, io.EOF
	}
	if !m.started {
		m.started = true
		b, err := m.br.Peek(len(m.dash))
		if err != nil && len(b) < len(m.dash) {
			return nil, eofToMalformed(err)
		}
		if bytes.Equal(b, m.dash) {
			_, _ = m.br.Discard(len(m.dash))
		} else if _, err := m.copyBody(io.Discard); err != nil { // preamble
			return nil, err
		}
	} else if m.inBody {
		if _, err := m.copyBody(io.Discard); err != nil {
			return nil, err
		}
	}
	// After a delimiter: "--" closes the body; else padding and CRLF.
	line, err := m.line()
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(line, "--") {
		m.finished = true
		return nil, io.EOF
	}
	if strings.TrimRight(line, " \t") != "" {
		return nil, errMalformed
	}
	h := textproto.MIMEHeader{}
	for i := 0; ; i++ {
		line, err := m.line()
		if err != nil {
			return nil, err
		}
		if line == "" {
			break
		}
		if i >= maxPartHeaders {
			return nil, errors.New("too many part headers")
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, errMalformed
		}
		k = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k))
		h[k] = append(h[k], strings.TrimSpace(v))
	}
	m.inBody = true
	return h, nil
}

// line reads one header line without its line ending.
func (m *mpReader) line() (string, error) {
	b, err := m.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errors.New("multipart header line too long")
	}
	if err != nil {
		return "", eofToMalformed(err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
}

// copyBody writes the current part's body to w and consumes the delimiter
// after it. Errors from w are returned as they are; read errors as
// readError values.
func (m *mpReader) copyBody(w io.Writer) (int64, error) {
	var n int64
	for {
		b, err := m.br.Peek(m.br.Size())
		if i := bytes.Index(b, m.nlDash); i >= 0 {
			nw, werr := w.Write(b[:i])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
			_, _ = m.br.Discard(i + len(m.nlDash))
			m.inBody = false
			return n, nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return n, readError{eofToMalformed(err)}
		}
		// Keep a tail that could be the start of a delimiter.
		safe := len(b) - (len(m.nlDash) - 1)
		if safe <= 0 {
			return n, readError{errMalformed}
		}
		nw, werr := w.Write(b[:safe])
		n += int64(nw)
		if werr != nil {
			return n, werr
		}
		_, _ = m.br.Discard(safe)
	}
}

func eofToMalformed(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readError marks a failure to read the request body.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

package files

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/users"
)

// maxFilesPerRequest bounds the files one multipart upload may write, and so
// the answer and the duplicate-path set.
const maxFilesPerRequest = 10000

// Upload is one POST /files request, already authorised.
type Upload struct {
	User     *users.User
	Workdir  string   // default workdir ("" when unset)
	Path     string   // the `path` query value
	HasPath  bool     // whether `path` was given
	Encoding string   // Content-Encoding of the request body
	Metadata Metadata // from ParseMetadata, for every file written
}

// WriteRaw writes an application/octet-stream body to up.Path, which is
// required.
func (s *Service) WriteRaw(up Upload, body io.Reader) (Entry, error) {
	if !up.HasPath {
		return Entry{}, errs.New(errs.Invalid, "path is required for application/octet-stream uploads")
	}
	path, err := users.Resolve(up.Path, up.User, up.Workdir)
	if err != nil {
		return Entry{}, err
	}
	br, done, err := s.bodyReader(body, up.Encoding)
	if err != nil {
		return Entry{}, err
	}
	defer done()
	if err := s.writeFile(path, up, func(p *pending) error {
		for {
			b, rerr := br.Peek(br.Size())
			if len(b) > 0 {
				if _, err := p.Write(b); err != nil {
					return err
				}
				_, _ = br.Discard(len(b))
			}
			if rerr == io.EOF {
				return nil
			}
			if rerr != nil && !errors.Is(rerr, bufio.ErrBufferFull) {
				return readError{rerr}
			}
		}
	}); err != nil {
		return Entry{}, err
	}
	return entryFor(path, up.Metadata), nil
}

// WriteMultipart writes every part named "file" of a multipart body, in
// order, to up.Path when given or else to the part's filename taken verbatim
// (directories kept). A second part for an already written path is refused
// after the earlier ones were written, as in E2B.
func (s *Service) WriteMultipart(up Upload, body io.Reader, boundary string) ([]Entry, error) {
	br, done, err := s.bodyReader(body, up.Encoding)
	if err != nil {
		return nil, err
	}
	defer done()
	mr := newMPReader(br, boundary)
	entries := []Entry{}
	seen := map[string]bool{}
	for {
		h, err := mr.next()
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return entries, fmt.Errorf("error parsing multipart form: %w", err)
		}
		disp, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
		if err != nil || disp != "form-data" || params["name"] != "file" {
			continue
		}
		target := up.Path
		if !up.HasPath {
			target = params["filename"]
			if target == "" {
				return entries, errs.New(errs.Invalid, "part has no filename and no path was given")
			}
		}
		path, err := users.Resolve(target, up.User, up.Workdir)
		if err != nil {
			return entries, err
		}
		if seen[path] {
			return entries, errs.New(errs.Invalid, "cannot write '%s' twice in one request; already written: %s", path, listPaths(entries))
		}
		if len(entries) >= maxFilesPerRequest {
			return entries, errs.New(errs.Invalid, "too many files in one request (at most %d)", maxFilesPerRequest)
		}
		if err := s.writeFile(path, up, func(p *pending) error {
			_, err := mr.copyBody(p)
			return err
		}); err != nil {
			return entries, err
		}
		seen[path] = true
		entries = append(entries, entryFor(path, up.Metadata))
	}
}

// writeFile runs fill against a temporary file and commits it over path.
func (s *Service) writeFile(path string, up Upload, fill func(*pending) error) error {
	p, err := s.begin(path, up.User, ".envd-upload")
	if err != nil {
		return err
	}
	if err := fill(p); err != nil {
		p.abort()
		return bodyErr(err)
	}
	return p.commit(up.Metadata)
}

// Write appends b to the temporary file; a full disk wraps errs.NoSpace.
func (p *pending) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.copied += int64(n)
	if isNoSpace(err) {
		return n, errs.New(errs.NoSpace, "attempted to write %d bytes: not enough disk space available", len(b))
	}
	if err != nil {
		return n, fmt.Errorf("error writing file '%s': %w", p.path, err)
	}
	return n, nil
}

// bodyReader wraps body in a pooled buffer, decoding a gzip body first.
// Any Content-Encoding but gzip and identity is invalid (PROTOCOL.md 4.9).
func (s *Service) bodyReader(body io.Reader, encoding string) (*bufio.Reader, func(), error) {
	br := s.getReader(body)
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		return br, func() { s.putReader(br) }, nil
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			s.putReader(br)
			return nil, nil, bodyErr(readError{err})
		}
		zbr := s.getReader(zr)
		return zbr, func() { s.putReader(zbr); s.putReader(br) }, nil
	}
	s.putReader(br)
	return nil, nil, errs.New(errs.Invalid, "unsupported Content-Encoding: %s", encoding)
}

// bodyErr turns a request-body read failure into a client-facing error: a
// corrupt gzip stream is the client's (400); anything else internal.
func bodyErr(err error) error {
	var re readError
	if !errors.As(err, &re) {
		return err
	}
	var corrupt flate.CorruptInputError
	if errors.Is(re.err, gzip.ErrHeader) || errors.Is(re.err, gzip.ErrChecksum) || errors.As(re.err, &corrupt) {
		return errs.New(errs.Invalid, "invalid gzip request body: %v", re.err)
	}
	return fmt.Errorf("error reading request body: %w", re.err)
}

func listPaths(entries []Entry) string {
	const shown = 20
	var b strings.Builder
	b.WriteString("[")
	for i, e := range entries {
		if i == shown {
			fmt.Fprintf(&b, " and %d more", len(entries)-shown)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.Path)
	}
	b.WriteString("]")
	return b.String()
}

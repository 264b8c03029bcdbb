package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"
)

// WriteInfo is envd's answer for one written file.
type WriteInfo struct {
	Path     string            `json:"path"` // resolved absolute path
	Name     string            `json:"name"`
	Type     string            `json:"type"` // always "file"
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Reader streams a file's content from envd. Close it.
type Reader struct {
	body io.ReadCloser
	// Size is the file's length, or -1 when envd did not say.
	Size int64
}

func (r *Reader) Read(p []byte) (int, error) { return r.body.Read(p) }

// Close ends the download.
func (r *Reader) Close() error { return r.body.Close() }

// filesURL is /files with the path and user of a request.
func (c *Client) filesURL(path string, withPath bool) string {
	q := url.Values{}
	if withPath {
		q.Set("path", path)
	}
	if c.user != "" {
		q.Set("username", c.user)
	}
	return c.base + "/files?" + q.Encode()
}

// Read opens path in the guest for streaming; nothing is buffered beyond
// the transport's small buffers. Opening is retried on connection failure;
// reading is not. Cancelling ctx ends the download.
func (c *Client) Read(ctx context.Context, path string) (*Reader, error) {
	var out *Reader
	op := "read " + path
	err := c.retry(ctx, op, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.filesURL(path, true), nil)
		if err != nil {
			return err
		}
		c.setAuth(req.Header)
		// identity: a gzip answer would cost CPU on both ends for no gain on
		// a local link, and would hide the length.
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := c.hc.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			return httpError(op, resp)
		}
		out = &Reader{body: resp.Body, Size: resp.ContentLength}
		return nil
	})
	return out, err
}

// Write streams r into the file at path (created with its parents, or
// truncated), as application/octet-stream. It is not retried: r cannot be
// replayed. r is read to EOF but not closed.
func (c *Client) Write(ctx context.Context, path string, r io.Reader) (*WriteInfo, error) {
	op := "write " + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.filesURL(path, true), io.NopCloser(r))
	if err != nil {
		return nil, wrapErr(op, err)
	}
	req.ContentLength = knownLength(r)
	if req.ContentLength == 0 {
		req.Body = http.NoBody
	}
	c.setAuth(req.Header)
	req.Header.Set("Content-Type", "application/octet-stream")
	infos, err := c.doUpload(op, req)
	if err != nil {
		return nil, err
	}
	if len(infos) == 0 {
		return nil, &Error{Op: op, Message: "envd answered without the written file", kind: ErrInternal}
	}
	return &infos[0], nil
}

// knownLength is r's remaining length when it is cheap to know (so the
// upload carries Content-Length), else -1 (chunked).
func knownLength(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len())
	case *os.File:
		fi, err := v.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return -1
		}
		off, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return max(fi.Size()-off, 0)
	}
	return -1
}

// Upload is one file of WriteFiles.
type Upload struct {
	Path string    // target path in the guest (relative: to the user's home)
	Data io.Reader // read to EOF, not closed
}

// WriteFiles uploads several files in one multipart request, streamed
// part after part through a pipe (no file is held in memory). Files are
// written in order; on error the earlier ones may already exist.
func (c *Client) WriteFiles(ctx context.Context, files []Upload) ([]WriteInfo, error) {
	const op = "write files"
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.filesURL("", false), pr)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	c.setAuth(req.Header)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	wrote := make(chan error, 1)
	go func() {
		var err error
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("envd client: multipart writer panic: %v", r)
			}
			pw.CloseWithError(err)
			wrote <- err
		}()
		err = writeParts(mw, files)
	}()
	infos, err := c.doUpload(op, req)
	pr.CloseWithError(io.ErrClosedPipe) // unblocks the writer if envd stopped reading
	if werr := <-wrote; err == nil && werr != nil && werr != io.ErrClosedPipe {
		err = wrapErr(op, werr)
	}
	return infos, err
}

var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

func writeParts(mw *multipart.Writer, files []Upload) error {
	for _, f := range files {
		h := textproto.MIMEHeader{}
		// The filename is the target path, directories included: envd takes
		// it verbatim (PROTOCOL.md 4.9).
		h.Set("Content-Disposition", `form-data; name="file"; filename="`+quoteEscaper.Replace(f.Path)+`"`)
		h.Set("Content-Type", "application/octet-stream")
		part, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		if _, err := io.Copy(part, f.Data); err != nil {
			return fmt.Errorf("read %s: %w", f.Path, err)
		}
	}
	return mw.Close()
}

// maxUploadAnswer bounds the JSON answer of an upload.
const maxUploadAnswer = 1 << 20

func (c *Client) doUpload(op string, req *http.Request) ([]WriteInfo, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return nil, httpError(op, resp)
	}
	var infos []WriteInfo
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxUploadAnswer)).Decode(&infos); err != nil {
			return nil, wrapErr(op, fmt.Errorf("decode answer: %w", err))
		}
	}
	return infos, nil
}

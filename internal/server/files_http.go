package server

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/envd/internal/auth"
	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/files"
	"github.com/sandboxd/envd/internal/users"
	"github.com/sandboxd/envd/internal/wirekit"
)

// fileQuery is the query of GET/POST /files. Values are raw (URL-decoded,
// unresolved): signatures cover exactly these (PROTOCOL.md 5.4).
type fileQuery struct {
	path, user       string
	hasPath, hasUser bool
	access           auth.FileAccess
}

// parseFileQuery reads the /files query. A non-integer
// signature_expiration is a plain-text 400, as E2B's generated binder
// answers; ok is false when that was written.
func parseFileQuery(w http.ResponseWriter, r *http.Request, op string) (fileQuery, bool) {
	v := r.URL.Query()
	q := fileQuery{path: v.Get("path"), user: v.Get("username"), hasPath: v.Has("path"), hasUser: v.Has("username")}
	q.access = auth.FileAccess{
		HeaderToken: r.Header.Get("X-Access-Token"), Operation: op, Path: q.path, User: q.user,
		Signature: v.Get("signature"), HasSignature: v.Has("signature"),
	}
	if v.Has("signature_expiration") {
		exp, err := strconv.ParseInt(v.Get("signature_expiration"), 10, 64)
		if err != nil {
			http.Error(w, "Invalid format for parameter signature_expiration: "+err.Error(), http.StatusBadRequest)
			return q, false
		}
		q.access.Expiration, q.access.HasExpiration = exp, true
	}
	return q, true
}

// fileUser resolves the user of a /files or compose request: the given name,
// else the default user (BEHAVIOR.md 2.2).
func (s *Server) fileUser(name string, given bool) (*users.User, error) {
	if !given {
		name = s.Defaults.User()
		if name == "" {
			return nil, errs.New(errs.Invalid, "no username given and no default user set")
		}
	}
	u, err := s.Users.Lookup(name)
	if errors.Is(err, errs.Unauthenticated) {
		return nil, errs.New(errs.Unauthenticated, "error looking up user '%s': unknown user %s", name, name)
	}
	return u, err
}

// authorizeFiles runs the token-or-signature check and the user lookup
// shared by GET and POST /files (BEHAVIOR.md 5.1), writing any refusal.
func (s *Server) authorizeFiles(w http.ResponseWriter, r *http.Request, op string) (fileQuery, *users.User, bool) {
	q, ok := parseFileQuery(w, r, op)
	if !ok {
		return q, nil, false
	}
	if err := s.Token.AuthorizeFile(q.access, time.Now()); err != nil {
		writeErr(w, err)
		return q, nil, false
	}
	u, err := s.fileUser(q.user, q.hasUser)
	if err != nil {
		writeErr(w, err)
		return q, nil, false
	}
	return q, u, true
}

// filesGet is GET /files (PROTOCOL.md 4.8): identity through
// http.ServeContent (sendfile, ranges, conditionals) or a gzip stream.
func (s *Server) filesGet(w http.ResponseWriter, r *http.Request) {
	q, u, ok := s.authorizeFiles(w, r, auth.OpRead)
	if !ok {
		return
	}
	d, err := s.Files.Open(u, s.Defaults.Workdir(), q.path)
	if err != nil {
		writeErr(w, err)
		return
	}
	defer d.File.Close()
	h := r.Header
	identityOnly := h.Get("Range") != "" || h.Get("If-Modified-Since") != "" || h.Get("If-None-Match") != "" || h.Get("If-Range") != ""
	gz, err := files.NegotiateEncoding(h.Get("Accept-Encoding"), identityOnly)
	if err != nil {
		writeError(w, http.StatusNotAcceptable, err.Error())
		return
	}
	out := w.Header()
	out.Set("Vary", "Accept-Encoding")
	if cd := mime.FormatMediaType("inline", map[string]string{"filename": d.Name}); cd != "" {
		out.Set("Content-Disposition", cd)
	}
	if !gz {
		http.ServeContent(w, r, q.path, d.ModTime, d.File)
		return
	}
	ct := mime.TypeByExtension(filepath.Ext(q.path))
	if ct == "" {
		ct = "application/octet-stream"
	}
	out.Set("Content-Type", ct)
	out.Set("Content-Encoding", "gzip")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if err := s.Files.WriteGzip(w, d.File); err != nil {
		s.Log.Debug("gzip download ended early", "err", err)
	}
}

// fileEntry is one element of the upload answer and the compose answer.
type fileEntry struct {
	Path     string            `json:"path"`
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

func toFileEntry(e files.Entry) fileEntry {
	return fileEntry{Path: e.Path, Name: e.Name, Type: e.Type, Metadata: e.Metadata}
}

// filesPost is POST /files (PROTOCOL.md 4.9): multipart or raw body,
// streamed to disk; the answer lists the written files.
func (s *Server) filesPost(w http.ResponseWriter, r *http.Request) {
	q, u, ok := s.authorizeFiles(w, r, auth.OpWrite)
	if !ok {
		return
	}
	md, err := files.ParseMetadata(r.Header)
	if err != nil {
		writeErr(w, err)
		return
	}
	up := files.Upload{User: u, Workdir: s.Defaults.Workdir(), Path: q.path, HasPath: q.hasPath,
		Encoding: r.Header.Get("Content-Encoding"), Metadata: md}
	ct := r.Header.Get("Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	var written []files.Entry
	switch {
	case mt == "application/octet-stream":
		var e files.Entry
		if e, err = s.Files.WriteRaw(up, r.Body); err == nil {
			written = []files.Entry{e}
		}
	case strings.HasPrefix(mt, "multipart/"):
		if params["boundary"] == "" {
			err = errors.New("error parsing multipart form: no multipart boundary param in Content-Type")
		} else {
			written, err = s.Files.WriteMultipart(up, r.Body, params["boundary"])
		}
	default:
		err = errs.New(errs.Invalid, "unsupported content type: %s", ct)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	out := make([]fileEntry, len(written))
	for i, e := range written {
		out[i] = toFileEntry(e)
	}
	writeJSON(w, out)
}

// maxComposeBody bounds the compose request's JSON.
const maxComposeBody = 4 << 20

// filesCompose is POST /files/compose (PROTOCOL.md 4.10).
func (s *Server) filesCompose(w http.ResponseWriter, r *http.Request) {
	var req composeRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxComposeBody))
	if err == nil {
		req, err = decodeCompose(body)
	}
	if err != nil {
		writeErr(w, errs.New(errs.Invalid, "invalid request body: %v", err))
		return
	}
	if len(req.SourcePaths) == 0 || req.Destination == "" {
		writeErr(w, errs.New(errs.Invalid, "source_paths and destination are required"))
		return
	}
	u, err := s.fileUser(deref(req.Username), req.Username != nil)
	if err != nil {
		writeErr(w, err)
		return
	}
	e, err := s.Files.Compose(u, s.Defaults.Workdir(), req.SourcePaths, req.Destination)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, toFileEntry(e))
}

type composeRequest struct {
	SourcePaths []string
	Destination string
	Username    *string
}

// decodeCompose reads {"source_paths":[...],"destination":"...",
// "username":"..."}; unknown keys are ignored, and, as with E2B's
// json.Decoder, anything after the object is not read.
func decodeCompose(b []byte) (composeRequest, error) {
	var req composeRequest
	d := wirekit.NewJSONDecoder(b)
	err := d.Object(func(key string) (err error) {
		switch strings.ToLower(key) {
		case "source_paths":
			req.SourcePaths = nil
			err = d.Array(func() error {
				p, err := d.String()
				req.SourcePaths = append(req.SourcePaths, p)
				return err
			})
		case "destination":
			req.Destination, err = d.NullableString()
		case "username":
			if req.Username = nil; !d.Null() {
				var u string
				u, err = d.String()
				req.Username = &u
			}
		default:
			err = d.Skip()
		}
		return err
	})
	return req, err
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

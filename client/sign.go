package client

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// URLOp is what a file URL allows.
type URLOp string

const (
	URLRead  URLOp = "read"  // GET /files (download)
	URLWrite URLOp = "write" // POST /files (upload)
)

// Signature computes a file URL signature (PROTOCOL.md 5.4):
// "v1_" + unpadded standard base64 of sha256("path:op:user:token[:exp]").
// path and user are the raw query values ("" for no username); expires
// is Unix seconds, 0 for none.
func Signature(path string, op URLOp, user, token string, expires int64) string {
	payload := path + ":" + string(op) + ":" + user + ":" + token
	if expires != 0 {
		payload += ":" + strconv.FormatInt(expires, 10)
	}
	sum := sha256.Sum256([]byte(payload))
	return "v1_" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// FileURL returns a /files URL for path that works without the access
// token: a download (URLRead, GET) or an upload (URLWrite, POST) as the
// client's user. With a token (WithToken) it is signed; a non-zero
// expires limits it in time, and needs a token. Without a token envd
// needs no signature, so none is added.
func (c *Client) FileURL(op URLOp, path string, expires time.Time) (string, error) {
	if op != URLRead && op != URLWrite {
		return "", errors.New("envd client: file URL operation must be read or write")
	}
	var exp int64
	if !expires.IsZero() {
		if c.token == "" {
			return "", errors.New("envd client: an expiring file URL needs an access token")
		}
		exp = expires.Unix()
	}
	// Parameters in the JS SDK's order, each percent-encoded as
	// URLSearchParams does ('+' and '/' too), so URLs match it.
	var b strings.Builder
	b.WriteString(c.base + "/files?path=" + url.QueryEscape(path))
	if c.user != "" {
		b.WriteString("&username=" + url.QueryEscape(c.user))
	}
	if c.token != "" {
		b.WriteString("&signature=" + url.QueryEscape(Signature(path, op, c.user, c.token, exp)))
		if exp != 0 {
			b.WriteString("&signature_expiration=" + strconv.FormatInt(exp, 10))
		}
	}
	return b.String(), nil
}

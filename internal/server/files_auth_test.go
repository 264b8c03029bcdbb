package server

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/envd/internal/auth"
)

// PROTOCOL.md 5.4 end to end: header token, signed URLs and every refusal,
// on both directions of /files.
func TestFilesSignedURLs(t *testing.T) {
	e := newFilesEnv(t)
	p := filepath.Join(e.rootHome, "hello.txt")
	os.WriteFile(p, []byte("hi"), 0o644)
	e.token.Set(authTestToken)
	sig := func(path, op, user string, exp *int64) string { return auth.Sign(path, op, user, authTestToken, exp) }
	future, past := time.Now().Unix()+60, time.Now().Unix()-5

	filesWant(t, "header token", filesDo(t, "GET", e.filesURL("path", p), nil, "X-Access-Token", authTestToken), 200, "hi")
	filesWant(t, "wrong header token", filesDo(t, "GET", e.filesURL("path", p, "signature", sig(p, "read", "", nil)), nil, "X-Access-Token", "bad"),
		401, `"message":"access token present in header but does not match"`)
	filesWant(t, "nothing", filesDo(t, "GET", e.filesURL("path", p), nil), 401, `{"code":401,"message":"missing signature query parameter"}`)
	filesWant(t, "signed read", filesDo(t, "GET", e.filesURL("path", p, "signature", sig(p, "read", "", nil)), nil), 200, "hi")
	filesWant(t, "signed read with user", filesDo(t, "GET", e.filesURL("path", p, "username", "root", "signature", sig(p, "read", "root", nil)), nil), 200, "hi")
	filesWant(t, "signed read, expiring", filesDo(t, "GET", e.filesURL("path", p, "signature", sig(p, "read", "", &future),
		"signature_expiration", strconv.FormatInt(future, 10)), nil), 200, "hi")
	filesWant(t, "expired", filesDo(t, "GET", e.filesURL("path", p, "signature", sig(p, "read", "", &past),
		"signature_expiration", strconv.FormatInt(past, 10)), nil), 401, "signature is already expired")
	filesWant(t, "forged", filesDo(t, "GET", e.filesURL("path", p, "signature", auth.Sign(p, "read", "", "other", nil)), nil), 401, "invalid signature")
	filesWant(t, "wrong path", filesDo(t, "GET", e.filesURL("path", p, "signature", sig("/etc/shadow", "read", "", nil)), nil), 401, "invalid signature")
	filesWant(t, "wrong user", filesDo(t, "GET", e.filesURL("path", p, "username", "root", "signature", sig(p, "read", "tester", nil)), nil), 401, "invalid signature")
	filesWant(t, "resolved default user signed", filesDo(t, "GET", e.filesURL("path", p, "signature", sig(p, "read", "root", nil)), nil), 401, "invalid signature")
	filesWant(t, "write signature used to read", filesDo(t, "GET", e.filesURL("path", p, "signature", sig(p, "write", "", nil)), nil), 401, "invalid signature")
	filesWant(t, "read signature used to write", filesDo(t, "POST", e.filesURL("path", p, "signature", sig(p, "read", "", nil)),
		strings.NewReader("x"), "Content-Type", "application/octet-stream"), 401, "invalid signature")
	filesWant(t, "signed write", filesDo(t, "POST", e.filesURL("path", p, "signature", sig(p, "write", "", nil)),
		strings.NewReader("written"), "Content-Type", "application/octet-stream"), 200, `"path":"`+p+`"`)
	if filesRead(t, p) != "written" {
		t.Fatal("signed write did not write")
	}
	// A '+' left unencoded decodes to a space: refused, never repaired.
	var s string
	for i := 0; !strings.Contains(s, "+"); i++ {
		p = filepath.Join(e.rootHome, fmt.Sprintf("plus%d", i))
		s = sig(p, "read", "", nil)
	}
	os.WriteFile(p, []byte("hi"), 0o644)
	filesWant(t, "signed read with + encoded", filesDo(t, "GET", e.filesURL("path", p, "signature", s), nil), 200, "hi")
	raw := e.url + "/files?path=" + strings.ReplaceAll(p, "/", "%2F") + "&signature=" + s
	filesWant(t, "unencoded +", filesDo(t, "GET", raw, nil), 401, "invalid signature")
	// A malformed expiration is the binder's plain-text 400.
	r := filesDo(t, "GET", e.filesURL("path", p, "signature", s, "signature_expiration", "soon"), nil)
	if r.code != 400 || !strings.HasPrefix(r.h.Get("Content-Type"), "text/plain") || !strings.Contains(r.body, "Invalid format for parameter signature_expiration") {
		t.Errorf("bad expiration: %d %q %q", r.code, r.h.Get("Content-Type"), r.body)
	}
	// Compose takes the header token only.
	filesWant(t, "compose without token", filesDo(t, "POST", e.url+"/files/compose", strings.NewReader(`{}`)), 401, "unauthorized access")
}

// BEHAVIOR.md 2.2: username selects the user; unknown is 401, absent is the
// default user; the Basic header is still validated (PROTOCOL.md 1.6).
func TestFilesUserSelection(t *testing.T) {
	e := newFilesEnv(t)
	r := filesDo(t, "POST", e.filesURL("path", "mine.txt", "username", "tester"), strings.NewReader("t"), "Content-Type", "application/octet-stream")
	p := filepath.Join(e.testerHome, "mine.txt")
	filesWant(t, "as tester", r, 200, `[{"path":"`+p+`","name":"mine.txt","type":"file"}]`)
	if r.h.Get("Content-Type") != "application/json" {
		t.Errorf("upload answer Content-Type %q", r.h.Get("Content-Type"))
	}
	if uid, gid := filesOwner(t, p); uid != filesTesterUID || gid != filesTesterGID {
		t.Errorf("owned by %d:%d", uid, gid)
	}
	filesWant(t, "default user root", filesDo(t, "POST", e.filesURL("path", "r.txt"), strings.NewReader("r"),
		"Content-Type", "application/octet-stream"), 200, filepath.Join(e.rootHome, "r.txt"))
	e.defaults.SetUser("tester")
	filesWant(t, "default user tester", filesDo(t, "GET", e.filesURL("path", "mine.txt"), nil), 200, "t")
	filesWant(t, "unknown user", filesDo(t, "GET", e.filesURL("path", "x", "username", "ghost"), nil),
		401, "error looking up user 'ghost'")
	filesWant(t, "empty username", filesDo(t, "GET", e.filesURL("path", "x", "username", ""), nil), 401, "error looking up user ''")
	filesWant(t, "unknown Basic user", filesDo(t, "GET", e.filesURL("path", p), nil,
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("ghost:"))), 401, "invalid username: 'ghost'")
	filesWant(t, "~other", filesDo(t, "GET", e.filesURL("path", "~root/x"), nil), 400, "")
	// Compose resolves its user from the body.
	os.WriteFile(filepath.Join(e.testerHome, "c1"), []byte("a"), 0o644)
	filesWant(t, "compose unknown user", filesDo(t, "POST", e.url+"/files/compose",
		strings.NewReader(`{"source_paths":["c1"],"destination":"d","username":"ghost"}`)), 401, "error looking up user 'ghost'")
	filesWant(t, "compose", filesDo(t, "POST", e.url+"/files/compose",
		strings.NewReader(`{"source_paths":["c1"],"destination":"d","username":"tester"}`)), 200,
		fmt.Sprintf(`{"path":"%s","name":"d","type":"file"}`, filepath.Join(e.testerHome, "d")))
	filesWant(t, "compose missing source", filesDo(t, "POST", e.url+"/files/compose",
		strings.NewReader(`{"source_paths":["c1"],"destination":"d2"}`)), 404, "source file not found: ")
	filesWant(t, "compose bad json", filesDo(t, "POST", e.url+"/files/compose", strings.NewReader(`{`)), 400, "")
	filesWant(t, "compose empty", filesDo(t, "POST", e.url+"/files/compose", strings.NewReader(`{"destination":"d"}`)), 400, "")
	if r := filesDo(t, "GET", e.url+"/files/compose", nil); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET compose: %d", r.code)
	}
}

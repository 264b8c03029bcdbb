package auth

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/sandboxd/envd/internal/errs"
)

// The made-up token of PROTOCOL.md 5.4's worked example.
const exampleToken = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

func TestSignReproducesSpecWorkedExamples(t *testing.T) {
	if got := Sign("/home/user/hello.txt", OpRead, "user", exampleToken, nil); got != "v1_0+/dLxVunJbGExBzQBg8Lk3itjbX8C7YCojaH5GudSM" {
		t.Errorf("example (1): got %s", got)
	}
	exp := int64(1767225600)
	if got := Sign("hello.txt", OpWrite, "", exampleToken, &exp); got != "v1_dbHncD2QCV6DDdqLd6GvJWD+OocJOEM07FqdxHW1iic" {
		t.Errorf("example (2): got %s", got)
	}
	if got := HashToken(exampleToken); got != "426a23ad0023c85ee10e148cf1c69ea5375e91cca688aaab057a89a2ba4cb0779433de40216ab9fecd72f6907e8f232bb70f992f73a6e0051c784bcd43ff078d" {
		t.Errorf("example (3): got %s", got)
	}
	if HashToken("") != EmptyTokenHash {
		t.Errorf("EmptyTokenHash is not sha512hex(\"\")")
	}
}

// The example URLs decode to exactly the signed values and verify.
func TestAuthorizeFileAcceptsSpecExampleURLs(t *testing.T) {
	var tok Token
	tok.Set(exampleToken)
	for _, tc := range []struct{ raw, op string }{
		{"path=%2Fhome%2Fuser%2Fhello.txt&username=user&signature=v1_0%2B%2FdLxVunJbGExBzQBg8Lk3itjbX8C7YCojaH5GudSM", OpRead},
		{"path=hello.txt&signature=v1_dbHncD2QCV6DDdqLd6GvJWD%2BOocJOEM07FqdxHW1iic&signature_expiration=1767225600", OpWrite},
	} {
		q, err := url.ParseQuery(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		a := FileAccess{Operation: tc.op, Path: q.Get("path"), User: q.Get("username"),
			Signature: q.Get("signature"), HasSignature: q.Has("signature")}
		if q.Has("signature_expiration") {
			a.Expiration, a.HasExpiration = 1767225600, true
		}
		if err := tok.AuthorizeFile(a, time.Unix(1767225600, 0)); err != nil {
			t.Errorf("%s: %v", tc.raw, err)
		}
	}
}

func TestAuthorizeFileRefusals(t *testing.T) {
	var tok Token
	tok.Set(exampleToken)
	now := time.Unix(1_800_000_000, 0)
	past, future := now.Unix()-1, now.Unix()+60
	good := func(path, op, user string, exp *int64) FileAccess {
		a := FileAccess{Operation: op, Path: path, User: user, Signature: Sign(path, op, user, exampleToken, exp), HasSignature: true}
		if exp != nil {
			a.Expiration, a.HasExpiration = *exp, true
		}
		return a
	}
	nowExp := now.Unix()
	cases := []struct {
		name string
		a    FileAccess
		want string // "" = allowed
	}{
		{"header token", FileAccess{HeaderToken: exampleToken, Operation: OpRead}, ""},
		{"wrong header token, valid signature", func() FileAccess {
			a := good("/a", OpRead, "", nil)
			a.HeaderToken = "nope"
			return a
		}(), "access token present in header but does not match"},
		{"no signature", FileAccess{Operation: OpRead, Path: "/a"}, "missing signature query parameter"},
		{"valid", good("/a", OpRead, "root", nil), ""},
		{"valid with future expiration", good("/a", OpWrite, "", &future), ""},
		{"expiration equal to now", good("/a", OpWrite, "", &nowExp), ""},
		{"expired", good("/a", OpWrite, "", &past), "signature is already expired"},
		{"forged", func() FileAccess {
			a := good("/a", OpRead, "", nil)
			a.Signature = Sign("/a", OpRead, "", "other", nil)
			return a
		}(), "invalid signature"},
		{"empty signature", FileAccess{Operation: OpRead, Path: "/a", HasSignature: true}, "invalid signature"},
		{"wrong path", func() FileAccess { a := good("/a", OpRead, "", nil); a.Path = "/b"; return a }(), "invalid signature"},
		{"wrong user", func() FileAccess { a := good("/a", OpRead, "root", nil); a.User = "user"; return a }(), "invalid signature"},
		{"read signature used to write", func() FileAccess { a := good("/a", OpRead, "", nil); a.Operation = OpWrite; return a }(), "invalid signature"},
		{"expiration moved", func() FileAccess { a := good("/a", OpRead, "", &future); a.Expiration++; return a }(), "invalid signature"},
		{"expiration dropped", func() FileAccess { a := good("/a", OpRead, "", &future); a.HasExpiration = false; return a }(), "invalid signature"},
		{"resolved default user instead of raw empty", func() FileAccess { a := good("/a", OpRead, "", nil); a.User = "root"; return a }(), "invalid signature"},
	}
	for _, tc := range cases {
		err := tok.AuthorizeFile(tc.a, now)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want || !errors.Is(err, errs.Unauthenticated)):
			t.Errorf("%s: got %v, want unauthenticated %q", tc.name, err, tc.want)
		}
	}
}

// PROTOCOL.md 5.4: a '+' that was not percent-encoded decodes to a space and
// must fail, not be "repaired".
func TestAuthorizeFileUnencodedPlusFails(t *testing.T) {
	var tok Token
	tok.Set(exampleToken)
	q, _ := url.ParseQuery("path=%2Fhome%2Fuser%2Fhello.txt&username=user&signature=v1_0+/dLxVunJbGExBzQBg8Lk3itjbX8C7YCojaH5GudSM")
	a := FileAccess{Operation: OpRead, Path: q.Get("path"), User: q.Get("username"), Signature: q.Get("signature"), HasSignature: true}
	if err := tok.AuthorizeFile(a, time.Now()); err == nil || err.Error() != "invalid signature" {
		t.Fatalf("got %v, want invalid signature", err)
	}
}

func TestAuthorizeFileOpenWithoutToken(t *testing.T) {
	var tok Token
	if err := tok.AuthorizeFile(FileAccess{Operation: OpRead, HeaderToken: "anything", Signature: "bogus", HasSignature: true}, time.Now()); err != nil {
		t.Fatalf("no token set must allow: %v", err)
	}
}

func TestDecideInitTable(t *testing.T) {
	str := func(s string) *string { return &s }
	set := func(v string) *Token {
		var tk Token
		if v != "" {
			tk.Set(v)
		}
		return &tk
	}
	tokHash := HashToken(exampleToken)
	cases := []struct {
		name      string
		current   *Token
		req       *string
		hash      string
		hashKnown bool
		want      string
	}{
		{"current token presented", set(exampleToken), str(exampleToken), "", false, ""},
		{"current token presented, MMDS disagrees", set(exampleToken), str(exampleToken), HashToken("x"), true, ""},
		{"rotation authorised by MMDS hash", set("old"), str(exampleToken), tokHash, true, ""},
		{"MMDS hash in upper case", set("old"), str(exampleToken), "426A23AD0023C85EE10E148CF1C69EA5375E91CCA688AAAB057A89A2BA4CB0779433DE40216AB9FECD72F6907E8F232BB70F992F73A6E0051C784BCD43FF078D", true, ""},
		{"reset authorised by empty hash", set("old"), nil, EmptyTokenHash, true, ""},
		{"first setup, no MMDS", set(""), str(exampleToken), "", false, ""},
		{"first setup, MMDS answered without hash", set(""), str(exampleToken), "", true, ""},
		{"first setup without token, no MMDS", set(""), nil, "", false, ""},
		{"first boot, MMDS hash for a real token, no token sent", set(""), nil, tokHash, true, "access token reset not authorized"},
		{"first boot, MMDS hash, wrong token", set(""), str("wrong"), tokHash, true, "access token validation failed"},
		{"token set, none sent, no MMDS", set(exampleToken), nil, "", false, "access token reset not authorized"},
		{"token set, wrong sent, no MMDS", set(exampleToken), str("wrong"), "", false, "access token validation failed"},
		{"token set, none sent, hash of a real token", set(exampleToken), nil, tokHash, true, "access token reset not authorized"},
		{"empty-hash does not authorise a token", set(exampleToken), str("new"), EmptyTokenHash, true, "access token validation failed"},
		{"hash unknown is not present", set(exampleToken), str("new"), tokHash, false, "access token validation failed"},
	}
	for _, tc := range cases {
		err := DecideInit(tc.current, tc.req, tc.hash, tc.hashKnown)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want || !errors.Is(err, errs.Unauthenticated)):
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestTokenSetClearAllows(t *testing.T) {
	var tok Token
	if !tok.Allows("") || !tok.Allows("x") || tok.Equal("") {
		t.Fatal("empty token must allow everything and equal nothing")
	}
	tok.Set("abc")
	if tok.Allows("") || tok.Allows("abd") || !tok.Allows("abc") || !tok.Equal("abc") {
		t.Fatal("set token must allow only itself")
	}
	tok.Clear()
	if tok.IsSet() || !tok.Allows("") {
		t.Fatal("cleared token must open the gate")
	}
}

func BenchmarkAuthorizeFileSignature(b *testing.B) {
	var tok Token
	tok.Set(exampleToken)
	a := FileAccess{Operation: OpRead, Path: "/home/user/hello.txt", User: "user",
		Signature: Sign("/home/user/hello.txt", OpRead, "user", exampleToken, nil), HasSignature: true}
	now := time.Now()
	for b.Loop() {
		if err := tok.AuthorizeFile(a, now); err != nil {
			b.Fatal(err)
		}
	}
}

package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/sandboxd/envd/internal/errs"
)

// Operations a file URL signature covers (PROTOCOL.md 5.4).
const (
	OpRead  = "read"  // GET /files
	OpWrite = "write" // POST /files
)

// FileAccess is what one /files request presents. Path and User are the raw,
// URL-decoded query values, never the resolved ones: the SDK signs what it
// sends, and a resolved default user would break URLs minted without a user
// (BEHAVIOR.md R13).
type FileAccess struct {
	HeaderToken   string // X-Access-Token ("" when absent)
	Operation     string // OpRead or OpWrite
	Path          string // raw `path` ("" when absent)
	User          string // raw `username` ("" when absent)
	Signature     string // raw `signature`
	HasSignature  bool
	Expiration    int64 // `signature_expiration`, Unix seconds
	HasExpiration bool
}

// AuthorizeFile applies PROTOCOL.md 5.4 in its order: no token set allows
// everything; a header token must match (no fallback to the signature);
// else a valid, unexpired signature is needed. Refusals wrap
// errs.Unauthenticated. Comparisons are constant time (E41).
func (t *Token) AuthorizeFile(a FileAccess, now time.Time) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.set {
		return nil
	}
	if a.HeaderToken != "" {
		if subtle.ConstantTimeCompare(t.value, []byte(a.HeaderToken)) == 1 {
			return nil
		}
		return errs.New(errs.Unauthenticated, "access token present in header but does not match")
	}
	if !a.HasSignature {
		return errs.New(errs.Unauthenticated, "missing signature query parameter")
	}
	var exp *int64
	if a.HasExpiration {
		exp = &a.Expiration
	}
	want := sign(a.Path, a.Operation, a.User, t.value, exp)
	if subtle.ConstantTimeCompare([]byte(want), []byte(a.Signature)) != 1 {
		return errs.New(errs.Unauthenticated, "invalid signature")
	}
	// Equality is still valid (PROTOCOL.md 5.4 step 5).
	if a.HasExpiration && a.Expiration < now.Unix() {
		return errs.New(errs.Unauthenticated, "signature is already expired")
	}
	return nil
}

// Sign returns the v1 signature of a file URL for token (PROTOCOL.md 5.4):
// "v1_" + base64 std, unpadded, of sha256("path:op:user:token[:exp]").
func Sign(path, operation, user, token string, expiration *int64) string {
	return sign(path, operation, user, []byte(token), expiration)
}

func sign(path, operation, user string, token []byte, expiration *int64) string {
	h := sha256.New()
	h.Write([]byte(path))
	h.Write([]byte{':'})
	h.Write([]byte(operation))
	h.Write([]byte{':'})
	h.Write([]byte(user))
	h.Write([]byte{':'})
	h.Write(token)
	if expiration != nil {
		h.Write([]byte{':'})
		h.Write(strconv.AppendInt(nil, *expiration, 10))
	}
	var sum [sha256.Size]byte
	return "v1_" + base64.RawStdEncoding.EncodeToString(h.Sum(sum[:0]))
}

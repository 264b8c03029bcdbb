package auth

import (
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"strings"

	"github.com/sandboxd/envd/internal/errs"
)

// EmptyTokenHash is sha512hex(""): an MMDS accessTokenHash equal to it
// authorises resetting to no token (PROTOCOL.md 5.3).
const EmptyTokenHash = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"

// HashToken is the lowercase hex SHA-512 of a token, as MMDS carries it.
func HashToken(token string) string {
	sum := sha512.Sum512([]byte(token))
	return hex.EncodeToString(sum[:])
}

// DecideInit applies the /init token table of PROTOCOL.md 5.3 (BEHAVIOR.md
// 9.2), rows checked in order. current is envd's token; requestToken is the
// body's accessToken (nil when the field is absent); mmdsHash is MMDS
// accessTokenHash and hashKnown says whether MMDS answered at all (false
// when unreachable or with --isnotfc). An empty hash counts as missing.
//
// nil means allowed: the caller then stores *requestToken, or clears the
// token when requestToken is nil. A refusal wraps errs.Unauthenticated with
// the exact E2B text.
func DecideInit(current *Token, requestToken *string, mmdsHash string, hashKnown bool) error {
	if requestToken != nil && current.Equal(*requestToken) {
		return nil
	}
	hashPresent := hashKnown && mmdsHash != ""
	if hashPresent {
		h := []byte(strings.ToLower(mmdsHash))
		if requestToken != nil && subtle.ConstantTimeCompare([]byte(HashToken(*requestToken)), h) == 1 {
			return nil
		}
		if requestToken == nil && subtle.ConstantTimeCompare([]byte(EmptyTokenHash), h) == 1 {
			return nil
		}
	}
	if !current.IsSet() && !hashPresent {
		return nil
	}
	if requestToken == nil {
		return errs.New(errs.Unauthenticated, "access token reset not authorized")
	}
	return errs.New(errs.Unauthenticated, "access token validation failed")
}

// Package auth holds the access token (memory only) and checks requests
// against it in constant time (PROTOCOL.md 5).
package auth

import (
	"crypto/subtle"
	"sync"
)

// Token is the access token set by /init. The zero value holds no token,
// which leaves every route open (PROTOCOL.md 5.1).
type Token struct {
	mu    sync.RWMutex // guards value and set
	value []byte
	set   bool
}

// Set stores a new token, wiping the previous one.
func (t *Token) Set(v string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.value)
	t.value, t.set = []byte(v), true
}

// Clear removes the token, wiping it from memory.
func (t *Token) Clear() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.value)
	t.value, t.set = nil, false
}

// IsSet reports whether a token is set.
func (t *Token) IsSet() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.set
}

// Equal compares v with the token in constant time. It is false when no
// token is set.
func (t *Token) Equal(v string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.set && subtle.ConstantTimeCompare(t.value, []byte(v)) == 1
}

// Allows reports whether a request carrying header value v passes the
// gate: always when no token is set, else only with the exact token.
func (t *Token) Allows(v string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return !t.set || subtle.ConstantTimeCompare(t.value, []byte(v)) == 1
}

package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Keepalive interval bounds for every server stream (Start, Connect,
// WatchDir; PROTOCOL.md 3.3.7).
const (
	defaultKeepalive = 90 * time.Second
	maxKeepalive     = 24 * time.Hour
)

// keepaliveInterval parses Keepalive-Ping-Interval (seconds). A missing,
// unparsable, zero or negative value means the default, so no header can
// make a ticker panic as it does in the peers (E43); huge values are capped
// to stay a valid duration.
func keepaliveInterval(h http.Header) time.Duration {
	n, err := strconv.ParseInt(strings.TrimSpace(h.Get("Keepalive-Ping-Interval")), 10, 64)
	if err != nil || n <= 0 {
		return defaultKeepalive
	}
	if n > int64(maxKeepalive/time.Second) {
		return maxKeepalive
	}
	return time.Duration(n) * time.Second
}

package lifecycle

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sandboxd/envd/internal/wirekit"
)

// Metadata is what the host puts into Firecracker's MMDS. Every key is
// optional (BEHAVIOR.md 11.3 W6: Wrenn's host sends no address).
type Metadata struct {
	InstanceID      string // "instanceID"
	EnvID           string // "envID"
	Address         string // "address"
	AccessTokenHash string // "accessTokenHash"
}

// decodeMetadata reads the MMDS document's four keys (matched as
// encoding/json matches them: exactly, else ignoring case) and ignores the
// rest of it.
func decodeMetadata(b []byte) (Metadata, error) {
	var md Metadata
	d := wirekit.NewJSONDecoder(b)
	err := d.Object(func(key string) (err error) {
		var dst *string
		switch {
		case strings.EqualFold(key, "instanceID"):
			dst = &md.InstanceID
		case strings.EqualFold(key, "envID"):
			dst = &md.EnvID
		case strings.EqualFold(key, "address"):
			dst = &md.Address
		case strings.EqualFold(key, "accessTokenHash"):
			dst = &md.AccessTokenHash
		default:
			return d.Skip()
		}
		*dst, err = d.NullableString()
		return err
	})
	if err == nil {
		err = d.End()
	}
	return md, err
}

// Bounds on what MMDS may send back.
const (
	maxMMDSToken = 4 << 10
	maxMMDSBody  = 1 << 20
)

// mmdsClient speaks MMDS v2 (IMDSv2-style sessions, PROTOCOL.md 5.3) over
// one fresh connection per request: one kept across a pause can be half
// dead (BEHAVIOR.md 11.3 E25), and every request has its own deadline
// (E23). It writes its two fixed requests itself instead of linking
// net/http's client (transport, HTTP/2 client, cookies, proxies: ~0.4 MB
// of the binary for two link-local requests).
type mmdsClient struct {
	addr    string
	timeout time.Duration
}

func newMMDSClient(addr string, timeout time.Duration) *mmdsClient {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "80")
	}
	return &mmdsClient{addr: addr, timeout: timeout}
}

// fetch runs one token + metadata exchange.
func (c *mmdsClient) fetch(ctx context.Context) (Metadata, error) {
	var md Metadata
	tok, err := c.do(ctx, "PUT", "/latest/api/token", "X-metadata-token-ttl-seconds: 60\r\n", maxMMDSToken)
	if err != nil {
		return md, fmt.Errorf("mmds token: %w", err)
	}
	if len(tok) == 0 {
		return md, errors.New("mmds token: empty answer")
	}
	for _, b := range tok {
		if b < ' ' || b > '~' {
			return md, errors.New("mmds token: not a printable header value")
		}
	}
	body, err := c.do(ctx, "GET", "/", "X-metadata-token: "+string(tok)+"\r\nAccept: application/json\r\n", maxMMDSBody)
	if err != nil {
		return md, fmt.Errorf("mmds metadata: %w", err)
	}
	if md, err = decodeMetadata(body); err != nil {
		return md, fmt.Errorf("mmds metadata: %w", err)
	}
	return md, nil
}

// do sends one request (hdr: extra header lines) and returns a 200
// answer's body, at most limit bytes.
func (c *mmdsClient) do(ctx context.Context, method, path, hdr string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	req := method + " " + path + " HTTP/1.1\r\nHost: " + c.addr + "\r\nUser-Agent: envd\r\n" + hdr +
		"Content-Length: 0\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(conn, limit+64<<10)), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("answer over %d bytes", limit)
	}
	return b, nil
}

// poller polls MMDS every interval until one full success: unbounded at
// start, for RepollSpan after each /init (BEHAVIOR.md 7.1). It logs only a
// summary: when a bounded poll gives up, and once a minute while the
// start-up poll keeps failing.
type poller struct {
	l    *Lifecycle
	reqs chan time.Duration // 0 = until success; coalesced, one slot
	done chan struct{}      // a poll succeeded (tests); one slot, latest wins
}

func newPoller(l *Lifecycle) *poller {
	return &poller{l: l, reqs: make(chan time.Duration, 1), done: make(chan struct{}, 1)}
}

// kick asks for a poll bounded to span (0: until success). A request that
// finds one pending is dropped: the pending one covers it.
func (p *poller) kick(span time.Duration) {
	select {
	case p.reqs <- span:
	default:
	}
}

func (p *poller) run(ctx context.Context) {
	l := p.l
	if l.mmds == nil {
		return
	}
	var (
		active, unbounded bool
		deadline, report  time.Time
		fails             int
		lastErr           error
	)
	apply := func(span time.Duration) {
		now := time.Now()
		if !active {
			fails, lastErr, report = 0, nil, now
		}
		active = true
		if span == 0 {
			unbounded = true
		} else if d := now.Add(span); d.After(deadline) {
			deadline = d
		}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if !active {
			select {
			case <-ctx.Done():
				return
			case s := <-p.reqs:
				apply(s)
			}
		}
		md, err := l.mmds.fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			l.applyMetadata(md)
			active, unbounded, deadline = false, false, time.Time{}
			select {
			case p.done <- struct{}{}:
			default:
			}
			continue
		}
		fails, lastErr = fails+1, err
		now := time.Now()
		if !unbounded && now.After(deadline) {
			l.log.Warn("mmds poll gave up", "failures", fails, "err", lastErr)
			active, deadline = false, time.Time{}
			continue
		}
		if unbounded && now.Sub(report) >= time.Minute {
			l.log.Warn("mmds still unreachable", "failures", fails, "err", lastErr)
			report = now
		}
		timer.Reset(l.o.MMDSInterval)
		select {
		case <-ctx.Done():
			return
		case s := <-p.reqs:
			apply(s)
		case <-timer.C:
		}
	}
}

// applyMetadata stores the ids as internal variables and marker files
// (mode 0666, no newline; BEHAVIOR.md 1.5). An empty id does not erase a
// known one.
func (l *Lifecycle) applyMetadata(md Metadata) {
	for suffix, v := range map[string]string{"SANDBOX_ID": md.InstanceID, "TEMPLATE_ID": md.EnvID} {
		if v == "" {
			continue
		}
		name := l.o.Flavor.Env(suffix)
		l.o.Defaults.SetInternal(name, v)
		if err := writeRunFile(l.o.RunDir, "."+name, v, 0o666); err != nil {
			l.log.Warn("cannot write id file", "name", name, "err", err)
		}
	}
}

// writeRunFile writes dir/name with exactly mode (umask does not apply).
func writeRunFile(dir, name, value string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(value), mode); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

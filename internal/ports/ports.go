// Package ports mirrors loopback TCP listeners onto the forward address
// (BEHAVIOR.md 6, PROTOCOL.md 7.4): a server a user starts on 127.0.0.1 or
// ::1 inside the VM becomes reachable from the host at --forward-addr on
// the same port. envd relays the connections itself (no socat): one
// listener per forwarded port, two spliced copies per connection.
//
// Discovery reads the kernel's listening sockets through netlink sock_diag
// once per interval (falling back to /proc/net/tcp{,6}). A port whose
// listener closes stops being forwarded and its entry is deleted, so a
// later listener on the same port is forwarded again (E40). Connections
// already relayed when a port closes keep running until either side
// closes them; Stop closes them all.
package ports

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sandboxd/envd/internal/safe"
)

// Options configure a Forwarder.
type Options struct {
	Log *slog.Logger
	// ForwardAddr is the guest address the host connects to. Empty, a
	// loopback or an unspecified address disables forwarding: mirroring
	// loopback onto loopback reaches nobody new.
	ForwardAddr string
	Interval    time.Duration // scan period (default 1 s, as both peers)
	MaxConns    int           // concurrent relayed connections, all ports (default 1024)
	DialTimeout time.Duration // connecting to the loopback service (default 5 s)
}

// Forwarder owns the scanner, the forward listeners and the relays. Start
// and Stop may be called any number of times, in any order (W17).
type Forwarder struct {
	o      Options
	log    *slog.Logger
	fwd    netip.Addr // invalid: disabled
	slots  chan struct{}
	capped atomic.Bool // the cap was hit and not yet logged as cleared
	scans  atomic.Uint64

	mu  sync.Mutex // guards cur (Start/Stop)
	cur *cycle     // nil while stopped
}

// New validates the options. It does not start forwarding.
func New(o Options) (*Forwarder, error) {
	if o.Log == nil {
		return nil, errors.New("ports: missing Log")
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 1024
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	f := &Forwarder{o: o, log: o.Log, slots: make(chan struct{}, o.MaxConns)}
	a, err := netip.ParseAddr(o.ForwardAddr)
	switch {
	case err != nil:
		o.Log.Warn("port forwarding disabled: bad --forward-addr", "addr", o.ForwardAddr, "err", err)
	case a.Unmap().IsLoopback() || a.IsUnspecified():
		o.Log.Info("port forwarding disabled: --forward-addr is loopback or unspecified", "addr", o.ForwardAddr)
	default:
		f.fwd = a.Unmap()
	}
	return f, nil
}

// Start begins scanning and forwarding; a no-op while running.
func (f *Forwarder) Start() {
	if !f.fwd.IsValid() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != nil {
		return
	}
	c, err := newCycle(f)
	if err != nil {
		f.log.Error("port forwarding cannot start", "err", err)
		return
	}
	f.cur = c
	c.goRun("port scanner", c.scanLoop)
}

// Stop closes every forward listener and relayed connection and waits for
// all their goroutines; a no-op while stopped. Used before a snapshot.
func (f *Forwarder) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return
	}
	f.cur.shutdown()
	f.cur = nil
}

// Close is Stop, for the daemon's closers.
func (f *Forwarder) Close() error {
	f.Stop()
	return nil
}

// Scans counts completed scans (tests await them instead of sleeping).
func (f *Forwarder) Scans() uint64 { return f.scans.Load() }

// Forwarded lists the ports currently forwarded, ascending.
func (f *Forwarder) Forwarded() []int {
	f.mu.Lock()
	c := f.cur
	f.mu.Unlock()
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int, 0, len(c.fwds))
	for p := range c.fwds {
		out = append(out, int(p))
	}
	sort.Ints(out)
	return out
}

// cycle is one Start..Stop period. Everything it starts is waited for by
// shutdown, so a stopped forwarder leaves no goroutine, fd or listener.
type cycle struct {
	f      *Forwarder
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // scanner, accept loops and relays

	// Scanner state, used only by the scanner goroutine.
	diag    *diag      // nil: /proc fallback
	scratch []listener // fallback buffer
	want    map[uint16]netip.AddrPort
	wild    map[uint16]bool
	retry   map[uint16]time.Time // ports whose forward listener failed: next attempt
	lastErr string
	noAddr  bool // the missing forward address was logged

	mu     sync.Mutex // guards fwds and relays
	fwds   map[uint16]*forward
	relays map[*relay]struct{}
	closed bool
}

func newCycle(f *Forwarder) (*cycle, error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &cycle{f: f, ctx: ctx, cancel: cancel,
		want: map[uint16]netip.AddrPort{}, wild: map[uint16]bool{}, retry: map[uint16]time.Time{},
		fwds: map[uint16]*forward{}, relays: map[*relay]struct{}{}}
	d, err := newDiag()
	if err != nil {
		f.log.Info("netlink sock_diag unavailable; scanning /proc/net/tcp instead", "err", err)
	} else {
		c.diag = d
	}
	return c, nil
}

// goRun starts a goroutine that shutdown waits for.
func (c *cycle) goRun(what string, fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer safe.Recover(c.f.log, what)
		fn()
	}()
}

func (c *cycle) shutdown() {
	c.cancel()
	c.mu.Lock()
	c.closed = true
	for p, fw := range c.fwds {
		_ = fw.ln.Close()
		delete(c.fwds, p)
	}
	for r := range c.relays {
		r.close()
	}
	c.mu.Unlock()
	c.wg.Wait()
	if c.diag != nil {
		c.diag.close()
	}
}

// scanLoop reconciles at once and then every interval (E39: the ticker and
// the stop signal are selected together, so Stop never waits a period).
func (c *cycle) scanLoop() {
	t := time.NewTicker(c.f.o.Interval)
	defer t.Stop()
	for {
		c.reconcile()
		c.f.scans.Add(1)
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *cycle) scan() ([]listener, error) {
	if c.diag != nil {
		return c.diag.listeners()
	}
	var err error
	c.scratch, err = procListeners(c.scratch)
	return c.scratch, err
}

// reconcile makes the forward set match the loopback listeners.
func (c *cycle) reconcile() {
	ls, err := c.scan()
	if err != nil {
		if msg := err.Error(); msg != c.lastErr {
			c.f.log.Warn("port scan failed", "err", err)
			c.lastErr = msg
		}
		return
	}
	c.lastErr = ""
	clear(c.want)
	clear(c.wild)
	for _, l := range ls {
		target, wildcard := classify(l)
		switch {
		case wildcard:
			c.wild[l.port] = true // reachable already: no forward (E38)
		case target.IsValid():
			// Both families on one port: the IPv4 service wins.
			if prev, ok := c.want[l.port]; !ok || (prev.Addr().Is6() && target.Is4()) {
				c.want[l.port] = netip.AddrPortFrom(target, l.port)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	for p, fw := range c.fwds {
		t, ok := c.want[p]
		switch {
		case !ok || c.wild[p] || fw.dead.Load():
			_ = fw.ln.Close() // the accept loop ends; live relays carry on
			delete(c.fwds, p)
		case t != fw.target.Load().(netip.AddrPort):
			fw.target.Store(t)
		}
	}
	now := time.Now()
	for p, t := range c.want {
		if _, ok := c.fwds[p]; ok || c.wild[p] {
			continue
		}
		if at, ok := c.retry[p]; ok && now.Before(at) {
			continue
		}
		if err := c.forwardLocked(p, t); err != nil {
			_, logged := c.retry[p]
			switch {
			case errors.Is(err, syscall.EADDRNOTAVAIL):
				if !c.noAddr { // one line for all ports, not one per port
					c.f.log.Warn("cannot forward ports: the forward address is on no interface", "addr", c.f.fwd.String())
					c.noAddr = true
				}
			case !logged:
				c.f.log.Warn("cannot forward port: forward address taken", "port", p, "err", err)
			}
			c.retry[p] = now.Add(5 * time.Second)
			continue
		}
		if _, failed := c.retry[p]; failed {
			c.f.log.Info("port forwarded after earlier failure", "port", p)
		}
		delete(c.retry, p)
	}
	for p := range c.retry {
		if _, ok := c.want[p]; !ok {
			delete(c.retry, p)
		}
	}
}

var (
	loop4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	loop6 = netip.IPv6Loopback()
)

// classify returns the loopback service address a listener should be
// forwarded to (invalid: not forwarded), or wildcard for 0.0.0.0 and ::.
// Only 127.0.0.1, ::1 and ::ffff:127.0.0.1 are forwarded (7.4).
func classify(l listener) (target netip.Addr, wildcard bool) {
	var a netip.Addr
	if l.v6 {
		a = netip.AddrFrom16(l.addr).Unmap()
	} else {
		a = netip.AddrFrom4([4]byte(l.addr[:4]))
	}
	switch {
	case a.IsUnspecified():
		return netip.Addr{}, true
	case a == loop4:
		return loop4, false
	case a == loop6:
		return loop6, false
	}
	return netip.Addr{}, false
}

// forwardLocked opens the forward listener for port and starts its
// accept loop.
func (c *cycle) forwardLocked(port uint16, target netip.AddrPort) error {
	network := "tcp4"
	if c.f.fwd.Is6() {
		network = "tcp6"
	}
	ln, err := net.ListenTCP(network, net.TCPAddrFromAddrPort(netip.AddrPortFrom(c.f.fwd, port)))
	if err != nil {
		return err
	}
	fw := &forward{port: port, ln: ln}
	fw.target.Store(target)
	c.fwds[port] = fw
	c.f.log.Info("port forwarded", "port", port, "to", target.Addr().String())
	c.goRun("port forward accept loop", func() { c.accept(fw) })
	return nil
}

// net.TCPListener closes report this error.
func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }

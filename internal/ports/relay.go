package ports

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandboxd/envd/internal/safe"
)

// forward is one forwarded port: a listener on the forward address.
type forward struct {
	port   uint16
	ln     *net.TCPListener
	target atomic.Value // netip.AddrPort of the loopback service
	dead   atomic.Bool  // the accept loop ended on its own: re-create
}

// relay is one relayed connection pair.
type relay struct {
	client, service *net.TCPConn
	once            sync.Once
}

func (r *relay) close() {
	r.once.Do(func() {
		_ = r.client.Close()
		if r.service != nil {
			_ = r.service.Close()
		}
	})
}

// accept serves one forward listener until it is closed.
func (c *cycle) accept(fw *forward) {
	backoff := 5 * time.Millisecond
	for {
		conn, err := fw.ln.AcceptTCP()
		if err != nil {
			if isClosed(err) || c.ctx.Err() != nil {
				return
			}
			// EMFILE and friends: wait instead of spinning.
			c.f.log.Warn("port forward accept failed", "port", fw.port, "err", err)
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(backoff):
			}
			if backoff = 2 * backoff; backoff > time.Second {
				backoff = time.Second
				fw.dead.Store(true) // persistently failing: let the scanner re-create it
				_ = fw.ln.Close()
				return
			}
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case c.f.slots <- struct{}{}:
			if c.f.capped.CompareAndSwap(true, false) {
				c.f.log.Info("relayed connections below the cap again", "max", cap(c.f.slots))
			}
		default:
			if c.f.capped.CompareAndSwap(false, true) {
				c.f.log.Warn("relayed connection cap reached: refusing new forwarded connections", "max", cap(c.f.slots), "port", fw.port)
			}
			_ = conn.SetLinger(0)
			_ = conn.Close()
			continue
		}
		r := &relay{client: conn}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			_ = conn.Close()
			<-c.f.slots
			return
		}
		c.relays[r] = struct{}{}
		c.wg.Add(1)
		c.mu.Unlock()
		target := fw.target.Load().(netip.AddrPort)
		go func() {
			defer c.wg.Done()
			defer safe.Recover(c.f.log, "port relay")
			c.relay(r, target)
		}()
	}
}

// relay connects to the loopback service and copies both ways until both
// directions ended. EOF on one side half-closes the other (CloseWrite),
// so request/response protocols that shut down their write side work.
func (c *cycle) relay(r *relay, target netip.AddrPort) {
	defer func() {
		r.close()
		c.mu.Lock()
		delete(c.relays, r)
		c.mu.Unlock()
		<-c.f.slots
	}()
	d := net.Dialer{Timeout: c.f.o.DialTimeout}
	conn, err := d.DialContext(c.ctx, "tcp", target.String())
	if err != nil {
		return // the client sees its connection closed
	}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		r.service = conn.(*net.TCPConn) // from here on shutdown closes it
	}
	c.mu.Unlock()
	if closed {
		_ = conn.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer safe.Recover(c.f.log, "port relay upstream")
		pipe(r, r.service, r.client)
	}()
	pipe(r, r.client, r.service)
	wg.Wait()
}

// pipe copies src to dst. At EOF it half-closes dst; on an error it closes
// the pair so the other direction ends too.
func pipe(r *relay, dst, src *net.TCPConn) {
	if _, err := spliceCopy(dst, src); err != nil {
		r.close()
		return
	}
	_ = dst.CloseWrite()
}

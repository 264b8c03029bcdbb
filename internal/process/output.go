package process

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandboxd/envd/internal/safe"
)

// chunk is a pooled read buffer handed to subscribers without a copy. refs
// counts the reader and every queue holding it; the last release returns
// it to the pool. A chunk left in an abandoned queue is simply collected.
type chunk struct {
	buf  []byte
	refs atomic.Int32
}

// smallRead is the size up to which a read is copied into an exact-size
// slice instead of handing over the pooled buffer: a queue of tiny
// interactive reads must not pin full-size buffers.
const smallRead = 16 << 10

// firstRead is the size of a reader's initial buffer (see readerLoop).
const firstRead = 4 << 10

type chunkPool struct{ p sync.Pool }

func (cp *chunkPool) get() *chunk {
	if c, ok := cp.p.Get().(*chunk); ok {
		return c
	}
	return &chunk{buf: make([]byte, pipeChunk)}
}

func (cp *chunkPool) release(c *chunk) {
	if c != nil && c.refs.Add(-1) == 0 {
		cp.p.Put(c)
	}
}

// readers returns the output reader loops to run.
func (p *Proc) readers() []func() {
	if p.pty != nil {
		return []func(){p.readerLoop(p.pty, PTY, ptyChunk)}
	}
	return []func(){p.readerLoop(p.out[0], Stdout, pipeChunk), p.readerLoop(p.out[1], Stderr, pipeChunk)}
}

func (p *Proc) readerLoop(f *os.File, stream Stream, size int) func() {
	return func() {
		defer p.m.wg.Done()
		defer func() { p.eof <- struct{}{} }()
		defer safe.Recover(p.m.log, "process output reader")
		stall := time.NewTimer(time.Hour)
		stall.Stop()
		// Start with a small buffer: most processes print little, and a
		// pooled full-size buffer per stream would dominate a short
		// command's cost. A read that fills it switches to pooled buffers.
		small := make([]byte, firstRead)
		var c *chunk
		for {
			buf := small
			if small == nil {
				if c == nil {
					c = p.m.chunks.get()
				}
				buf = c.buf[:size]
			}
			n, err := f.Read(buf)
			if n > 0 {
				if p.deliver(stream, buf[:n], c, stall) {
					c = nil // handed over; the queues release it
				}
				if n == len(small) {
					small = nil
				}
			}
			if err != nil {
				// EOF, EIO from a PTY whose slave side is closed (E9), or
				// the file closed by the waiter after a signal.
				return
			}
		}
	}
}

// deliver hands one read to every subscriber, blocking while a queue is
// full (backpressure) up to the stall timeout. b lies in c's buffer when c
// is set; it reports whether c was handed over (and must not be reused).
func (p *Proc) deliver(stream Stream, b []byte, c *chunk, stall *time.Timer) bool {
	p.mu.Lock()
	subs := p.subs
	p.mu.Unlock()
	if len(subs) == 0 {
		return false // nobody listens: drained and dropped (E3)
	}
	ev := Event{Stream: stream}
	if c == nil || len(b) <= smallRead {
		ev.Data = append([]byte(nil), b...)
	} else {
		ev.Data, ev.c = b[:len(b):len(b)], c
		c.refs.Store(1) // the reader's own reference, dropped below
		defer p.m.chunks.release(c)
	}
	// One stall deadline for the whole read, armed by the first full
	// queue: k stuck subscribers cost one StallTimeout, not k of them.
	d := stallDeadline{t: stall}
	defer d.stop()
	for _, s := range subs {
		if ev.c != nil {
			ev.c.refs.Add(1)
		}
		if !p.enqueue(s, ev, &d) {
			p.m.chunks.release(ev.c)
		}
	}
	return ev.c != nil
}

// stallDeadline is the shared deadline of one deliver call.
type stallDeadline struct {
	t            *time.Timer
	armed, fired bool
}

func (d *stallDeadline) stop() {
	if d.armed && !d.fired {
		d.t.Stop()
	}
}

// enqueue puts ev on s's queue and reports whether it did. A subscriber
// still full when the deadline has passed is disconnected.
func (p *Proc) enqueue(s *Sub, ev Event, d *stallDeadline) bool {
	select {
	case s.q <- ev:
		return true
	default:
	}
	if d.fired {
		p.kick(s)
		return false
	}
	if !d.armed {
		d.t.Reset(p.m.stall)
		d.armed = true
	}
	select {
	case s.q <- ev:
		return true
	case <-s.gone:
	case <-p.reaped:
	case <-p.m.closing:
	case <-d.t.C:
		d.fired = true
		p.kick(s)
	}
	return false
}

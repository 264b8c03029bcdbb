package ports

import (
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// benchThroughput writes b.N MiB to addr, where a sink discards it, and
// reports MB/s through b.SetBytes.
func benchThroughput(b *testing.B, relayed bool) {
	needNetns(b)
	sink := serve(b, "127.0.0.1:0", func(c *net.TCPConn) {
		_, _ = io.Copy(io.Discard, c)
		_, _ = c.Write([]byte{1})
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sink.port))
	if relayed {
		startFwd(b, Options{})
		addr = sink.fwd()
	}
	c := dialWithin(b, addr, 2*time.Second)
	defer c.Close()
	block := make([]byte, 1<<20)
	b.SetBytes(int64(len(block)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	_ = c.CloseWrite()
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil { // everything arrived
		b.Fatal(err)
	}
}

// BenchmarkRelayThroughput: one connection through the forward address.
func BenchmarkRelayThroughput(b *testing.B) { benchThroughput(b, true) }

// BenchmarkDirectThroughput: the same connection straight to the service.
func BenchmarkDirectThroughput(b *testing.B) { benchThroughput(b, false) }

// benchScan measures one discovery pass with 20 loopback listeners.
func benchScan(b *testing.B, scan func() error) {
	needNetns(b)
	for i := 0; i < 20; i++ {
		serve(b, "127.0.0.1:0", echo)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := scan(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanSockDiag is the netlink scan envd uses.
func BenchmarkScanSockDiag(b *testing.B) {
	d, err := newDiag()
	if err != nil {
		b.Fatal(err)
	}
	defer d.close()
	benchScan(b, func() error { _, err := d.listeners(); return err })
}

// BenchmarkScanProcNet is the peers' /proc/net/tcp{,6} parse (our fallback).
func BenchmarkScanProcNet(b *testing.B) {
	var buf []listener
	benchScan(b, func() (err error) { buf, err = procListeners(buf); return err })
}

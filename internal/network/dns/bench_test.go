package dns

import (
	"net"
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// benchQueries sends b.N queries for name over one connected UDP socket
// per goroutine and checks each answer.
func benchQueries(b *testing.B, name string) {
	up := startUpstream(b, answerA("198.51.100.7"))
	_, addr := startServer(b, Config{Upstreams: []netip.AddrPort{up.addr}})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("udp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		co := &mdns.Conn{Conn: c}
		m := new(mdns.Msg)
		m.SetQuestion(name, mdns.TypeA)
		for pb.Next() {
			m.Id = mdns.Id()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if err := co.WriteMsg(m); err != nil {
				b.Error(err)
				return
			}
			r, err := co.ReadMsg()
			if err != nil || r.Id != m.Id || len(r.Answer) != 1 {
				b.Errorf("answer %v: %v", r, err)
				return
			}
		}
	})
}

// BenchmarkLocal: a container name answered from Lookup.
func BenchmarkLocal(b *testing.B) { benchQueries(b, "web.") }

// BenchmarkForward: a name forwarded to an upstream on loopback.
func BenchmarkForward(b *testing.B) { benchQueries(b, "example.org.") }

package dns

import (
	"context"
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestParseReverse(t *testing.T) {
	tests := []struct {
		name string
		want string // "" means not a reverse name
	}{
		{"4.3.2.1.in-addr.arpa.", "1.2.3.4"},
		{"4.3.2.1.IN-ADDR.ARPA", "1.2.3.4"},
		{"0.0.0.0.in-addr.arpa.", "0.0.0.0"},
		{"255.255.255.255.in-addr.arpa.", "255.255.255.255"},
		{"256.0.0.1.in-addr.arpa.", ""},
		{"01.0.0.1.in-addr.arpa.", ""},
		{"+1.0.0.1.in-addr.arpa.", ""},
		{"3.2.1.in-addr.arpa.", ""},
		{"5.4.3.2.1.in-addr.arpa.", ""},
		{".3.2.1.in-addr.arpa.", ""},
		{"in-addr.arpa.", ""},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", "::1"},
		{"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.IP6.ARPA.", "4321:0:1:2:3:4:567:89ab"},
		{"1.0.0.ip6.arpa.", ""},
		{"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", ""},
		{"10.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", ""},
		{"example.org.", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseReverse(tt.name)
			if tt.want == "" {
				if ok {
					t.Fatalf("parsed as %s", got)
				}
				return
			}
			if !ok || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("got %s %v, want %s", got, ok, tt.want)
			}
			// The inverse of miekg/dns's ReverseAddr.
			arpa, err := mdns.ReverseAddr(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if back, ok := parseReverse(arpa); !ok || back != got {
				t.Fatalf("%s parsed as %s %v", arpa, back, ok)
			}
		})
	}
}

func TestIsSelf(t *testing.T) {
	self := []netip.AddrPort{
		netip.MustParseAddrPort("10.88.0.1:53"),
		netip.MustParseAddrPort("[fd00:88::1]:53"),
	}
	wildcard := []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:5353")}
	tests := []struct {
		up   string
		self []netip.AddrPort
		want bool
	}{
		{"10.88.0.1:53", self, true},
		{"[::ffff:10.88.0.1]:53", self, true},
		{"[fd00:88::1]:53", self, true},
		{"10.88.0.1:54", self, false},
		{"10.88.0.2:53", self, false},
		{"127.0.0.53:53", self, false},
		{"127.0.0.1:5353", wildcard, true},
		{"127.0.0.1:53", wildcard, false},
		{"192.0.2.1:5353", wildcard, false},
	}
	for _, tt := range tests {
		if got := isSelf(netip.MustParseAddrPort(tt.up), tt.self); got != tt.want {
			t.Errorf("isSelf(%s, %v) = %v, want %v", tt.up, tt.self, got, tt.want)
		}
	}
}

// FuzzHandle feeds raw packets to the request handler: it must never
// panic, and whatever it answers must be a well-formed response to the
// query, within the UDP size limit.
func FuzzHandle(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		edns  bool
	}{
		{"web.", mdns.TypeA, false},
		{"WEB.mynet.", mdns.TypeAAAA, true},
		{"web-alias.", mdns.TypeANY, false},
		{"2.0.88.10.in-addr.arpa.", mdns.TypePTR, true},
		{"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.8.0.0.0.0.d.f.ip6.arpa.", mdns.TypePTR, false},
		{"example.org.", mdns.TypeMX, false},
	} {
		m := new(mdns.Msg)
		m.SetQuestion(q.name, q.qtype)
		if q.edns {
			m.SetEdns0(4096, true)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add([]byte{}, false)
	f.Add([]byte("\x00\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00"), false)

	many := make([]netip.Addr, 0, 100)
	for i := range 100 {
		many = append(many, netip.AddrFrom4([4]byte{10, 88, 1, byte(i)}))
	}
	// No upstreams: forwarded questions get SERVFAIL at once, so the
	// fuzzer stays on the local and parsing paths.
	s, err := New(Config{
		Domain: "mynet",
		Lookup: func(name string) []netip.Addr {
			if name == "many" {
				return many
			}
			return testLookup(name)
		},
		Reverse: testReverse,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte, tcp bool) {
		out := s.handle(context.Background(), raw, netip.MustParseAddr("10.88.0.5"), tcp)
		if out == nil {
			return
		}
		req := new(mdns.Msg)
		if err := req.Unpack(raw); err != nil {
			t.Fatalf("answered a packet that does not parse: %v", err)
		}
		resp := new(mdns.Msg)
		if err := resp.Unpack(out); err != nil {
			t.Fatalf("answer does not parse: %v", err)
		}
		if !resp.Response || resp.Id != req.Id {
			t.Fatalf("answer qr %v id %d, query id %d", resp.Response, resp.Id, req.Id)
		}
		limit := mdns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > limit {
			limit = min(int(opt.UDPSize()), ourUDPSize)
		}
		if !tcp && len(out) > limit {
			t.Fatalf("udp answer of %d bytes, limit %d", len(out), limit)
		}
	})
}

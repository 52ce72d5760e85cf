package dns

import (
	"context"
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

// ourUDPSize is the EDNS0 payload size the server advertises: the
// size DNS flag day 2020 recommends, which avoids IP fragmentation.
const ourUDPSize = 1232

// handle answers one raw query and returns the raw answer, or nil when
// the packet gets no answer at all: unparsable bytes and DNS responses
// are dropped, so the server can never be made to answer itself or to
// reflect garbage. tcp tells which transport the query came on (the
// size limit and the upstream transport depend on it); client is the
// sender's address.
func (s *Server) handle(ctx context.Context, raw []byte, client netip.Addr, tcp bool) []byte {
	req := new(mdns.Msg)
	if err := req.Unpack(raw); err != nil {
		return nil
	}
	if req.Response || !countsMatch(raw, req) {
		return nil
	}
	resp := s.answer(ctx, req, client, tcp)
	return s.pack(req, resp, tcp)
}

// countsMatch reports whether the section counts of the header are the
// records the packet holds: miekg/dns stops quietly at the end of a
// packet that announces more, and such a packet is garbage, not a query.
func countsMatch(raw []byte, m *mdns.Msg) bool {
	if len(raw) < 12 {
		return false
	}
	return int(binary.BigEndian.Uint16(raw[4:])) == len(m.Question) &&
		int(binary.BigEndian.Uint16(raw[6:])) == len(m.Answer) &&
		int(binary.BigEndian.Uint16(raw[8:])) == len(m.Ns) &&
		int(binary.BigEndian.Uint16(raw[10:])) == len(m.Extra)
}

// answer builds the answer to a parsed query.
func (s *Server) answer(ctx context.Context, req *mdns.Msg, client netip.Addr, tcp bool) *mdns.Msg {
	if req.Opcode != mdns.OpcodeQuery {
		return reply(req, mdns.RcodeNotImplemented)
	}
	if len(req.Question) != 1 {
		return reply(req, mdns.RcodeFormatError)
	}
	if resp := s.answerLocal(req); resp != nil {
		return resp
	}
	return s.forward(ctx, req, client, tcp)
}

// reply is an empty answer to req with rcode.
func reply(req *mdns.Msg, rcode int) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	return m
}

// answerLocal answers from the network's names, or returns nil when the
// question is not about a local name or address.
func (s *Server) answerLocal(req *mdns.Msg) *mdns.Msg {
	q := req.Question[0]
	if q.Qclass != mdns.ClassINET {
		return nil
	}
	if q.Qtype == mdns.TypePTR {
		if m := s.answerPTR(req); m != nil {
			return m
		}
		// Not a local address: maybe a PTR question about a local name,
		// which gets NODATA below.
	}
	addrs := s.resolve(q.Name)
	if len(addrs) == 0 {
		return nil
	}
	// The name is ours: every type gets an answer here, an empty one
	// (NODATA) for types other than A and AAAA, so no container name
	// leaks to the upstream servers.
	m := reply(req, mdns.RcodeSuccess)
	m.Authoritative = true
	for _, a := range addrs {
		hdr := mdns.RR_Header{Name: q.Name, Class: mdns.ClassINET, Ttl: LocalTTL}
		switch {
		case a.Is4() && (q.Qtype == mdns.TypeA || q.Qtype == mdns.TypeANY):
			hdr.Rrtype = mdns.TypeA
			m.Answer = append(m.Answer, &mdns.A{Hdr: hdr, A: a.AsSlice()})
		case a.Is6() && (q.Qtype == mdns.TypeAAAA || q.Qtype == mdns.TypeANY):
			hdr.Rrtype = mdns.TypeAAAA
			m.Answer = append(m.Answer, &mdns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	return m
}

// resolve looks qname up locally: as it is, then without the network's
// domain. IPv4-mapped IPv6 addresses come back unmapped.
func (s *Server) resolve(qname string) []netip.Addr {
	name, ok := localName(qname)
	if !ok {
		return nil
	}
	if addrs := s.lookupAddrs(name); len(addrs) > 0 {
		return addrs
	}
	if s.domain != "" {
		if short, ok := strings.CutSuffix(name, "."+s.domain); ok && short != "" {
			return s.lookupAddrs(short)
		}
	}
	return nil
}

func (s *Server) lookupAddrs(name string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s.lookup(name) {
		if a.IsValid() {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// localName turns a query name into the form Lookup takes: lower case,
// no trailing dot. Names with escapes (bytes outside a hostname's
// alphabet) are never local.
func localName(qname string) (string, bool) {
	name := strings.TrimSuffix(strings.ToLower(qname), ".")
	if name == "" || strings.ContainsRune(name, '\\') {
		return "", false
	}
	return name, true
}

// answerPTR answers a reverse query for a local address, or returns nil.
func (s *Server) answerPTR(req *mdns.Msg) *mdns.Msg {
	if s.reverse == nil {
		return nil
	}
	q := req.Question[0]
	addr, ok := parseReverse(q.Name)
	if !ok {
		return nil
	}
	names := s.reverse(addr)
	if len(names) == 0 {
		return nil
	}
	m := reply(req, mdns.RcodeSuccess)
	m.Authoritative = true
	for _, n := range names {
		n, ok := localName(n)
		if !ok {
			continue
		}
		if s.domain != "" && n != s.domain && !strings.HasSuffix(n, "."+s.domain) {
			n += "." + s.domain
		}
		if _, ok := mdns.IsDomainName(n); !ok {
			continue
		}
		m.Answer = append(m.Answer, &mdns.PTR{
			Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypePTR, Class: mdns.ClassINET, Ttl: LocalTTL},
			Ptr: mdns.Fqdn(n),
		})
	}
	if len(m.Answer) == 0 {
		return nil
	}
	return m
}

// parseReverse turns "4.3.2.1.in-addr.arpa." or the 32-nibble
// "….ip6.arpa." form into the address it names.
func parseReverse(qname string) (netip.Addr, bool) {
	name := strings.TrimSuffix(strings.ToLower(qname), ".")
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			// Decimal only, no leading zeros or signs: strconv would
			// accept "+1" or "01".
			if l == "" || len(l) > 3 || (len(l) > 1 && l[0] == '0') || strings.Trim(l, "0123456789") != "" {
				return netip.Addr{}, false
			}
			n, err := strconv.Atoi(l)
			if err != nil || n > 255 {
				return netip.Addr{}, false
			}
			b[3-i] = byte(n)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			if len(l) != 1 {
				return netip.Addr{}, false
			}
			n, err := strconv.ParseUint(l, 16, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			// labels[0] is the lowest nibble of the last byte.
			pos := 31 - i
			if pos%2 == 0 {
				b[pos/2] |= byte(n) << 4
			} else {
				b[pos/2] |= byte(n)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// pack serialises resp for the transport: over UDP it is cut to what the
// client can take (512 bytes, or its EDNS0 size), with TC set when
// records had to go. It returns nil if resp cannot be packed.
func (s *Server) pack(req, resp *mdns.Msg, tcp bool) []byte {
	resp.Id = req.Id
	reqOpt := req.IsEdns0()
	if reqOpt != nil && resp.IsEdns0() == nil {
		// RFC 6891 §7: answer an EDNS query with an OPT record.
		resp.SetEdns0(ourUDPSize, reqOpt.Do())
	}
	if reqOpt == nil {
		// A client without EDNS must not get an OPT record (an
		// upstream's answer may carry one: ours asked with the
		// client's own query, so this only happens with odd upstreams).
		removeOPT(resp)
	}
	resp.Truncate(sizeLimit(reqOpt, tcp))
	b, err := resp.Pack()
	if err != nil {
		// An upstream answer that parsed but does not pack again
		// (miekg/dns is stricter on the way out): the client gets
		// SERVFAIL rather than silence.
		fail := reply(req, mdns.RcodeServerFailure)
		if reqOpt != nil {
			fail.SetEdns0(ourUDPSize, reqOpt.Do())
		}
		b, err = fail.Pack()
		if err != nil {
			return nil
		}
	}
	return b
}

// sizeLimit is the largest answer the client takes: over TCP, what the
// 16-bit length prefix allows; over UDP, 512 bytes without EDNS0, else
// the smaller of the client's and our EDNS0 size (RFC 6891 §6.2.5),
// which keeps answers unfragmented.
func sizeLimit(reqOpt *mdns.OPT, tcp bool) int {
	if tcp {
		return dnsMaxMsg
	}
	size := mdns.MinMsgSize
	if reqOpt != nil {
		size = max(size, min(int(reqOpt.UDPSize()), ourUDPSize))
	}
	return size
}

func removeOPT(m *mdns.Msg) {
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != mdns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	m.Extra = extra
}

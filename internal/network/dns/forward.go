package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// forward asks the upstream servers, in order, and returns the first
// answer that is not a failure. Over UDP a truncated answer is asked
// again over TCP; a client that came over TCP is forwarded over TCP.
// SERVFAIL and REFUSED from an upstream mean "try the next one", as a
// stub resolver would do; when none is left the client gets SERVFAIL.
func (s *Server) forward(ctx context.Context, req *mdns.Msg, client netip.Addr, tcp bool) *mdns.Msg {
	for _, up := range s.upstreamsFor(client) {
		resp, err := s.exchangeUpstream(ctx, req, up, tcp)
		if err != nil {
			s.log.Debug("dns upstream failed", "upstream", up, "name", req.Question[0].Name, "err", err)
			continue
		}
		if resp.Rcode == mdns.RcodeServerFailure || resp.Rcode == mdns.RcodeRefused {
			s.log.Debug("dns upstream refused", "upstream", up, "name", req.Question[0].Name, "rcode", mdns.RcodeToString[resp.Rcode])
			continue
		}
		return resp
	}
	return reply(req, mdns.RcodeServerFailure)
}

// upstreamsFor returns the servers to forward a client's queries to,
// without the server's own addresses: forwarding to itself would loop.
func (s *Server) upstreamsFor(client netip.Addr) []netip.AddrPort {
	ups := *s.upstreams.Load()
	if s.clientUpstreams != nil {
		if u := s.clientUpstreams(client); u != nil {
			ups = u
		}
	}
	self := *s.self.Load()
	out := make([]netip.AddrPort, 0, len(ups))
	for _, u := range ups {
		if checkUpstream(u) != nil || isSelf(u, self) {
			continue
		}
		out = append(out, u)
	}
	return out
}

// isSelf reports whether u is one of the listening addresses. A server
// on the wildcard address also answers on loopback, so a loopback
// upstream on its port is itself too.
func isSelf(u netip.AddrPort, self []netip.AddrPort) bool {
	ua := u.Addr().Unmap().WithZone("")
	for _, a := range self {
		if a.Port() != u.Port() {
			continue
		}
		sa := a.Addr().WithZone("")
		if sa == ua {
			return true
		}
		if sa.IsUnspecified() && (ua.IsLoopback() || ua.IsUnspecified()) {
			return true
		}
	}
	return false
}

// exchangeUpstream sends req to one upstream (with a fresh id, so an
// off-path sender has to guess it) and returns the answer with the
// client's id back in place.
func (s *Server) exchangeUpstream(ctx context.Context, req *mdns.Msg, up netip.AddrPort, tcp bool) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	q := req.Copy()
	q.Id = mdns.Id()
	network := "udp"
	if tcp {
		network = "tcp"
	}
	resp, err := s.exchange(ctx, q, up, network)
	if err == nil && resp.Truncated && network == "udp" {
		network = "tcp"
		resp, err = s.exchange(ctx, q, up, network)
	}
	if err != nil {
		return nil, fmt.Errorf("forward to %s over %s: %w", up, network, err)
	}
	if len(resp.Question) == 0 && resp.Rcode != mdns.RcodeSuccess && resp.Rcode != mdns.RcodeNameError {
		// Servers may leave the question out of an error (FORMERR,
		// NOTIMP); give the client its question back.
		resp.Question = req.Question
	}
	if !sameQuestion(req.Question, resp.Question) {
		return nil, fmt.Errorf("forward to %s: answer to another question", up)
	}
	resp.Id = req.Id
	return resp, nil
}

func sameQuestion(a, b []mdns.Question) bool {
	if len(a) != 1 || len(b) != 1 {
		return false
	}
	return a[0].Qtype == b[0].Qtype && a[0].Qclass == b[0].Qclass && strings.EqualFold(a[0].Name, b[0].Name)
}

// exchange sends q to up over network and reads the answer. The context
// bounds it: its deadline becomes the socket's, and its cancellation (a
// Shutdown giving up) closes the socket.
func (s *Server) exchange(ctx context.Context, q *mdns.Msg, up netip.AddrPort, network string) (*mdns.Msg, error) {
	c, err := s.dial(ctx, network, up.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	// The client only carries settings: the timeout is the context's.
	// Over UDP, miekg/dns reads answers up to the query's EDNS0 size, or
	// UDPSize without EDNS0: more than the 512 bytes an upstream may send
	// then, for upstreams that send more anyway (the client's own limit
	// is applied when the answer is sent on).
	cl := &mdns.Client{Net: network, UDPSize: upstreamUDPSize, Timeout: s.timeout}
	resp, _, err := cl.ExchangeWithConnContext(ctx, q, &mdns.Conn{Conn: c})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	if !resp.Response {
		return nil, errors.New("upstream sent a query, not an answer")
	}
	return resp, nil
}

// upstreamUDPSize is the UDP read buffer for answers to queries without
// EDNS0.
const upstreamUDPSize = 4096

func (s *Server) dial(ctx context.Context, network, address string) (net.Conn, error) {
	if s.dialer != nil {
		return s.dialer(ctx, network, address)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

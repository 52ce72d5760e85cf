package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// names is the test network: two containers, one with an alias and an
// IPv6 address.
var names = map[string][]netip.Addr{
	"web":       {netip.MustParseAddr("10.88.0.2"), netip.MustParseAddr("fd00:88::2")},
	"web-alias": {netip.MustParseAddr("10.88.0.2"), netip.MustParseAddr("fd00:88::2")},
	"db":        {netip.MustParseAddr("10.88.0.3")},
}

func testLookup(name string) []netip.Addr { return names[name] }

func testReverse(a netip.Addr) []string {
	switch a {
	case netip.MustParseAddr("10.88.0.2"), netip.MustParseAddr("fd00:88::2"):
		return []string{"web"}
	case netip.MustParseAddr("10.88.0.3"):
		return []string{"db"}
	}
	return nil
}

// listenPair opens UDP and TCP on the same random loopback port.
func listenPair(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue // the TCP port is taken: try another
		}
		return pc, ln
	}
	t.Fatal("no free udp+tcp port pair on loopback")
	return nil, nil
}

// startServer starts a server from cfg (Lookup and Reverse default to the
// test network) and returns its address.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Lookup == nil {
		cfg.Lookup = testLookup
	}
	if cfg.Reverse == nil {
		cfg.Reverse = testReverse
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, ln := listenPair(t)
	if err := s.Start(pc, ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, pc.LocalAddr().String()
}

// upstream is a real DNS server on loopback that the test controls: the
// test double for the host's resolver.
type upstream struct {
	addr    netip.AddrPort
	udp     atomic.Int32
	tcp     atomic.Int32
	handler func(w mdns.ResponseWriter, r *mdns.Msg)
}

func (u *upstream) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	if w.LocalAddr().Network() == "tcp" {
		u.tcp.Add(1)
	} else {
		u.udp.Add(1)
	}
	u.handler(w, r)
}

// startUpstream serves handler on a random loopback port (UDP and TCP).
func startUpstream(t testing.TB, handler func(w mdns.ResponseWriter, r *mdns.Msg)) *upstream {
	t.Helper()
	u := &upstream{handler: handler}
	pc, ln := listenPair(t)
	u.addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: u}, {Listener: ln, Handler: u}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

// answerA answers every A question with the given addresses.
func answerA(addrs ...string) func(w mdns.ResponseWriter, r *mdns.Msg) {
	return func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		for _, a := range addrs {
			rr, err := mdns.NewRR(fmt.Sprintf("%s 300 IN A %s", r.Question[0].Name, a))
			if err != nil {
				panic(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	}
}

func rcodeHandler(rcode int) func(w mdns.ResponseWriter, r *mdns.Msg) {
	return func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetRcode(r, rcode)
		w.WriteMsg(m)
	}
}

// deadUpstream is a loopback UDP address nothing answers on (a socket
// that reads and never replies), so queries to it time out.
func deadUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// closedUpstream is a loopback port with no socket: UDP gets ICMP port
// unreachable, TCP a reset.
func closedUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(pc.LocalAddr().String())
	pc.Close()
	return a
}

func query(t *testing.T, server, network, name string, qtype uint16, edns uint16) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), qtype)
	if edns != 0 {
		m.SetEdns0(edns, false)
	}
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, mdns.TypeToString[qtype], network, err)
	}
	if r.Id != m.Id {
		t.Fatalf("answer id %d, query id %d", r.Id, m.Id)
	}
	return r
}

func answers(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *mdns.A:
			out = append(out, rr.A.String())
		case *mdns.AAAA:
			out = append(out, rr.AAAA.String())
		case *mdns.PTR:
			out = append(out, rr.Ptr)
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func TestLocalNames(t *testing.T) {
	up := startUpstream(t, answerA("198.51.100.7"))
	_, addr := startServer(t, Config{Domain: "mynet", Upstreams: []netip.AddrPort{up.addr}})
	tests := []struct {
		name    string
		qname   string
		qtype   uint16
		network string
		want    []string
	}{
		{"container name", "web", mdns.TypeA, "udp", []string{"10.88.0.2"}},
		{"alias", "web-alias", mdns.TypeA, "udp", []string{"10.88.0.2"}},
		{"upper case", "WeB", mdns.TypeA, "udp", []string{"10.88.0.2"}},
		{"with domain", "db.mynet", mdns.TypeA, "udp", []string{"10.88.0.3"}},
		{"with domain upper case", "DB.MyNet", mdns.TypeA, "udp", []string{"10.88.0.3"}},
		{"AAAA", "web", mdns.TypeAAAA, "udp", []string{"fd00:88::2"}},
		{"AAAA of an IPv4-only name is NODATA", "db", mdns.TypeAAAA, "udp", nil},
		{"MX of a local name is NODATA", "web", mdns.TypeMX, "udp", nil},
		{"ANY", "web", mdns.TypeANY, "udp", []string{"10.88.0.2", "fd00:88::2"}},
		{"over TCP", "web", mdns.TypeA, "tcp", []string{"10.88.0.2"}},
		{"PTR IPv4", "2.0.88.10.in-addr.arpa", mdns.TypePTR, "udp", []string{"web.mynet."}},
		{"PTR IPv6", "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.8.0.0.0.0.d.f.ip6.arpa", mdns.TypePTR, "udp", []string{"web.mynet."}},
		{"PTR over TCP", "3.0.88.10.in-addr.arpa", mdns.TypePTR, "tcp", []string{"db.mynet."}},
		{"PTR of a local name is NODATA", "web", mdns.TypePTR, "udp", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := query(t, addr, tt.network, tt.qname, tt.qtype, 0)
			if r.Rcode != mdns.RcodeSuccess || !r.Authoritative {
				t.Fatalf("rcode %s aa %v, want NOERROR aa", mdns.RcodeToString[r.Rcode], r.Authoritative)
			}
			if got := answers(r); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("answers %v, want %v", got, tt.want)
			}
			for _, rr := range r.Answer {
				if rr.Header().Ttl != LocalTTL {
					t.Errorf("ttl %d, want %d", rr.Header().Ttl, LocalTTL)
				}
			}
		})
	}
	if n := up.udp.Load() + up.tcp.Load(); n != 0 {
		t.Fatalf("local names reached the upstream %d times", n)
	}
}

func TestForward(t *testing.T) {
	up := startUpstream(t, func(w mdns.ResponseWriter, r *mdns.Msg) {
		if r.Question[0].Name == "missing.example." {
			rcodeHandler(mdns.RcodeNameError)(w, r)
			return
		}
		answerA("198.51.100.7")(w, r)
	})
	_, addr := startServer(t, Config{Domain: "mynet", Upstreams: []netip.AddrPort{up.addr}})
	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		network   string
		wantRcode int
		want      []string
	}{
		{"unknown name", "example.org", mdns.TypeA, "udp", mdns.RcodeSuccess, []string{"198.51.100.7"}},
		{"unknown name in the domain", "gone.mynet", mdns.TypeA, "udp", mdns.RcodeSuccess, []string{"198.51.100.7"}},
		{"nxdomain from upstream", "missing.example", mdns.TypeA, "udp", mdns.RcodeNameError, nil},
		{"over TCP", "example.org", mdns.TypeA, "tcp", mdns.RcodeSuccess, []string{"198.51.100.7"}},
		{"PTR of a non-local address", "9.0.88.10.in-addr.arpa", mdns.TypePTR, "udp", mdns.RcodeSuccess, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.udp.Load() + up.tcp.Load()
			r := query(t, addr, tt.network, tt.qname, tt.qtype, 0)
			if r.Rcode != tt.wantRcode {
				t.Fatalf("rcode %s, want %s", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tt.wantRcode])
			}
			if tt.qtype == mdns.TypeA {
				if got := answers(r); strings.Join(got, ",") != strings.Join(tt.want, ",") {
					t.Fatalf("answers %v, want %v", got, tt.want)
				}
			}
			if up.udp.Load()+up.tcp.Load() != before+1 {
				t.Fatalf("upstream saw %d queries, want 1", up.udp.Load()+up.tcp.Load()-before)
			}
		})
	}
	if up.tcp.Load() != 1 {
		t.Fatalf("upstream saw %d tcp queries, want 1 (the client's tcp query forwarded over tcp)", up.tcp.Load())
	}
}

// TestTruncation: the upstream truncates over UDP, so the server asks
// again over TCP, then cuts the answer to what its client takes.
func TestTruncation(t *testing.T) {
	var many []string
	for i := range 60 {
		many = append(many, fmt.Sprintf("198.51.100.%d", i+1))
	}
	full := answerA(many...)
	up := startUpstream(t, func(w mdns.ResponseWriter, r *mdns.Msg) {
		if w.LocalAddr().Network() == "udp" {
			m := new(mdns.Msg)
			m.SetReply(r)
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
		full(w, r)
	})
	_, addr := startServer(t, Config{Upstreams: []netip.AddrPort{up.addr}})

	r := query(t, addr, "udp", "big.example", mdns.TypeA, 0)
	if up.udp.Load() != 1 || up.tcp.Load() != 1 {
		t.Fatalf("upstream saw %d udp and %d tcp queries, want 1 and 1", up.udp.Load(), up.tcp.Load())
	}
	if !r.Truncated || len(r.Answer) == 0 || len(r.Answer) >= 60 {
		t.Fatalf("udp answer: tc %v with %d records, want tc with some of 60", r.Truncated, len(r.Answer))
	}
	r.Compress = true
	if b, _ := r.Pack(); len(b) > mdns.MinMsgSize {
		t.Fatalf("udp answer of %d bytes to a client without edns", len(b))
	}

	r = query(t, addr, "udp", "big.example", mdns.TypeA, 4096)
	if r.Truncated || len(r.Answer) != 60 {
		t.Fatalf("edns 4096 udp answer: tc %v with %d records, want all 60", r.Truncated, len(r.Answer))
	}
	if r.IsEdns0() == nil {
		t.Fatal("edns query answered without OPT")
	}

	r = query(t, addr, "tcp", "big.example", mdns.TypeA, 0)
	if r.Truncated || len(r.Answer) != 60 {
		t.Fatalf("tcp answer: tc %v with %d records, want all 60", r.Truncated, len(r.Answer))
	}
}

func TestUpstreamFailure(t *testing.T) {
	good := startUpstream(t, answerA("198.51.100.9"))
	servfail := startUpstream(t, rcodeHandler(mdns.RcodeServerFailure))
	refused := startUpstream(t, rcodeHandler(mdns.RcodeRefused))
	dead := deadUpstream(t)
	closed := closedUpstream(t)
	tests := []struct {
		name      string
		upstreams []netip.AddrPort
		wantRcode int
		maxTime   time.Duration
	}{
		{"no upstream", nil, mdns.RcodeServerFailure, time.Second},
		{"closed port", []netip.AddrPort{closed}, mdns.RcodeServerFailure, time.Second},
		{"silent upstream", []netip.AddrPort{dead}, mdns.RcodeServerFailure, 2 * time.Second},
		{"all fail", []netip.AddrPort{closed, dead, servfail.addr, refused.addr}, mdns.RcodeServerFailure, 2 * time.Second},
		{"next after closed", []netip.AddrPort{closed, good.addr}, mdns.RcodeSuccess, time.Second},
		{"next after timeout", []netip.AddrPort{dead, good.addr}, mdns.RcodeSuccess, 2 * time.Second},
		{"next after servfail", []netip.AddrPort{servfail.addr, good.addr}, mdns.RcodeSuccess, time.Second},
		{"next after refused", []netip.AddrPort{refused.addr, good.addr}, mdns.RcodeSuccess, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startServer(t, Config{Upstreams: tt.upstreams, Timeout: 300 * time.Millisecond})
			start := time.Now()
			r := query(t, addr, "udp", "example.org", mdns.TypeA, 0)
			if r.Rcode != tt.wantRcode {
				t.Fatalf("rcode %s, want %s", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tt.wantRcode])
			}
			if d := time.Since(start); d > tt.maxTime {
				t.Fatalf("answered after %s, want within %s", d, tt.maxTime)
			}
		})
	}
}

// TestNoSelfForward: the server's own address as upstream is skipped.
func TestNoSelfForward(t *testing.T) {
	s, err := New(Config{Lookup: testLookup})
	if err != nil {
		t.Fatal(err)
	}
	pc, ln := listenPair(t)
	self := netip.MustParseAddrPort(pc.LocalAddr().String())
	good := startUpstream(t, answerA("198.51.100.9"))
	if err := s.SetUpstreams([]netip.AddrPort{self}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(pc, ln); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	start := time.Now()
	r := query(t, self.String(), "udp", "example.org", mdns.TypeA, 0)
	if r.Rcode != mdns.RcodeServerFailure || time.Since(start) > time.Second {
		t.Fatalf("rcode %s after %s, want an immediate SERVFAIL", mdns.RcodeToString[r.Rcode], time.Since(start))
	}
	if err := s.SetUpstreams([]netip.AddrPort{self, good.addr}); err != nil {
		t.Fatal(err)
	}
	r = query(t, self.String(), "udp", "example.org", mdns.TypeA, 0)
	if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("rcode %s, %d answers; want the second upstream's answer", mdns.RcodeToString[r.Rcode], len(r.Answer))
	}
}

func TestClientUpstreams(t *testing.T) {
	network := startUpstream(t, answerA("198.51.100.1"))
	own := startUpstream(t, answerA("198.51.100.2"))
	_, addr := startServer(t, Config{
		Upstreams: []netip.AddrPort{network.addr},
		ClientUpstreams: func(c netip.Addr) []netip.AddrPort {
			if c == netip.MustParseAddr("127.0.0.1") {
				return []netip.AddrPort{own.addr}
			}
			return nil
		},
	})
	r := query(t, addr, "udp", "example.org", mdns.TypeA, 0)
	if got := answers(r); len(got) != 1 || got[0] != "198.51.100.2" {
		t.Fatalf("answers %v, want the client's own upstream's", got)
	}
}

func TestRequestErrors(t *testing.T) {
	up := startUpstream(t, answerA("198.51.100.7"))
	_, addr := startServer(t, Config{Upstreams: []netip.AddrPort{up.addr}})
	c := &mdns.Client{Timeout: 2 * time.Second}

	m := new(mdns.Msg)
	m.SetQuestion("web.", mdns.TypeA)
	m.Opcode = mdns.OpcodeStatus
	r, _, err := c.Exchange(m, addr)
	if err != nil || r.Rcode != mdns.RcodeNotImplemented {
		t.Fatalf("status opcode: %v %v, want NOTIMP", r, err)
	}

	m = new(mdns.Msg)
	m.SetQuestion("web.", mdns.TypeA)
	m.Question = append(m.Question, mdns.Question{Name: "db.", Qtype: mdns.TypeA, Qclass: mdns.ClassINET})
	r, _, err = c.Exchange(m, addr)
	if err != nil || r.Rcode != mdns.RcodeFormatError {
		t.Fatalf("two questions: %v %v, want FORMERR", r, err)
	}
}

// TestMalformed: garbage, empty packets and DNS responses get no answer,
// and the server goes on answering.
func TestMalformed(t *testing.T) {
	up := startUpstream(t, answerA("198.51.100.7"))
	_, addr := startServer(t, Config{Upstreams: []netip.AddrPort{up.addr}})

	resp := new(mdns.Msg)
	resp.SetQuestion("web.", mdns.TypeA)
	resp.Response = true
	respBytes, err := resp.Pack()
	if err != nil {
		t.Fatal(err)
	}
	valid := new(mdns.Msg)
	valid.SetQuestion("web.", mdns.TypeA)
	validBytes, _ := valid.Pack()
	bad := [][]byte{
		{},
		{0x12},
		[]byte("hello, this is not dns at all"),
		validBytes[:len(validBytes)-3], // cut in the question
		respBytes,
		append(append([]byte{}, validBytes[:4]...), 0xff, 0xff, 0, 0, 0, 0, 0, 0), // 65535 questions, none there
	}
	u, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, b := range bad {
		if _, err := u.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	u.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 1024)
	if n, err := u.Read(buf); err == nil {
		t.Fatalf("malformed packet answered with %d bytes", n)
	}

	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.Write([]byte{0, 5, 1, 2, 3, 4, 5})
	tc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := tc.Read(buf); err == nil {
		t.Fatalf("malformed tcp message answered with %d bytes", n)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection with a malformed message was left open")
	}

	for _, network := range []string{"udp", "tcp"} {
		r := query(t, addr, network, "web", mdns.TypeA, 0)
		if got := answers(r); len(got) != 1 {
			t.Fatalf("after malformed packets, %s answers %v", network, got)
		}
	}
}

func TestConcurrent(t *testing.T) {
	up := startUpstream(t, answerA("198.51.100.7"))
	s, addr := startServer(t, Config{Upstreams: []netip.AddrPort{up.addr}})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			network, name := "udp", "web"
			if i%2 == 1 {
				name = fmt.Sprintf("host%d.example", i)
			}
			if i%5 == 0 {
				network = "tcp"
			}
			if i%7 == 0 {
				s.SetUpstreams([]netip.AddrPort{up.addr})
			}
			m := new(mdns.Msg)
			m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
			c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
			r, _, err := c.Exchange(m, addr)
			if err == nil && (r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1) {
				err = fmt.Errorf("%s: rcode %s, %d answers", name, mdns.RcodeToString[r.Rcode], len(r.Answer))
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestShutdown: a query stuck on a silent upstream does not hold Shutdown
// past its context, and the sockets are closed afterwards.
func TestShutdown(t *testing.T) {
	s, err := New(Config{Lookup: testLookup, Upstreams: []netip.AddrPort{deadUpstream(t)}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pc, ln := listenPair(t)
	addr := pc.LocalAddr().String()
	if err := s.Start(pc, ln); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(pc, ln); err == nil {
		t.Fatal("second Start succeeded")
	}
	// An idle TCP connection and a query in flight.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	u, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	m := new(mdns.Msg)
	m.SetQuestion("slow.example.", mdns.TypeA)
	b, _ := m.Pack()
	u.Write(b)
	time.Sleep(100 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown with a query stuck upstream: %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %s", d)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	// Both ports are free again: the sockets are closed.
	pc2, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("udp socket still open: %v", err)
	}
	pc2.Close()
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("tcp socket still open: %v", err)
	}
	ln2.Close()
	idle.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle tcp connection not closed: %v", err)
	}
}

// TestShutdownGraceful: idle servers shut down at once.
func TestShutdownGraceful(t *testing.T) {
	s, addr := startServer(t, Config{})
	query(t, addr, "udp", "web", mdns.TypeA, 0)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("shutdown of an idle server took %s", d)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no lookup", Config{}},
		{"negative timeout", Config{Lookup: testLookup, Timeout: -1}},
		{"port zero upstream", Config{Lookup: testLookup, Upstreams: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:0")}}},
		{"unspecified upstream", Config{Lookup: testLookup, Upstreams: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:53")}}},
		{"invalid upstream", Config{Lookup: testLookup, Upstreams: []netip.AddrPort{{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
	s, err := New(Config{Lookup: testLookup})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(nil, nil); err == nil {
		t.Fatal("Start without sockets succeeded")
	}
}

// TestSizeLimits: over UDP an answer is cut to 512 bytes, or to the
// smaller of the client's and our EDNS0 size; over TCP to what the
// length prefix can carry, so the framing stays right.
func TestSizeLimits(t *testing.T) {
	many := func(n int) []netip.Addr {
		out := make([]netip.Addr, n)
		for i := range out {
			out[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		}
		return out
	}
	_, addr := startServer(t, Config{Lookup: func(name string) []netip.Addr {
		switch name {
		case "many":
			return many(100)
		case "huge":
			return many(5000)
		}
		return nil
	}})
	tests := []struct {
		name, network string
		edns          uint16
		maxSize       int
		wantTC        bool
	}{
		{"many", "udp", 0, 512, true},
		{"many", "udp", 4096, ourUDPSize, true},
		{"many", "udp", 1000, 1000, true},
		{"many", "tcp", 0, 65535, false},
		{"huge", "tcp", 0, 65535, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s edns %d", tt.name, tt.network, tt.edns), func(t *testing.T) {
			r := query(t, addr, tt.network, tt.name, mdns.TypeA, tt.edns)
			r.Compress = true
			b, err := r.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > tt.maxSize || r.Truncated != tt.wantTC || len(r.Answer) == 0 {
				t.Fatalf("%d bytes tc %v with %d records; want at most %d bytes, tc %v", len(b), r.Truncated, len(r.Answer), tt.maxSize, tt.wantTC)
			}
		})
	}
}

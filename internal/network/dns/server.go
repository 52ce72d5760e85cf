package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silo-containers/silo/internal/errdefs"
)

// LocalTTL is the TTL, in seconds, of the answers for local names.
// Docker gives 600; a container's address changes whenever it is
// recreated, and a caching client (nginx's resolver, a JVM, a dnsmasq in
// the container) would keep the old one for ten minutes. Five seconds
// still lets a client reuse an answer across the burst of lookups one
// connection makes (A, AAAA, connect), and zero is avoided because some
// caches treat it as "use my minimum" rather than "do not cache".
const LocalTTL = 5

// DefaultTimeout is how long one upstream gets to answer one query
// before the next upstream is tried.
const DefaultTimeout = 2 * time.Second

const (
	// maxUDPInFlight bounds the UDP queries handled at once; past it,
	// queries are dropped (the client retries) rather than piling up
	// goroutines during a flood.
	maxUDPInFlight = 256
	// maxTCPConns bounds the open TCP connections.
	maxTCPConns = 64
	// tcpIdleTimeout closes a TCP connection that sends nothing
	// (RFC 7766 suggests seconds, not minutes).
	tcpIdleTimeout = 8 * time.Second
	// tcpIOTimeout bounds reading the rest of a message and writing the
	// answer.
	tcpIOTimeout = 2 * time.Second
	// maxTCPQueries is how many queries one TCP connection may send.
	maxTCPQueries = 128
)

// Config configures a Server.
type Config struct {
	// Lookup returns the addresses (IPv4 and IPv6) of a local name: a
	// container's name or one of its aliases on the network. name has no
	// trailing dot and is in lower case (DNS names are case-insensitive;
	// Lookup must compare them that way). nil means "not a local name".
	// Lookup is called concurrently and must not block for long.
	Lookup func(name string) []netip.Addr
	// Reverse returns the local names of addr (without trailing dot),
	// for PTR answers; nil means "not a local address". Optional.
	Reverse func(addr netip.Addr) []string
	// Domain, when set, makes "name.<Domain>" resolve like "name"
	// (Docker answers "<container>.<network>"), and is appended to the
	// names of PTR answers.
	Domain string
	// Upstreams are the servers other names are forwarded to, in order.
	Upstreams []netip.AddrPort
	// ClientUpstreams, when set and returning a non-nil list, overrides
	// Upstreams for queries from the given client address: how a
	// container's own --dns servers are honoured by a server shared by the
	// whole network. Optional.
	ClientUpstreams func(client netip.Addr) []netip.AddrPort
	// Dial opens the connections to upstreams; nil means net.Dialer in
	// the process's own network namespace (silod's: the host's). A test
	// running a simulated host in a namespace of its own passes a dialer
	// that dials from there.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Timeout is how long one upstream gets; zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives errors of the serving loops; nil discards them.
	Logger *slog.Logger
}

// Server is one embedded DNS server. Its methods are safe for concurrent
// use.
type Server struct {
	lookup          func(string) []netip.Addr
	reverse         func(netip.Addr) []string
	domain          string
	clientUpstreams func(netip.Addr) []netip.AddrPort
	dialer          func(context.Context, string, string) (net.Conn, error)
	timeout         time.Duration
	log             *slog.Logger

	upstreams atomic.Pointer[[]netip.AddrPort]
	// self holds the addresses the server listens on, so it never
	// forwards to itself; set once by Start.
	self atomic.Pointer[[]netip.AddrPort]

	// ctx is cancelled when Shutdown gives up waiting: it aborts the
	// upstream exchanges still in flight.
	ctx    context.Context
	cancel context.CancelFunc

	// closing is set by Shutdown before it wakes the loops; the loops
	// check it after every deadline they set (see serveTCPConn).
	closing atomic.Bool

	// mu guards the fields below.
	mu      sync.Mutex
	started bool
	pc      net.PacketConn
	ln      net.Listener
	conns   map[net.Conn]struct{}
	// wg counts the loops and the in-flight handlers.
	wg sync.WaitGroup

	udpSlots chan struct{}
}

// New checks cfg and returns a server that serves nothing until Start.
func New(cfg Config) (*Server, error) {
	if cfg.Lookup == nil {
		return nil, fmt.Errorf("new dns server: no lookup function: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("new dns server: negative timeout %s: %w", cfg.Timeout, errdefs.ErrInvalidArgument)
	}
	for _, u := range cfg.Upstreams {
		if err := checkUpstream(u); err != nil {
			return nil, fmt.Errorf("new dns server: %w", err)
		}
	}
	s := &Server{
		lookup:          cfg.Lookup,
		reverse:         cfg.Reverse,
		domain:          strings.Trim(strings.ToLower(cfg.Domain), "."),
		clientUpstreams: cfg.ClientUpstreams,
		dialer:          cfg.Dial,
		timeout:         cfg.Timeout,
		log:             cfg.Logger,
		conns:           make(map[net.Conn]struct{}),
		udpSlots:        make(chan struct{}, maxUDPInFlight),
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	ups := append([]netip.AddrPort(nil), cfg.Upstreams...)
	s.upstreams.Store(&ups)
	s.self.Store(&[]netip.AddrPort{})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func checkUpstream(u netip.AddrPort) error {
	if !u.IsValid() || u.Port() == 0 || u.Addr().IsUnspecified() {
		return fmt.Errorf("upstream %q: %w", u, errdefs.ErrInvalidArgument)
	}
	return nil
}

// SetUpstreams replaces the upstream servers (after the host's
// resolv.conf changed). Queries already being forwarded finish with the
// old list.
func (s *Server) SetUpstreams(ups []netip.AddrPort) error {
	for _, u := range ups {
		if err := checkUpstream(u); err != nil {
			return fmt.Errorf("set dns upstreams: %w", err)
		}
	}
	c := append([]netip.AddrPort(nil), ups...)
	s.upstreams.Store(&c)
	return nil
}

// Listen opens the UDP and TCP sockets of a server on addr (the
// network's gateway, port 53). It listens in the calling thread's
// network namespace: call it inside network.HostNS.Do.
func Listen(addr netip.AddrPort) (net.PacketConn, net.Listener, error) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, nil, fmt.Errorf("listen dns udp %s: %w", addr, err)
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		pc.Close()
		return nil, nil, fmt.Errorf("listen dns tcp %s: %w", addr, err)
	}
	return pc, ln, nil
}

// Start serves UDP on pc and TCP on ln (either may be nil, not both)
// until Shutdown, which closes them: the server owns them from now on.
// pc should be bound to one address (not the wildcard), so answers leave
// from the address the query was sent to.
func (s *Server) Start(pc net.PacketConn, ln net.Listener) error {
	if pc == nil && ln == nil {
		return fmt.Errorf("start dns server: no socket: %w", errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closing.Load() {
		return fmt.Errorf("start dns server: already started or shut down: %w", errdefs.ErrConflict)
	}
	s.started = true
	s.pc, s.ln = pc, ln
	var self []netip.AddrPort
	if pc != nil {
		if a, ok := addrPort(pc.LocalAddr()); ok {
			self = append(self, a)
		}
		s.wg.Add(1)
		go s.serveUDP(pc)
	}
	if ln != nil {
		if a, ok := addrPort(ln.Addr()); ok {
			self = append(self, a)
		}
		s.wg.Add(1)
		go s.serveTCP(ln)
	}
	s.self.Store(&self)
	for _, u := range *s.upstreams.Load() {
		if isSelf(u, self) {
			s.log.Warn("dns upstream is the server itself: not used", "upstream", u)
		}
	}
	return nil
}

// Shutdown stops the server: it stops reading, lets the queries in
// flight be answered until ctx is done, then aborts what is left and
// closes every socket. It returns ctx's error if it had to abort.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing.Swap(true) {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	// Wake the loops: a read deadline in the past ends a blocked read,
	// and the loops see closing once it returns.
	now := time.Now()
	if s.pc != nil {
		s.pc.SetReadDeadline(now)
	}
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.SetReadDeadline(now)
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
	}
	s.cancel()
	if s.pc != nil {
		s.pc.Close()
	}
	if err != nil {
		return fmt.Errorf("shut down dns server: %w", err)
	}
	return nil
}

func (s *Server) serveUDP(pc net.PacketConn) {
	defer s.wg.Done()
	// One read buffer for the loop; each query gets a copy of its bytes.
	buf := make([]byte, dnsMaxMsg)
	for {
		n, from, err := pc.ReadFrom(buf)
		if s.closing.Load() {
			return
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient error (ICMP unreachable reported on the
			// socket, ENOBUFS): log and go on reading.
			s.log.Debug("dns udp read", "err", err)
			continue
		}
		select {
		case s.udpSlots <- struct{}{}:
		default:
			continue // overloaded: drop, the client retries
		}
		msg := append([]byte(nil), buf[:n]...)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.udpSlots }()
			client, _ := addrPort(from)
			resp := s.handle(s.ctx, msg, client.Addr(), false)
			if resp == nil {
				return
			}
			if _, err := pc.WriteTo(resp, from); err != nil {
				s.log.Debug("dns udp write", "client", from, "err", err)
			}
		}()
	}
}

func (s *Server) serveTCP(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if s.closing.Load() {
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("dns tcp accept", "err", err)
			// Back off on errors such as EMFILE rather than spinning.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if len(s.conns) >= maxTCPConns {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveTCPConn(c)
	}
}

// serveTCPConn answers the queries of one connection in order (RFC 7766
// pipelining, without reordering).
func (s *Server) serveTCPConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	client, _ := addrPort(c.RemoteAddr())
	var lenBuf [2]byte
	for range maxTCPQueries {
		// Deadline first, then closing: Shutdown sets closing first,
		// then the deadline, so one of the two always stops the read.
		c.SetReadDeadline(time.Now().Add(tcpIdleTimeout))
		if s.closing.Load() {
			return
		}
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(tcpIOTimeout))
		msg := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		resp := s.handle(s.ctx, msg, client.Addr(), true)
		if resp == nil {
			// Not a query we can answer (garbage, a response): the
			// stream may be out of step, so end it.
			return
		}
		out := make([]byte, 2+len(resp))
		binary.BigEndian.PutUint16(out, uint16(len(resp)))
		copy(out[2:], resp)
		c.SetWriteDeadline(time.Now().Add(tcpIOTimeout))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// dnsMaxMsg is the largest DNS message (and UDP payload we read).
const dnsMaxMsg = 65535

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

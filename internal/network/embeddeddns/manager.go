// Package embeddeddns runs the embedded DNS of user-defined networks: one
// server per network with a gateway, listening on the gateway's address,
// port 53, in the host namespace. Containers on the network have it as
// their nameserver; it answers their names and aliases on that network
// and forwards everything else to the host's resolvers.
//
// Docker listens on 127.0.0.11 inside every container and redirects with
// iptables in each namespace; listening on the gateway instead needs no
// per-container rules and reaches the host's resolvers even when they are
// on the host's loopback (which a container's namespace cannot reach).
package embeddeddns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/silo-containers/silo/internal/network"
	"github.com/silo-containers/silo/internal/network/dns"
)

// Networks is what the manager needs of the network service.
type Networks interface {
	Networks(ctx context.Context) ([]*network.Network, error)
	Endpoints(ctx context.Context, networkRef string) ([]*network.Endpoint, error)
	Lookup(networkID, name string) []netip.Addr
}

// Manager keeps one DNS server per user-defined network.
type Manager struct {
	host      *network.HostNS
	nets      Networks
	upstreams []netip.AddrPort
	log       *slog.Logger

	mu      sync.Mutex
	servers map[string]*server // by network id
}

type server struct {
	addr netip.AddrPort
	srv  *dns.Server
}

// New returns a manager serving in host, forwarding to upstreams.
func New(host *network.HostNS, nets Networks, upstreams []netip.AddrPort, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{host: host, nets: nets, upstreams: upstreams, log: log, servers: map[string]*server{}}
}

// Serves reports whether n gets an embedded DNS server: user-defined
// networks with an IPv4 gateway (the default network, like docker's
// default bridge, gives containers the host's resolvers instead).
func Serves(n *network.Network) bool {
	return !n.Default && gateway(n).IsValid()
}

func gateway(n *network.Network) netip.Addr {
	switch n.Type {
	case network.NAT, network.Internal:
	default:
		return netip.Addr{}
	}
	for _, s := range n.Subnets {
		if s.Gateway.Is4() {
			return s.Gateway
		}
	}
	return netip.Addr{}
}

// Sync starts servers for the networks that need one and stops those of
// networks that are gone. A network whose server cannot listen is logged
// and left without one: its containers cannot resolve names, but run.
func (m *Manager) Sync(ctx context.Context) error {
	nets, err := m.nets.Networks(ctx)
	if err != nil {
		return fmt.Errorf("sync embedded dns: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]netip.AddrPort{}
	names := map[string]string{}
	for _, n := range nets {
		if Serves(n) {
			want[n.ID] = netip.AddrPortFrom(gateway(n), 53)
			names[n.ID] = n.Name
		}
	}
	for id, s := range m.servers {
		if addr, ok := want[id]; !ok || addr != s.addr {
			m.stopLocked(ctx, id)
		}
	}
	for id, addr := range want {
		if _, ok := m.servers[id]; ok {
			continue
		}
		if err := m.startLocked(id, names[id], addr); err != nil {
			m.log.Warn("embedded dns not served", "network", id, "addr", addr, "err", err)
		}
	}
	return nil
}

func (m *Manager) startLocked(id, name string, addr netip.AddrPort) error {
	srv, err := dns.New(dns.Config{
		Lookup:  func(name string) []netip.Addr { return m.nets.Lookup(id, name) },
		Reverse: func(a netip.Addr) []string { return m.reverse(id, a) },
		// A container's own --dns servers take its other queries.
		ClientUpstreams: func(a netip.Addr) []netip.AddrPort { return m.clientUpstreams(id, a) },
		// "<container>.<network>" resolves too, as with docker.
		Domain:    name,
		Upstreams: m.upstreams,
		Dial:      m.dial,
		Logger:    m.log,
	})
	if err != nil {
		return err
	}
	err = m.host.Do(func() error {
		pc, ln, err := dns.Listen(addr)
		if err != nil {
			return err
		}
		return srv.Start(pc, ln)
	})
	if err != nil {
		return err
	}
	m.servers[id] = &server{addr: addr, srv: srv}
	return nil
}

// endpointAt is the endpoint of network id that has address a, or nil.
func (m *Manager) endpointAt(id string, a netip.Addr) *network.Endpoint {
	eps, err := m.nets.Endpoints(context.Background(), id)
	if err != nil {
		return nil
	}
	for _, ep := range eps {
		for _, p := range ep.Addresses {
			if p.Addr() == a {
				return ep
			}
		}
	}
	return nil
}

// reverse names the endpoint of network id that has address a: its
// container's name first, then its aliases.
func (m *Manager) reverse(id string, a netip.Addr) []string {
	if ep := m.endpointAt(id, a); ep != nil {
		return append([]string{ep.Name}, ep.Aliases...)
	}
	return nil
}

// clientUpstreams are the own resolvers of the endpoint at address a (nil:
// the network's upstreams).
func (m *Manager) clientUpstreams(id string, a netip.Addr) []netip.AddrPort {
	ep := m.endpointAt(id, a)
	if ep == nil || len(ep.DNSServers) == 0 {
		return nil
	}
	out := make([]netip.AddrPort, 0, len(ep.DNSServers))
	for _, s := range ep.DNSServers {
		out = append(out, netip.AddrPortFrom(s, 53))
	}
	return out
}

// dial opens upstream connections from the host namespace: the servers
// stand for that "host", and a test's simulated host must not reach the
// machine's resolvers.
func (m *Manager) dial(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := m.host.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, address)
		return err
	})
	return c, err
}

func (m *Manager) stopLocked(ctx context.Context, id string) {
	s := m.servers[id]
	delete(m.servers, id)
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		m.log.Warn("stop embedded dns", "network", id, "err", err)
	}
}

// Close stops every server.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.servers {
		m.stopLocked(context.Background(), id)
	}
}

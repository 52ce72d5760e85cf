package resolvconf

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/silo-containers/silo/internal/errdefs"
)

// HostGateway is the --add-host address that stands for the host: it is
// replaced by the addresses in HostsConfig.HostGateway.
const HostGateway = "host-gateway"

// HostsConfig says how to make a container's /etc/hosts.
type HostsConfig struct {
	// Hostname and Domainname are the container's (--hostname,
	// --domainname); the hostname may itself be a full name.
	Hostname   string
	Domainname string
	// Addrs are the container's addresses on its network, each of which
	// gets a line naming the container.
	Addrs []netip.Addr
	// ExtraHosts are the --add-host entries: "name:address" or
	// "name=address", the address possibly in brackets, or HostGateway.
	ExtraHosts []string
	// HostGateway are the addresses HostGateway stands for (the network's
	// gateway: the host as the container sees it).
	HostGateway []netip.Addr
	// NoIPv6 leaves out the IPv6 loopback and multicast lines, for a
	// container whose loopback has IPv6 disabled (as Docker 26 does).
	NoIPv6 bool
}

// ExtraHost is one parsed --add-host entry.
type ExtraHost struct {
	Name string
	// Addr is the address; zero when Gateway is set.
	Addr netip.Addr
	// Gateway is true for HostGateway.
	Gateway bool
}

// ParseExtraHost parses an --add-host value ("name:address",
// "name=address", "name:[v6address]", "name:host-gateway"), as
// docker run accepts it.
func ParseExtraHost(s string) (ExtraHost, error) {
	// '=' first: an IPv6 address has colons, and "name=::1" is clearer
	// than "name:::1" (both work).
	name, addr, ok := strings.Cut(s, "=")
	if !ok {
		name, addr, ok = strings.Cut(s, ":")
	}
	if !ok {
		return ExtraHost{}, fmt.Errorf("extra host %q: not name:address: %w", s, errdefs.ErrInvalidArgument)
	}
	if err := validHostName(name); err != nil {
		return ExtraHost{}, fmt.Errorf("extra host %q: %w", s, err)
	}
	if addr == HostGateway {
		return ExtraHost{Name: name, Gateway: true}, nil
	}
	if strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]") {
		addr = addr[1 : len(addr)-1]
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return ExtraHost{}, fmt.Errorf("extra host %q: address %q: %w", s, addr, errdefs.ErrInvalidArgument)
	}
	return ExtraHost{Name: name, Addr: a}, nil
}

// validHostName accepts a name that can be one word of a hosts line.
func validHostName(name string) error {
	if name == "" {
		return fmt.Errorf("empty host name: %w", errdefs.ErrInvalidArgument)
	}
	if len(name) > 255 {
		return fmt.Errorf("host name longer than 255 characters: %w", errdefs.ErrInvalidArgument)
	}
	if name[0] == '#' {
		return fmt.Errorf("host name %q starts a comment: %w", name, errdefs.ErrInvalidArgument)
	}
	for _, c := range name {
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("host name %q: whitespace or control character: %w", name, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// Hosts makes a container's /etc/hosts as Docker does: the loopback
// lines, the --add-host entries, then the container's own addresses with
// its full and short name.
func Hosts(cfg HostsConfig) ([]byte, error) {
	var b bytes.Buffer
	line := func(a netip.Addr, names string) { fmt.Fprintf(&b, "%s\t%s\n", a, names) }
	line(netip.AddrFrom4([4]byte{127, 0, 0, 1}), "localhost")
	if !cfg.NoIPv6 {
		line(netip.IPv6Loopback(), "localhost ip6-localhost ip6-loopback")
		// Docker's historical lines, written as it writes them.
		b.WriteString("fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	}

	for _, s := range cfg.ExtraHosts {
		h, err := ParseExtraHost(s)
		if err != nil {
			return nil, err
		}
		if !h.Gateway {
			line(h.Addr, h.Name)
			continue
		}
		if len(cfg.HostGateway) == 0 {
			return nil, fmt.Errorf("extra host %q: the network has no gateway for %s: %w", s, HostGateway, errdefs.ErrInvalidArgument)
		}
		for _, a := range cfg.HostGateway {
			line(a, h.Name)
		}
	}

	if cfg.Hostname != "" {
		fqdn := cfg.Hostname
		if cfg.Domainname != "" {
			fqdn += "." + cfg.Domainname
		}
		if err := validHostName(fqdn); err != nil {
			return nil, fmt.Errorf("container hostname: %w", err)
		}
		names := fqdn
		if short, _, ok := strings.Cut(fqdn, "."); ok && short != "" {
			names += " " + short
		}
		for _, a := range cfg.Addrs {
			line(a, names)
		}
	}
	return b.Bytes(), nil
}

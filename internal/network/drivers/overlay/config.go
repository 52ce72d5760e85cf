package overlay

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
	"github.com/silo-containers/silo/internal/network/drivers/attach"
)

// Defaults and limits of the VXLAN settings.
const (
	// DefaultPort is the IANA VXLAN port.
	DefaultPort = 4789
	// MinDefaultVNI is where VNIs chosen by silo start, as Docker's
	// overlay driver starts its pool: lower ones are left to
	// administrators.
	MinDefaultVNI = 4096
	// MaxVNI is the largest 24-bit VXLAN network identifier.
	MaxVNI = 1<<24 - 1
	// VNIOption is the driver option that sets the VNI (-o vni=5001), the
	// VSID policy's alternative.
	VNIOption = "vni"
)

// BridgeName is the name of the bridge of the overlay network with the
// given id ("ov-<id[:8]>"): the device containers' traffic enters the
// host through, for rules that match it (n.Interface is the VXLAN device).
func BridgeName(networkID string) (string, error) {
	return attach.ObjectName("ov-", networkID)
}

// remote is one RemoteSubnetRoute: a share of the overlay behind another
// host's provider address.
type remote struct {
	pa     netip.Addr
	prefix netip.Prefix
	// mac is the remote host's MAC for the prefix; nil when not given.
	mac net.HardwareAddr
}

// config is an overlay network's VXLAN settings, read from its policies
// and options.
type config struct {
	vni    uint32
	port   uint16
	local  netip.Addr // zero: the kernel picks the source address
	parent string     // "": no underlay device pinned
	vxlan  string
	bridge string
	remote []remote
}

// parse reads n's settings; a VNI left unset is 0.
func parse(n *network.Network) (config, error) {
	var c config
	var err error
	if c.vxlan, err = attach.ObjectName("vx-", n.ID); err != nil {
		return c, err
	}
	if c.bridge, err = BridgeName(n.ID); err != nil {
		return c, err
	}
	if c.parent, err = attach.Parent(n); err != nil {
		return c, err
	}
	if s, ok := n.Options[VNIOption]; ok {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil || v < 1 || v > MaxVNI {
			return c, fmt.Errorf("option vni=%q: not a number from 1 to %d: %w", s, MaxVNI, errdefs.ErrInvalidArgument)
		}
		c.vni = uint32(v)
	}
	for _, p := range n.Policies {
		s := p.Settings
		switch p.Type {
		case network.VSID:
			if s.IsolationID < 1 || s.IsolationID > MaxVNI {
				return c, fmt.Errorf("VSID policy: IsolationId %d not from 1 to %d: %w", s.IsolationID, MaxVNI, errdefs.ErrInvalidArgument)
			}
			if c.vni != 0 && c.vni != s.IsolationID {
				return c, fmt.Errorf("VSID policy %d disagrees with VNI %d: %w", s.IsolationID, c.vni, errdefs.ErrInvalidArgument)
			}
			c.vni = s.IsolationID
		case network.VxlanPort:
			if s.Port == 0 {
				return c, fmt.Errorf("VxlanPort policy: port 0: %w", errdefs.ErrInvalidArgument)
			}
			if c.port != 0 && c.port != s.Port {
				return c, fmt.Errorf("two VxlanPort policies (%d, %d): %w", c.port, s.Port, errdefs.ErrInvalidArgument)
			}
			c.port = s.Port
		case network.ProviderAddress:
			a := s.ProviderAddress.Unmap()
			if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
				return c, fmt.Errorf("ProviderAddress policy: %q is not a host address: %w", s.ProviderAddress, errdefs.ErrInvalidArgument)
			}
			if c.local.IsValid() && c.local != a {
				return c, fmt.Errorf("two ProviderAddress policies (%s, %s): %w", c.local, a, errdefs.ErrInvalidArgument)
			}
			c.local = a
		case network.RemoteSubnetRoute:
			r, err := parseRemote(s)
			if err != nil {
				return c, err
			}
			c.remote = append(c.remote, r)
		}
	}
	if c.port == 0 {
		c.port = DefaultPort
	}
	for _, r := range c.remote {
		if c.local.IsValid() && r.pa.Is4() != c.local.Is4() {
			return c, fmt.Errorf("RemoteSubnetRoute provider address %s and ProviderAddress %s: different families: %w", r.pa, c.local, errdefs.ErrInvalidArgument)
		}
		if r.pa == c.local {
			return c, fmt.Errorf("RemoteSubnetRoute to %s: that is this host's provider address: %w", r.prefix, errdefs.ErrInvalidArgument)
		}
		if r.pa.Is4() != c.remote[0].pa.Is4() {
			return c, fmt.Errorf("RemoteSubnetRoute provider addresses %s and %s: different families: %w", r.pa, c.remote[0].pa, errdefs.ErrInvalidArgument)
		}
	}
	return c, nil
}

func parseRemote(s network.NetworkPolicySettings) (remote, error) {
	r := remote{pa: s.ProviderAddress.Unmap(), prefix: s.DestinationPrefix}
	if !r.pa.IsValid() || r.pa.IsUnspecified() || r.pa.IsMulticast() {
		return r, fmt.Errorf("RemoteSubnetRoute: provider address %q is not a host address: %w", s.ProviderAddress, errdefs.ErrInvalidArgument)
	}
	if !r.prefix.IsValid() {
		return r, fmt.Errorf("RemoteSubnetRoute to %s: no valid DestinationPrefix: %w", r.pa, errdefs.ErrInvalidArgument)
	}
	r.prefix = netip.PrefixFrom(r.prefix.Addr().Unmap(), r.prefix.Bits()).Masked()
	if s.DistributedRouterMacAddress != "" {
		mac, err := attach.ParseMAC(s.DistributedRouterMacAddress)
		if err != nil {
			return r, fmt.Errorf("RemoteSubnetRoute to %s: %w", r.prefix, err)
		}
		if mac[0]&1 != 0 {
			return r, fmt.Errorf("RemoteSubnetRoute to %s: DistributedRouterMacAddress %s is a multicast MAC: %w", r.prefix, mac, errdefs.ErrInvalidArgument)
		}
		r.mac = mac
	}
	return r, nil
}

// defaultVNI is the VNI of an overlay created without one: derived from
// the network id, so two hosts creating the same network agree, and at
// least MinDefaultVNI.
func defaultVNI(id string) uint32 {
	sum := sha256.Sum256([]byte(id))
	return MinDefaultVNI + binary.BigEndian.Uint32(sum[:4])%(MaxVNI-MinDefaultVNI+1)
}

// overhead is what VXLAN encapsulation adds to a frame: outer IP, UDP,
// VXLAN header and inner Ethernet header.
func (c config) overhead() int {
	v6 := c.local.Is6() || len(c.remote) > 0 && c.remote[0].pa.Is6()
	if v6 {
		return 40 + 8 + 8 + 14
	}
	return 20 + 8 + 8 + 14
}

// endpointRoutes are the on-link routes an endpoint gets for remote
// prefixes outside every subnet of the network, in the families it has
// addresses in.
func (c config) endpointRoutes(n *network.Network, ep *network.Endpoint) []network.Route {
	var out []network.Route
	for _, r := range c.remote {
		inside := false
		for _, s := range n.Subnets {
			if s.Prefix.Bits() <= r.prefix.Bits() && s.Prefix.Contains(r.prefix.Addr()) {
				inside = true
				break
			}
		}
		if inside || !hasFamily(ep.Addresses, r.prefix.Addr().Is4()) {
			continue
		}
		out = append(out, network.Route{Destination: r.prefix})
	}
	return out
}

func hasFamily(addrs []netip.Prefix, v4 bool) bool {
	for _, a := range addrs {
		if a.Addr().Unmap().Is4() == v4 {
			return true
		}
	}
	return false
}

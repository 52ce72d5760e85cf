package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network/drivers/nat"
)

// DefaultBridge is the bridge of the default nat network (docker0's
// counterpart).
const DefaultBridge = "silo0"

// natDriver adapts package nat to Driver for the nat and internal types.
// Both build a bridge with veth ports; an internal network's endpoints get
// no default route, and the service renders no masquerade for it and
// drops what would be forwarded off its bridge.
type natDriver struct{ typ Type }

var _ Driver = natDriver{}

func (d natDriver) Type() Type { return d.typ }

func (d natDriver) Validate(n *Network) error {
	if n.Interface == "" {
		if n.Default {
			n.Interface = DefaultBridge
		} else {
			n.Interface = "br-" + n.ID[:12]
		}
	}
	if len(n.Interface) > 15 {
		return fmt.Errorf("bridge name %q longer than 15 characters: %w", n.Interface, errdefs.ErrInvalidArgument)
	}
	if d.typ == Internal {
		n.Internal = true
	}
	for _, s := range n.Subnets {
		if !s.Gateway.IsValid() {
			return fmt.Errorf("subnet %s has no gateway: %w", s.Prefix, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func (d natDriver) Setup(ctx context.Context, h *HostNS, n *Network) error {
	var addrs []netip.Prefix
	for _, s := range n.Subnets {
		addrs = append(addrs, netip.PrefixFrom(s.Gateway, s.Prefix.Bits()))
	}
	mtu := 0
	if v := n.Options["com.docker.network.driver.mtu"]; v != "" {
		if _, err := fmt.Sscanf(v, "%d", &mtu); err != nil || mtu < 68 {
			return fmt.Errorf("network %s: mtu option %q: %w", n.Name, v, errdefs.ErrInvalidArgument)
		}
	}
	if err := nat.EnsureBridge(h.Link, n.Interface, addrs, mtu); err != nil {
		return fmt.Errorf("set up network %s: %w", n.Name, err)
	}
	return h.Do(func() error {
		if !n.Internal {
			if err := writeSysctl("/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
				return err
			}
			// Lets packets from 127.0.0.1 DNATed to an endpoint leave
			// through the bridge (published ports on localhost).
			if err := writeSysctl("/proc/sys/net/ipv4/conf/"+n.Interface+"/route_localnet", "1"); err != nil {
				return err
			}
		}
		// Bridged traffic between endpoints passes the ip hooks, so ACLs
		// apply to it; the file is absent without br_netfilter.
		if err := writeSysctl("/proc/sys/net/bridge/bridge-nf-call-iptables", "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
}

func (d natDriver) Teardown(ctx context.Context, h *HostNS, n *Network) error {
	if err := nat.DeleteBridge(h.Link, n.Interface); err != nil {
		return fmt.Errorf("tear down network %s: %w", n.Name, err)
	}
	return nil
}

func (d natDriver) Join(ctx context.Context, h *HostNS, n *Network, ep *Endpoint) error {
	mac, err := net.ParseMAC(ep.MAC)
	if err != nil {
		return fmt.Errorf("endpoint mac %q: %w", ep.MAC, errdefs.ErrInvalidArgument)
	}
	ep.HostIfName = "veth" + ep.ID[:8]
	p := nat.Port{HostIfName: ep.HostIfName, Bridge: n.Interface, NetnsPath: ep.NetnsPath, IfName: ep.IfName, MAC: mac, Addrs: ep.Addresses}
	if !n.Internal {
		p.Gateways = ep.Gateways
	}
	for _, s := range n.Subnets {
		for _, r := range s.Routes {
			p.Routes = append(p.Routes, nat.Route{Dst: r.Destination, Via: r.NextHop})
		}
	}
	if err := nat.Join(h.Link, p); err != nil {
		return fmt.Errorf("join endpoint %s to network %s: %w", ep.ID[:12], n.Name, err)
	}
	return nil
}

func (d natDriver) Leave(ctx context.Context, h *HostNS, n *Network, ep *Endpoint) error {
	name := ep.HostIfName
	if name == "" {
		name = "veth" + ep.ID[:8]
	}
	if err := nat.Leave(h.Link, name); err != nil {
		return fmt.Errorf("leave endpoint %s of network %s: %w", ep.ID[:12], n.Name, err)
	}
	return nil
}

func writeSysctl(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("set %s to %s: %w", path, value, err)
	}
	return nil
}

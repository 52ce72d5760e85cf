package attach

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
)

// NS is an endpoint's network namespace, opened for netlink work.
type NS struct {
	ns netns.NsHandle
	// Link is a netlink handle bound to the namespace.
	Link *netlink.Handle
}

// OpenNS opens the namespace bound at path. A path that no longer holds a
// namespace (removed, or unmounted leaving a plain file) gives an error
// wrapping errdefs.ErrNotFound.
func OpenNS(path string) (*NS, error) {
	if path == "" {
		return nil, fmt.Errorf("open endpoint namespace: no path: %w", errdefs.ErrInvalidArgument)
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open endpoint namespace %q: %w", path, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("open endpoint namespace %q: %w", path, err)
	}
	// A bind mount that was undone leaves an ordinary file behind; setns
	// on it would fail with a less telling EINVAL.
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(ns), &st); err != nil {
		ns.Close()
		return nil, fmt.Errorf("statfs endpoint namespace %q: %w", path, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		ns.Close()
		return nil, fmt.Errorf("endpoint namespace %q is not a namespace: %w", path, errdefs.ErrNotFound)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink handle in endpoint namespace %q: %w", path, err)
	}
	return &NS{ns: ns, Link: h}, nil
}

// Fd returns the namespace's file descriptor (owned by n), for creating a
// link directly inside it.
func (n *NS) Fd() netlink.NsFd { return netlink.NsFd(n.ns) }

// Close releases the handles.
func (n *NS) Close() error {
	n.Link.Close()
	return n.ns.Close()
}

// Configure gives the link named ep.IfName in ns ep.MAC and exactly
// ep.Addresses, sets it up, and installs a default route through the first
// gateway of each family plus routes. It can run again on a configured
// link: addresses and routes are replaced, not duplicated.
func Configure(ctx context.Context, ns *NS, ep *network.Endpoint, routes []network.Route) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	link, err := ns.Link.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("find endpoint interface %q: %w", ep.IfName, err)
	}
	if ep.MAC != "" {
		mac, err := ParseMAC(ep.MAC)
		if err != nil {
			return err
		}
		if link.Attrs().HardwareAddr.String() != mac.String() {
			if err := ns.Link.LinkSetHardwareAddr(link, mac); err != nil {
				return fmt.Errorf("set MAC %s on endpoint interface %q: %w", mac, ep.IfName, err)
			}
		}
	}
	if err := SetAddresses(ns.Link, link, ep.Addresses); err != nil {
		return fmt.Errorf("endpoint interface %q: %w", ep.IfName, err)
	}
	if err := ns.Link.LinkSetUp(link); err != nil {
		return fmt.Errorf("set endpoint interface %q up: %w", ep.IfName, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	idx := link.Attrs().Index
	seen := map[bool]bool{}
	for _, gw := range ep.Gateways {
		gw = gw.Unmap()
		if !gw.IsValid() || seen[gw.Is4()] {
			continue
		}
		seen[gw.Is4()] = true
		r := &netlink.Route{LinkIndex: idx, Gw: gw.AsSlice(), Family: family(gw)}
		if !covered(ep.Addresses, gw) {
			// A gateway outside every address's prefix is still reachable
			// on the link (a /32 address, a router on another subnet of
			// the same segment).
			r.Flags = int(netlink.FLAG_ONLINK)
		}
		if err := ns.Link.RouteReplace(r); err != nil {
			return fmt.Errorf("default route via %s on %q: %w", gw, ep.IfName, err)
		}
	}
	for _, rt := range routes {
		r := &netlink.Route{LinkIndex: idx, Dst: ipNet(rt.Destination.Masked())}
		if nh := rt.NextHop.Unmap(); nh.IsValid() {
			r.Gw = nh.AsSlice()
			if !covered(ep.Addresses, nh) {
				r.Flags = int(netlink.FLAG_ONLINK)
			}
		} else {
			r.Scope = netlink.SCOPE_LINK
		}
		if err := ns.Link.RouteReplace(r); err != nil {
			return fmt.Errorf("route to %s on %q: %w", rt.Destination, ep.IfName, err)
		}
	}
	return nil
}

// SetAddresses makes want the link's addresses (host bits kept), leaving
// IPv6 link-local ones to the kernel.
func SetAddresses(h *netlink.Handle, link netlink.Link, want []netip.Prefix) error {
	have, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	keep := map[netip.Prefix]bool{}
	for _, p := range want {
		keep[netip.PrefixFrom(p.Addr().Unmap(), p.Bits())] = true
	}
	for _, a := range have {
		p, ok := prefixOf(a.IPNet)
		if !ok || p.Addr().IsLinkLocalUnicast() && p.Addr().Is6() || keep[p] {
			continue
		}
		if err := h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove stale address %s: %w", p, err)
		}
	}
	for _, p := range want {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
		if !p.IsValid() {
			return fmt.Errorf("address %s: %w", p, errdefs.ErrInvalidArgument)
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			// The address is the service's allocation: usable at once,
			// without waiting a second or more for duplicate detection.
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(link, a); err != nil {
			return fmt.Errorf("add address %s: %w", p, err)
		}
	}
	return nil
}

// SubnetRoutes returns the routes of every subnet of n that holds one of
// ep's addresses.
func SubnetRoutes(n *network.Network, ep *network.Endpoint) []network.Route {
	var out []network.Route
	for _, s := range n.Subnets {
		for _, a := range ep.Addresses {
			if s.Prefix.Contains(a.Addr().Unmap()) {
				out = append(out, s.Routes...)
				break
			}
		}
	}
	return out
}

func covered(addrs []netip.Prefix, ip netip.Addr) bool {
	for _, p := range addrs {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
		if p.Masked().Contains(ip) {
			return true
		}
	}
	return false
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr().Unmap()
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}

// prefixOf converts a netlink address to a prefix keeping the host bits.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// OpenIfExists is OpenNS for removals: a namespace that is gone gives
// nil and no error.
func OpenIfExists(path string) (*NS, error) {
	if path == "" {
		return nil, nil
	}
	ns, err := OpenNS(path)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil
	}
	return ns, err
}

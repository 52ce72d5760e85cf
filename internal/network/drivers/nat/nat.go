// Package nat builds the kernel objects of nat and internal networks: a
// Linux bridge with the gateway address, and per endpoint a veth pair
// whose host side is a bridge port and whose other side is the
// endpoint's interface inside its namespace. It knows nothing of records
// or rules: the network service adapts it to its Driver interface and
// renders NAT, port mappings and ACLs itself.
package nat

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// EnsureBridge creates the bridge name in h's namespace when missing,
// gives it addrs (kept if present) and sets it up. Running it again on a
// complete bridge changes nothing.
func EnsureBridge(h *netlink.Handle, name string, addrs []netip.Prefix, mtu int) error {
	l, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("find bridge %s: %w", name, err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		if mtu > 0 {
			attrs.MTU = mtu
		}
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if l, err = h.LinkByName(name); err != nil {
			return fmt.Errorf("find bridge %s: %w", name, err)
		}
	}
	if l.Type() != "bridge" {
		return fmt.Errorf("interface %s is a %s, not a bridge", name, l.Type())
	}
	for _, a := range addrs {
		if err := h.AddrReplace(l, &netlink.Addr{IPNet: ipNet(a)}); err != nil {
			return fmt.Errorf("add address %s to bridge %s: %w", a, name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set bridge %s up: %w", name, err)
	}
	return nil
}

// DeleteBridge removes the bridge; a missing one is not an error.
func DeleteBridge(h *netlink.Handle, name string) error {
	return deleteLink(h, name)
}

// Route is a route given to an endpoint.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// Port describes one endpoint's veth pair.
type Port struct {
	// HostIfName is the host side ("veth" + 8 hex digits), enslaved to
	// Bridge.
	HostIfName string
	Bridge     string
	// NetnsPath and IfName place the other side.
	NetnsPath string
	IfName    string
	MAC       net.HardwareAddr
	Addrs     []netip.Prefix
	// Gateways get a default route each (one per address family); none
	// on internal networks.
	Gateways []netip.Addr
	Routes   []Route
	MTU      int
}

// Join creates p's veth pair with the endpoint side directly inside its
// namespace, configures both sides and brings them up. A leftover host
// side of the same name (a crash in a previous Join) is replaced. On
// failure the pair is removed.
func Join(h *netlink.Handle, p Port) (err error) {
	br, err := h.LinkByName(p.Bridge)
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", p.Bridge, err)
	}
	ns, err := netns.GetFromPath(p.NetnsPath)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", p.NetnsPath, err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle in namespace %s: %w", p.NetnsPath, err)
	}
	defer nh.Close()

	if err := deleteLink(h, p.HostIfName); err != nil {
		return err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = p.HostIfName
	attrs.MasterIndex = br.Attrs().Index
	mtu := p.MTU
	if mtu == 0 {
		mtu = br.Attrs().MTU
	}
	attrs.MTU = mtu
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: p.IfName, PeerHardwareAddr: p.MAC, PeerNamespace: netlink.NsFd(int(ns)), PeerMTU: uint32(mtu)}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s (peer %s in %s): %w", p.HostIfName, p.IfName, p.NetnsPath, err)
	}
	defer func() {
		if err != nil {
			h.LinkDel(veth) // takes the peer with it
		}
	}()
	host, err := h.LinkByName(p.HostIfName)
	if err != nil {
		return fmt.Errorf("find veth %s: %w", p.HostIfName, err)
	}
	// Hairpin: a frame DNATed back to the port it came from (an endpoint
	// reaching its own published port) leaves through that port again.
	if err := h.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("set hairpin mode on %s: %w", p.HostIfName, err)
	}
	if err := h.LinkSetUp(host); err != nil {
		return fmt.Errorf("set veth %s up: %w", p.HostIfName, err)
	}

	in, err := nh.LinkByName(p.IfName)
	if err != nil {
		return fmt.Errorf("find %s in namespace %s: %w", p.IfName, p.NetnsPath, err)
	}
	for _, a := range p.Addrs {
		addr := &netlink.Addr{IPNet: ipNet(a)}
		if a.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD // usable at once: no duplicate detection wait
		}
		if err := nh.AddrAdd(in, addr); err != nil {
			return fmt.Errorf("add address %s to %s in %s: %w", a, p.IfName, p.NetnsPath, err)
		}
	}
	if err := nh.LinkSetUp(in); err != nil {
		return fmt.Errorf("set %s up in %s: %w", p.IfName, p.NetnsPath, err)
	}
	for _, gw := range p.Gateways {
		r := &netlink.Route{LinkIndex: in.Attrs().Index, Gw: net.IP(gw.AsSlice())}
		if err := nh.RouteReplace(r); err != nil {
			return fmt.Errorf("default route via %s in %s: %w", gw, p.NetnsPath, err)
		}
	}
	for _, rt := range p.Routes {
		r := &netlink.Route{LinkIndex: in.Attrs().Index, Dst: ipNet(rt.Dst.Masked())}
		if rt.Via.IsValid() {
			r.Gw = net.IP(rt.Via.AsSlice())
		}
		if err := nh.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s via %s in %s: %w", rt.Dst, rt.Via, p.NetnsPath, err)
		}
	}
	return nil
}

// Leave removes the veth pair by its host side; a missing one (its
// namespace is gone, which destroys the pair) is not an error.
func Leave(h *netlink.Handle, hostIfName string) error {
	return deleteLink(h, hostIfName)
}

// SetQoS limits the egress of ifName inside the namespace at netnsPath
// to bytesPerSec with a token bucket (tbf root qdisc); 0 removes the
// limit. Egress of the container's side is the container's outgoing
// traffic, which HNS's MaximumOutgoingBandwidthInBytes limits.
func SetQoS(netnsPath, ifName string, bytesPerSec uint64) error {
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", netnsPath, err)
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle in namespace %s: %w", netnsPath, err)
	}
	defer nh.Close()
	l, err := nh.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", ifName, netnsPath, err)
	}
	qattrs := netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}
	if bytesPerSec == 0 {
		err := nh.QdiscDel(&netlink.Tbf{QdiscAttrs: qattrs})
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("remove qos of %s in %s: %w", ifName, netnsPath, err)
		}
		return nil
	}
	// Burst: 10 ms worth of traffic, at least 64 KiB (a TSO segment);
	// queue: 50 ms worth, so bursts queue rather than drop.
	burst := max(bytesPerSec/100, 64<<10)
	limit := max(bytesPerSec/20, burst)
	tbf := &netlink.Tbf{
		QdiscAttrs: qattrs,
		Rate:       bytesPerSec,
		Buffer:     netlink.Xmittime(bytesPerSec, uint32(min(burst, 1<<31))),
		Limit:      uint32(min(limit, 1<<31)),
	}
	if err := nh.QdiscReplace(tbf); err != nil {
		return fmt.Errorf("set qos %d bytes/s on %s in %s: %w", bytesPerSec, ifName, netnsPath, err)
	}
	return nil
}

func deleteLink(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

package overlay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
	"github.com/silo-containers/silo/internal/network/drivers/attach"
)

// Driver is the overlay driver.
type Driver struct{}

var _ network.Driver = Driver{}

// New returns the overlay driver.
func New() Driver { return Driver{} }

// Type is overlay.
func (Driver) Type() network.Type { return network.Overlay }

// Validate checks the VXLAN settings, names the VXLAN device
// (n.Interface) and records the VNI and port chosen by default as VSID and
// VxlanPort policies, so that inspect shows what the kernel was given.
func (Driver) Validate(n *network.Network) error {
	if n.Type != network.Overlay {
		return fmt.Errorf("network %q: type %q given to the overlay driver: %w", n.Name, n.Type, errdefs.ErrInvalidArgument)
	}
	c, err := parse(n)
	if err != nil {
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	if c.vni == 0 {
		c.vni = defaultVNI(n.ID)
	}
	if !hasPolicy(n, network.VSID) {
		n.Policies = append(n.Policies, network.NetworkPolicy{Type: network.VSID, Settings: network.NetworkPolicySettings{IsolationID: c.vni}})
	}
	if !hasPolicy(n, network.VxlanPort) {
		n.Policies = append(n.Policies, network.NetworkPolicy{Type: network.VxlanPort, Settings: network.NetworkPolicySettings{Port: c.port}})
	}
	if c.parent != "" {
		attach.SetParentPolicy(n, c.parent)
	}
	n.Interface = c.vxlan
	return nil
}

func hasPolicy(n *network.Network, t network.NetworkPolicyType) bool {
	for _, p := range n.Policies {
		if p.Type == t {
			return true
		}
	}
	return false
}

// settings reads n's settings, with the default VNI filled in.
func settings(n *network.Network) (config, error) {
	c, err := parse(n)
	if err != nil {
		return c, fmt.Errorf("network %q: %w", n.Name, err)
	}
	if c.vni == 0 {
		c.vni = defaultVNI(n.ID)
	}
	return c, nil
}

// Setup creates or re-finds the bridge and the VXLAN device (made again
// when its VNI, port, source or underlay device changed) and makes the
// forwarding database's static entries exactly those of the policies.
func (Driver) Setup(ctx context.Context, h *network.HostNS, n *network.Network) error {
	c, err := settings(n)
	if err != nil {
		return err
	}
	mtu := 1500
	parentIndex := 0
	if c.parent != "" {
		p, err := h.Link.LinkByName(c.parent)
		if err != nil {
			if attach.IsNotFound(err) {
				return fmt.Errorf("network %q: underlay interface %q does not exist: %w", n.Name, c.parent, errdefs.ErrInvalidArgument)
			}
			return fmt.Errorf("network %q: find underlay interface %q: %w", n.Name, c.parent, err)
		}
		mtu, parentIndex = p.Attrs().MTU, p.Attrs().Index
	}
	mtu -= c.overhead()

	br, err := attach.FindKind(h.Link, c.bridge, "bridge")
	if err != nil {
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	if br == nil {
		nb := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: c.bridge, MTU: mtu, HardwareAddr: gatewayMAC(n.ID)}}
		if err := h.Link.LinkAdd(nb); err != nil {
			return fmt.Errorf("network %q: create bridge %q: %w", n.Name, c.bridge, err)
		}
		if br, err = h.Link.LinkByName(c.bridge); err != nil {
			return fmt.Errorf("network %q: find new bridge %q: %w", n.Name, c.bridge, err)
		}
	}
	if mac := gatewayMAC(n.ID); br.Attrs().HardwareAddr.String() != mac.String() {
		if err := h.Link.LinkSetHardwareAddr(br, mac); err != nil {
			return fmt.Errorf("network %q: set gateway MAC on bridge %q: %w", n.Name, c.bridge, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	vx, err := attach.FindKind(h.Link, c.vxlan, "vxlan")
	if err != nil {
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	if vx != nil && !sameVxlan(vx.(*netlink.Vxlan), c, parentIndex) {
		if err := h.Link.LinkDel(vx); err != nil {
			return fmt.Errorf("network %q: remove outdated VXLAN device %q: %w", n.Name, c.vxlan, err)
		}
		vx = nil
	}
	if vx == nil {
		v := &netlink.Vxlan{
			LinkAttrs:    netlink.LinkAttrs{Name: c.vxlan, MTU: mtu},
			VxlanId:      int(c.vni),
			VtepDevIndex: parentIndex,
			Port:         int(c.port),
			Learning:     true,
		}
		if c.local.IsValid() {
			v.SrcAddr = c.local.AsSlice()
		}
		if err := h.Link.LinkAdd(v); err != nil {
			return fmt.Errorf("network %q: create VXLAN device %q (VNI %d, port %d): %w", n.Name, c.vxlan, c.vni, c.port, err)
		}
		if vx, err = h.Link.LinkByName(c.vxlan); err != nil {
			return fmt.Errorf("network %q: find new VXLAN device %q: %w", n.Name, c.vxlan, err)
		}
	}
	if vx.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.Link.LinkSetMaster(vx, br); err != nil {
			return fmt.Errorf("network %q: enslave %q to bridge %q: %w", n.Name, c.vxlan, c.bridge, err)
		}
	}
	if err := h.Link.LinkSetUp(vx); err != nil {
		return fmt.Errorf("network %q: set %q up: %w", n.Name, c.vxlan, err)
	}
	if err := h.Link.LinkSetUp(br); err != nil {
		return fmt.Errorf("network %q: set %q up: %w", n.Name, c.bridge, err)
	}
	// The gateway's ARP and neighbour solicitations are answered by
	// this host's bridge and not flooded into the tunnel, where every
	// other host's bridge would answer too.
	if err := h.Link.LinkSetBrNeighSuppress(vx, true); err != nil {
		return fmt.Errorf("network %q: neighbour suppression on %q: %w", n.Name, c.vxlan, err)
	}
	if err := attach.SetAddresses(h.Link, br, gatewayAddrs(n)); err != nil {
		return fmt.Errorf("network %q: gateway on bridge %q: %w", n.Name, c.bridge, err)
	}
	if err := syncFDB(h.Link, vx, c.remote); err != nil {
		return fmt.Errorf("network %q: VXLAN device %q: %w", n.Name, c.vxlan, err)
	}
	return nil
}

// gatewayMAC is the bridge's MAC: derived from the network id, so that
// it is the same on every host (an anycast gateway) and a container's
// cached gateway MAC stays right whichever host answered or refreshed it.
func gatewayMAC(id string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("silo overlay gateway " + id))
	// 0x02: a locally administered unicast address.
	return net.HardwareAddr{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]}
}

// gatewayAddrs are the bridge's addresses: each subnet's gateway with the
// subnet's prefix length.
func gatewayAddrs(n *network.Network) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range n.Subnets {
		if gw := s.Gateway.Unmap(); gw.IsValid() {
			out = append(out, netip.PrefixFrom(gw, s.Prefix.Bits()))
		}
	}
	return out
}

// sameVxlan reports whether an existing VXLAN device has c's settings.
func sameVxlan(v *netlink.Vxlan, c config, parentIndex int) bool {
	var src netip.Addr
	if a, ok := netip.AddrFromSlice(v.SrcAddr); ok {
		src = a.Unmap()
	}
	if src.IsUnspecified() {
		src = netip.Addr{}
	}
	return v.VxlanId == int(c.vni) && v.Port == int(c.port) && src == c.local && v.VtepDevIndex == parentIndex
}

// fdbEntry is one static forwarding entry: frames to mac go to the
// provider address dst.
type fdbEntry struct {
	mac string
	dst netip.Addr
}

// zeroMAC is the forwarding database's default entry: where frames with
// no entry of their own (broadcast, multicast, unknown unicast) go.
var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// syncFDB makes vx's static entries those of remotes: missing ones added,
// ones of removed remotes deleted. Learned entries are left alone.
func syncFDB(h *netlink.Handle, vx netlink.Link, remotes []remote) error {
	want := map[fdbEntry]bool{}
	for _, r := range remotes {
		want[fdbEntry{zeroMAC.String(), r.pa}] = true
		if r.mac != nil {
			want[fdbEntry{r.mac.String(), r.pa}] = true
		}
	}
	have, err := h.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("list forwarding entries: %w", err)
	}
	present := map[fdbEntry]bool{}
	for _, e := range have {
		a, ok := netip.AddrFromSlice(e.IP)
		if !ok || e.State&netlink.NUD_PERMANENT == 0 {
			continue
		}
		k := fdbEntry{e.HardwareAddr.String(), a.Unmap()}
		if want[k] {
			present[k] = true
			continue
		}
		if err := h.NeighDel(&e); err != nil {
			return fmt.Errorf("remove forwarding entry %s → %s: %w", k.mac, k.dst, err)
		}
	}
	for _, r := range remotes {
		entries := []fdbEntry{{zeroMAC.String(), r.pa}}
		if r.mac != nil {
			entries = append(entries, fdbEntry{r.mac.String(), r.pa})
		}
		for _, k := range entries {
			if present[k] {
				continue
			}
			mac, _ := net.ParseMAC(k.mac)
			nb := &netlink.Neigh{
				LinkIndex:    vx.Attrs().Index,
				Family:       unix.AF_BRIDGE,
				State:        netlink.NUD_PERMANENT | netlink.NUD_NOARP,
				Flags:        netlink.NTF_SELF,
				HardwareAddr: mac,
				IP:           k.dst.AsSlice(),
			}
			// The all-zero MAC has one entry per remote host (appended);
			// any other MAC lives at one host (replaced).
			add := h.NeighSet
			if bytes.Equal(mac, zeroMAC) {
				add = h.NeighAppend
			}
			if err := add(nb); err != nil {
				return fmt.Errorf("add forwarding entry %s → %s: %w", k.mac, k.dst, err)
			}
			present[k] = true
		}
	}
	return nil
}

// Teardown removes the VXLAN device (its forwarding database goes with
// it) and the bridge.
func (Driver) Teardown(ctx context.Context, h *network.HostNS, n *network.Network) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := settings(n)
	if err != nil {
		return err
	}
	if err := attach.RemoveLink(h.Link, c.vxlan, "vxlan"); err != nil {
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	if err := attach.RemoveLink(h.Link, c.bridge, "bridge"); err != nil {
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	return nil
}

// Join makes the endpoint's veth pair into the overlay's bridge and
// configures the namespace side, with routes to remote prefixes outside
// the network's subnets.
func (Driver) Join(ctx context.Context, h *network.HostNS, n *network.Network, ep *network.Endpoint) error {
	if err := attach.ValidIfName(ep.IfName); err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	c, err := settings(n)
	if err != nil {
		return err
	}
	br, err := attach.FindKind(h.Link, c.bridge, "bridge")
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	if br == nil {
		return fmt.Errorf("endpoint %s: bridge %q of network %q does not exist (network not set up): %w", ep.ID, c.bridge, n.Name, errdefs.ErrNotFound)
	}
	ns, err := attach.OpenNS(ep.NetnsPath)
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	defer ns.Close()
	if err := attach.Veth(ctx, h, ns, ep, br, br.Attrs().MTU); err != nil {
		return err
	}
	routes := append(attach.SubnetRoutes(n, ep), c.endpointRoutes(n, ep)...)
	if err := attach.Configure(ctx, ns, ep, routes); err != nil {
		_ = attach.RemoveVeth(h, ns, ep)
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	return nil
}

// Leave removes the endpoint's veth pair.
func (Driver) Leave(ctx context.Context, h *network.HostNS, n *network.Network, ep *network.Endpoint) error {
	return attach.LeaveVeth(ctx, h, ep)
}

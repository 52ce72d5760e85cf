//go:build integration

package network

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
	"github.com/silo-containers/silo/internal/network/drivers/attach"
	"github.com/silo-containers/silo/internal/network/drivers/l2bridge"
	"github.com/silo-containers/silo/internal/network/drivers/macvlan"
	"github.com/silo-containers/silo/internal/network/drivers/overlay"
)

// noRootLinks fails if the test's own namespace holds any of names: the
// drivers work only in the HostNS they are given.
func noRootLinks(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := netlink.LinkByName(n); err == nil {
			t.Errorf("interface %q made in the test's own namespace", n)
		}
	}
}

func adapterPolicy(name string) network.NetworkPolicy {
	return network.NetworkPolicy{Type: network.NetAdapterName, Settings: network.NetworkPolicySettings{NetworkAdapterName: name}}
}

// joinTwice joins ep twice (the second must keep the interface the first
// made) and registers a Leave at cleanup.
func joinTwice(t *testing.T, d network.Driver, h *network.HostNS, n *network.Network, ep *network.Endpoint) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() { _ = d.Leave(ctx, h, n, ep) })
	nh := openNetlinkAt(t, ep.NetnsPath)
	index := 0
	for i := 0; i < 2; i++ {
		start := time.Now()
		if err := d.Join(ctx, h, n, ep); err != nil {
			t.Fatalf("join %d of %s: %v", i+1, ep.Addresses, err)
		}
		t.Logf("%s join %d of %s: %v", d.Type(), i+1, ep.Addresses, time.Since(start))
		l, err := nh.LinkByName(ep.IfName)
		if err != nil {
			t.Fatalf("join %d of %s: %v", i+1, ep.Addresses, err)
		}
		if i == 1 && l.Attrs().Index != index {
			t.Fatalf("second join of %s made the interface again", ep.Addresses)
		}
		index = l.Attrs().Index
	}
}

// checkEndpoint checks the interface an endpoint got in its namespace.
func checkEndpoint(t *testing.T, ep *network.Endpoint, kind string, mtu int) {
	t.Helper()
	h := openNetlinkAt(t, ep.NetnsPath)
	l, err := h.LinkByName(ep.IfName)
	if err != nil {
		t.Fatalf("endpoint interface: %v", err)
	}
	if l.Type() != kind {
		t.Errorf("endpoint interface is a %s, want %s", l.Type(), kind)
	}
	if l.Attrs().HardwareAddr.String() != ep.MAC {
		t.Errorf("endpoint MAC %s, want %s", l.Attrs().HardwareAddr, ep.MAC)
	}
	if mtu != 0 && l.Attrs().MTU != mtu {
		t.Errorf("endpoint MTU %d, want %d", l.Attrs().MTU, mtu)
	}
	want := []string{ep.Addresses[0].String()}
	if got := addrsOf(t, h, ep.IfName); !slices.Equal(got, want) {
		t.Errorf("endpoint addresses %v, want %v", got, want)
	}
	if len(ep.Gateways) > 0 {
		routes, err := h.RouteList(l, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		defaults := 0
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw.Equal(ep.Gateways[0].AsSlice()) {
				defaults++
			}
		}
		if defaults != 1 {
			t.Errorf("%d default routes via %s, want 1: %v", defaults, ep.Gateways[0], routes)
		}
	}
}

func TestTransparent(t *testing.T) {
	ctx := context.Background()
	l := newLAN(t)
	a := l.addHost("a", "10.99.0.1/24")
	b := l.addHost("b", "10.99.0.2/24")

	d := macvlan.NewTransparent()
	n := &network.Network{
		ID: lanRandHex(t, 32), Name: "lan", Type: network.Transparent,
		Subnets: []network.Subnet{{Prefix: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("10.99.0.2")}},
		Options: map[string]string{"parent": "eth0"},
	}
	if err := d.Validate(n); err != nil {
		t.Fatal(err)
	}
	if n.Interface != "eth0" || len(n.Policies) != 1 || n.Policies[0].Settings.NetworkAdapterName != "eth0" {
		t.Fatalf("validate filled Interface %q, policies %+v", n.Interface, n.Policies)
	}
	for i := 0; i < 2; i++ {
		if err := d.Setup(ctx, a.HNS, n); err != nil {
			t.Fatalf("setup %d: %v", i+1, err)
		}
	}
	t.Cleanup(func() { _ = d.Teardown(ctx, a.HNS, n) })

	c1, p1 := l.container("t1")
	c2, p2 := l.container("t2")
	ep1 := handEndpoint(t, p1, "10.99.0.10/24", "02:42:0a:63:00:0a", "10.99.0.2")
	ep2 := handEndpoint(t, p2, "10.99.0.11/24", "02:42:0a:63:00:0b", "10.99.0.2")
	joinTwice(t, d, a.HNS, n, ep1)
	joinTwice(t, d, a.HNS, n, ep2)
	checkEndpoint(t, ep1, "macvlan", 1500)
	onlyLinks(t, a.HNS.Link, "eth0")

	mustPing(t, b.ns, "10.99.0.10") // LAN host → container
	mustPing(t, c1, "10.99.0.2")    // container → LAN host
	mustPing(t, c1, "10.99.0.11")   // container → container, switched by the macvlan bridge
	mustPing(t, c2, "10.99.0.10")
	mustPing(t, a.ns, "10.99.0.2") // the host keeps its own address

	if err := d.Leave(ctx, a.HNS, n, ep1); err != nil {
		t.Fatal(err)
	}
	if err := d.Leave(ctx, a.HNS, n, ep1); err != nil {
		t.Fatalf("second leave: %v", err)
	}
	onlyLinks(t, openNetlinkAt(t, p1))
	mustNotPing(t, b.ns, "10.99.0.10")

	// Leave on a namespace that is gone is fine: removed, or unmounted
	// leaving a plain file at the path.
	lanRun(t, "ip", "netns", "del", c2)
	if err := d.Leave(ctx, a.HNS, n, ep2); err != nil {
		t.Fatalf("leave on a removed namespace: %v", err)
	}
	lanRun(t, "ip", "netns", "add", c2) // for the cleanup's del
	lanRun(t, "umount", p2)
	if err := d.Leave(ctx, a.HNS, n, ep2); err != nil {
		t.Fatalf("leave on an unmounted namespace: %v", err)
	}
	if err := d.Join(ctx, a.HNS, n, ep2); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("join on an unmounted namespace: %v, want not found", err)
	}

	for i := 0; i < 2; i++ {
		if err := d.Teardown(ctx, a.HNS, n); err != nil {
			t.Fatalf("teardown %d: %v", i+1, err)
		}
	}
	onlyLinks(t, a.HNS.Link, "eth0")
	noRootLinks(t, attach.HostVethName(ep1.ID))
}

func TestTransparentBadParent(t *testing.T) {
	ctx := context.Background()
	l := newLAN(t)
	a := l.addHost("a", "10.99.0.1/24")
	d := macvlan.NewTransparent()
	n := &network.Network{ID: lanRandHex(t, 32), Name: "lan", Type: network.Transparent, Policies: []network.NetworkPolicy{adapterPolicy("nosuch0")}}
	if err := d.Validate(n); err != nil {
		t.Fatal(err)
	}
	if err := d.Setup(ctx, a.HNS, n); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("setup on a missing parent: %v, want invalid argument", err)
	}
	onlyLinks(t, a.HNS.Link, "eth0")
}

func TestL2Tunnel(t *testing.T) {
	ctx := context.Background()
	l := newLAN(t)
	a := l.addHost("a", "10.99.0.1/24")
	b := l.addHost("b", "10.99.0.2/24")

	d := macvlan.NewL2Tunnel()
	n := &network.Network{
		ID: lanRandHex(t, 32), Name: "tun", Type: network.L2Tunnel,
		Subnets:  []network.Subnet{{Prefix: netip.MustParsePrefix("10.99.0.0/24")}},
		Policies: []network.NetworkPolicy{adapterPolicy("eth0")},
	}
	if err := d.Validate(n); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := d.Setup(ctx, a.HNS, n); err != nil {
			t.Fatalf("setup %d: %v", i+1, err)
		}
	}
	t.Cleanup(func() { _ = d.Teardown(ctx, a.HNS, n) })
	c1, p1 := l.container("u1")
	c2, p2 := l.container("u2")
	ep1 := handEndpoint(t, p1, "10.99.0.20/24", "02:42:0a:63:00:14")
	ep2 := handEndpoint(t, p2, "10.99.0.21/24", "02:42:0a:63:00:15")
	joinTwice(t, d, a.HNS, n, ep1)
	joinTwice(t, d, a.HNS, n, ep2)
	checkEndpoint(t, ep1, "macvlan", 1500)
	h1 := openNetlinkAt(t, p1)
	if mv, err := h1.LinkByName("eth0"); err != nil || mv.(*netlink.Macvlan).Mode != netlink.MACVLAN_MODE_VEPA {
		t.Fatalf("endpoint link %v (%v), want a VEPA macvlan", mv, err)
	}

	mustPing(t, c1, "10.99.0.2")
	mustPing(t, b.ns, "10.99.0.21")

	// VEPA: two containers on one host reach each other only through
	// the switch, and only when its port reflects frames back.
	l.hairpin(a, false)
	mustNotPing(t, c1, "10.99.0.21")
	l.hairpin(a, true)
	mustPing(t, c1, "10.99.0.21")
	mustPing(t, c2, "10.99.0.20")

	for _, ep := range []*network.Endpoint{ep1, ep2} {
		if err := d.Leave(ctx, a.HNS, n, ep); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Teardown(ctx, a.HNS, n); err != nil {
		t.Fatal(err)
	}
	onlyLinks(t, h1)
	onlyLinks(t, a.HNS.Link, "eth0")
}

func TestL2Bridge(t *testing.T) {
	ctx := context.Background()
	l := newLAN(t)
	a := l.addHost("a", "10.99.0.1/24", "fd99::1/64")
	b := l.addHost("b", "10.99.0.2/24", "fd99::2/64")
	// A route of host a's own that must follow its address.
	eth0, err := a.HNS.Link.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	extra := &netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: lanIPNet(netip.MustParsePrefix("10.98.0.0/16")), Gw: netip.MustParseAddr("10.99.0.2").AsSlice()}
	if err := a.HNS.Link.RouteAdd(extra); err != nil {
		t.Fatal(err)
	}
	routeDev := func() string {
		t.Helper()
		rs, err := a.HNS.Link.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: extra.Dst}, netlink.RT_FILTER_DST)
		if err != nil || len(rs) != 1 {
			t.Fatalf("routes to %s: %v (%v), want one", extra.Dst, rs, err)
		}
		dev, err := a.HNS.Link.LinkByIndex(rs[0].LinkIndex)
		if err != nil {
			t.Fatal(err)
		}
		return dev.Attrs().Name
	}

	d := l2bridge.New()
	n := &network.Network{
		ID: lanRandHex(t, 32), Name: "l2", Type: network.L2Bridge,
		Subnets:  []network.Subnet{{Prefix: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("10.99.0.2")}},
		Policies: []network.NetworkPolicy{adapterPolicy("eth0")},
	}
	if err := d.Validate(n); err != nil {
		t.Fatal(err)
	}
	br := "l2br-" + n.ID[:8]
	if n.Interface != br {
		t.Fatalf("Interface %q, want %q", n.Interface, br)
	}
	for i := 0; i < 2; i++ {
		if err := d.Setup(ctx, a.HNS, n); err != nil {
			t.Fatalf("setup %d: %v", i+1, err)
		}
	}
	t.Cleanup(func() { _ = d.Teardown(ctx, a.HNS, n) })
	onlyLinks(t, a.HNS.Link, "eth0", br)
	if got := addrsOf(t, a.HNS.Link, br); !slices.Equal(got, []string{"10.99.0.1/24"}) {
		t.Errorf("bridge addresses %v, want the host's", got)
	}
	if got := addrs6Of(t, a.HNS.Link, br); !slices.Equal(got, []string{"fd99::1/64"}) {
		t.Errorf("bridge IPv6 addresses %v, want the host's", got)
	}
	if got := append(addrsOf(t, a.HNS.Link, "eth0"), addrs6Of(t, a.HNS.Link, "eth0")...); len(got) != 0 {
		t.Errorf("eth0 addresses %v after setup, want none", got)
	}
	if dev := routeDev(); dev != br {
		t.Errorf("host route through %s after setup, want %s", dev, br)
	}
	brLink, _ := a.HNS.Link.LinkByName(br)
	eth0, _ = a.HNS.Link.LinkByName("eth0")
	if brLink.Attrs().HardwareAddr.String() != eth0.Attrs().HardwareAddr.String() {
		t.Errorf("bridge MAC %s, want eth0's %s", brLink.Attrs().HardwareAddr, eth0.Attrs().HardwareAddr)
	}
	// A move cut short (or a DHCP client putting the address back on
	// eth0): the next Setup finishes it.
	if err := a.HNS.Link.AddrAdd(eth0, &netlink.Addr{IPNet: lanIPNet(netip.MustParsePrefix("10.99.0.1/24"))}); err != nil {
		t.Fatal(err)
	}
	if err := d.Setup(ctx, a.HNS, n); err != nil {
		t.Fatal(err)
	}
	if got := append(addrsOf(t, a.HNS.Link, br), addrsOf(t, a.HNS.Link, "eth0")...); !slices.Equal(got, []string{"10.99.0.1/24"}) {
		t.Errorf("addresses of bridge and eth0 after a half move and setup: %v, want the host's on the bridge only", got)
	}
	mustPing(t, b.ns, "10.99.0.1") // the host keeps its address
	mustPing(t, b.ns, "fd99::1")
	mustPing(t, a.ns, "10.99.0.2")

	c1, p1 := l.container("l1")
	ep1 := handEndpoint(t, p1, "10.99.0.30/24,fd99::30/64", "02:42:0a:63:00:1e", "10.99.0.2")
	// Half a pair left by a crashed Join: the host side exists, its peer
	// is not in the container. Join must replace it.
	stray := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: attach.HostVethName(ep1.ID)}, PeerName: "stray0"}
	if err := a.HNS.Link.LinkAdd(stray); err != nil {
		t.Fatal(err)
	}
	joinTwice(t, d, a.HNS, n, ep1)
	checkEndpoint(t, ep1, "veth", 1500)
	onlyLinks(t, a.HNS.Link, "eth0", br, ep1.HostIfName)
	mustPing(t, b.ns, "10.99.0.30")
	mustPing(t, b.ns, "fd99::30")
	mustPing(t, c1, "10.99.0.2")
	mustPing(t, c1, "10.99.0.1") // its own host, through the bridge

	if err := d.Leave(ctx, a.HNS, n, ep1); err != nil {
		t.Fatal(err)
	}
	onlyLinks(t, a.HNS.Link, "eth0", br)
	onlyLinks(t, openNetlinkAt(t, p1))
	for i := 0; i < 2; i++ {
		if err := d.Teardown(ctx, a.HNS, n); err != nil {
			t.Fatalf("teardown %d: %v", i+1, err)
		}
	}
	onlyLinks(t, a.HNS.Link, "eth0")
	if got := append(addrsOf(t, a.HNS.Link, "eth0"), addrs6Of(t, a.HNS.Link, "eth0")...); !slices.Equal(got, []string{"10.99.0.1/24", "fd99::1/64"}) {
		t.Errorf("eth0 addresses %v after teardown, want the host's back", got)
	}
	if dev := routeDev(); dev != "eth0" {
		t.Errorf("host route through %s after teardown, want eth0", dev)
	}
	mustPing(t, b.ns, "10.99.0.1")
	mustPing(t, b.ns, "fd99::1")
	mustPing(t, a.ns, "10.99.0.2")
	noRootLinks(t, br, ep1.HostIfName)
}

// fdb lists the static forwarding entries of a VXLAN device as "mac dst".
func vxlanFDB(t *testing.T, h *netlink.Handle, dev string) []string {
	t.Helper()
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := h.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ns {
		if e.IP != nil && e.State&netlink.NUD_PERMANENT != 0 {
			out = append(out, e.HardwareAddr.String()+" "+e.IP.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestOverlay(t *testing.T) {
	ctx := context.Background()
	l := newLAN(t)
	a := l.addHost("a", "10.99.0.1/24")
	b := l.addHost("b", "10.99.0.2/24")
	id := lanRandHex(t, 32)
	const macB = "02:42:0a:c8:02:02"
	mk := func(pa, range_, remotePA, remotePrefix, drMAC string) *network.Network {
		return &network.Network{
			ID: id, Name: "ov", Type: network.Overlay,
			Subnets: []network.Subnet{{Prefix: netip.MustParsePrefix("10.200.0.0/16"), Gateway: netip.MustParseAddr("10.200.0.1"), IPRange: netip.MustParsePrefix(range_)}},
			Policies: []network.NetworkPolicy{
				adapterPolicy("eth0"),
				{Type: network.ProviderAddress, Settings: network.NetworkPolicySettings{ProviderAddress: netip.MustParseAddr(pa)}},
				{Type: network.RemoteSubnetRoute, Settings: network.NetworkPolicySettings{
					ProviderAddress:             netip.MustParseAddr(remotePA),
					DestinationPrefix:           netip.MustParsePrefix(remotePrefix),
					DistributedRouterMacAddress: drMAC,
				}},
			},
		}
	}
	d := overlay.New()
	na := mk("10.99.0.1", "10.200.1.0/24", "10.99.0.2", "10.200.2.0/24", macB)
	nb := mk("10.99.0.2", "10.200.2.0/24", "10.99.0.1", "10.200.1.0/24", "")
	for _, n := range []*network.Network{na, nb} {
		if err := d.Validate(n); err != nil {
			t.Fatal(err)
		}
	}
	vx, ov := "vx-"+id[:8], "ov-"+id[:8]
	if na.Interface != vx {
		t.Fatalf("Interface %q, want %q", na.Interface, vx)
	}
	var vni uint32
	for _, p := range na.Policies {
		if p.Type == network.VSID {
			vni = p.Settings.IsolationID
		}
	}
	if vni < overlay.MinDefaultVNI {
		t.Fatalf("default VNI %d, want at least %d", vni, overlay.MinDefaultVNI)
	}
	for i := 0; i < 2; i++ {
		if err := d.Setup(ctx, a.HNS, na); err != nil {
			t.Fatalf("setup %d on a: %v", i+1, err)
		}
	}
	t.Cleanup(func() { _ = d.Teardown(ctx, a.HNS, na) })
	if err := d.Setup(ctx, b.HNS, nb); err != nil {
		t.Fatalf("setup on b: %v", err)
	}
	t.Cleanup(func() { _ = d.Teardown(ctx, b.HNS, nb) })

	if got, want := vxlanFDB(t, a.HNS.Link, vx), []string{"00:00:00:00:00:00 10.99.0.2", macB + " 10.99.0.2"}; !slices.Equal(got, want) {
		t.Errorf("forwarding entries on a %v, want %v", got, want)
	}
	if got, want := vxlanFDB(t, b.HNS.Link, vx), []string{"00:00:00:00:00:00 10.99.0.1"}; !slices.Equal(got, want) {
		t.Errorf("forwarding entries on b %v, want %v", got, want)
	}
	link, err := a.HNS.Link.LinkByName(vx)
	if err != nil {
		t.Fatal(err)
	}
	v := link.(*netlink.Vxlan)
	if v.VxlanId != int(vni) || v.Port != 4789 || !v.SrcAddr.Equal(netip.MustParseAddr("10.99.0.1").AsSlice()) || v.MTU != 1450 {
		t.Errorf("vxlan VNI %d port %d local %s mtu %d, want %d 4789 10.99.0.1 1450", v.VxlanId, v.Port, v.SrcAddr, v.MTU, vni)
	}

	ca, pa := l.container("oa")
	cb, pb := l.container("ob")
	epA := handEndpoint(t, pa, "10.200.1.2/16", "02:42:0a:c8:01:02", "10.200.0.1")
	epB := handEndpoint(t, pb, "10.200.2.2/16", macB, "10.200.0.1")
	joinTwice(t, d, a.HNS, na, epA)
	joinTwice(t, d, b.HNS, nb, epB)
	checkEndpoint(t, epA, "veth", 1450)
	mustPing(t, ca, "10.200.2.2")
	mustPing(t, cb, "10.200.1.2")

	// The anycast gateway: the same address and MAC on both hosts'
	// bridges, its lookups kept off the tunnel.
	brA, _ := a.HNS.Link.LinkByName(ov)
	brB, _ := b.HNS.Link.LinkByName(ov)
	if brA.Attrs().HardwareAddr.String() != brB.Attrs().HardwareAddr.String() {
		t.Errorf("gateway MACs %s and %s differ", brA.Attrs().HardwareAddr, brB.Attrs().HardwareAddr)
	}
	for _, h := range []*network.HostNS{a.HNS, b.HNS} {
		if got := addrsOf(t, h.Link, ov); !slices.Equal(got, []string{"10.200.0.1/16"}) {
			t.Errorf("bridge addresses %v, want the gateway", got)
		}
		vxl, _ := h.Link.LinkByName(vx)
		if pi, err := h.Link.LinkGetProtinfo(vxl); err != nil || !pi.NeighSuppress {
			t.Errorf("neighbour suppression on %s: %v (%v), want on", vx, pi, err)
		}
	}
	mustPing(t, ca, "10.200.0.1")
	mustPing(t, cb, "10.200.0.1")
	// Had a's container's ARP for the gateway crossed the tunnel, b's
	// bridge (the same gateway address) would have answered it and
	// learned a neighbour entry for that container.
	neighs, err := b.HNS.Link.NeighList(brB.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range neighs {
		if e.IP.Equal(netip.MustParseAddr("10.200.1.2").AsSlice()) {
			t.Errorf("host b learned a's container (%v): gateway ARP crossed the tunnel", e)
		}
	}
	mustPing(t, a.ns, "10.200.1.2") // the host reaches its container

	// A Setup after the VXLAN device was lost (a daemon start after
	// someone removed it) makes it again, entries and all.
	if err := a.HNS.Link.LinkDel(link); err != nil {
		t.Fatal(err)
	}
	mustNotPing(t, ca, "10.200.2.2")
	if err := d.Setup(ctx, a.HNS, na); err != nil {
		t.Fatalf("setup after the VXLAN device was lost: %v", err)
	}
	if got := vxlanFDB(t, a.HNS.Link, vx); len(got) != 2 {
		t.Errorf("forwarding entries after the device was made again: %v", got)
	}
	mustPing(t, ca, "10.200.2.2")

	// A Setup after the policies changed keeps only the new entries.
	na2 := mk("10.99.0.1", "10.200.1.0/24", "10.99.0.2", "10.200.2.0/24", "")
	na2.Policies = append(na2.Policies, na.Policies[3:]...) // the VSID and port Validate chose
	if err := d.Setup(ctx, a.HNS, na2); err != nil {
		t.Fatal(err)
	}
	if got, want := vxlanFDB(t, a.HNS.Link, vx), []string{"00:00:00:00:00:00 10.99.0.2"}; !slices.Equal(got, want) {
		t.Errorf("forwarding entries after the DR MAC was dropped %v, want %v", got, want)
	}
	mustPing(t, ca, "10.200.2.2")

	if err := d.Leave(ctx, a.HNS, na, epA); err != nil {
		t.Fatal(err)
	}
	if err := d.Leave(ctx, b.HNS, nb, epB); err != nil {
		t.Fatal(err)
	}
	onlyLinks(t, a.HNS.Link, "eth0", vx, ov)
	for _, s := range []struct {
		h *network.HostNS
		n *network.Network
	}{{a.HNS, na}, {b.HNS, nb}} {
		for i := 0; i < 2; i++ {
			if err := d.Teardown(ctx, s.h, s.n); err != nil {
				t.Fatalf("teardown %d: %v", i+1, err)
			}
		}
		onlyLinks(t, s.h.Link, "eth0")
		// The forwarding entries lived on the device: nothing of them
		// may be left on the underlay interface either.
		eth0, _ := s.h.Link.LinkByName("eth0")
		if ns, _ := s.h.Link.NeighList(eth0.Attrs().Index, unix.AF_BRIDGE); len(ns) != 0 {
			for _, e := range ns {
				if e.State&netlink.NUD_PERMANENT != 0 && e.IP != nil {
					t.Errorf("forwarding entry %v left on eth0", e)
				}
			}
		}
	}
	noRootLinks(t, vx, ov)
}

// TestOverlayRemotePrefix: each host's network knows only its own /24
// (Kubernetes style); the other host's prefix is outside it and becomes
// an on-link route in endpoints (they have no gateway), carried by the
// tunnel.
func TestOverlayRemotePrefix(t *testing.T) {
	ctx := context.Background()
	l := newLAN(t)
	a := l.addHost("a", "10.99.0.1/24")
	b := l.addHost("b", "10.99.0.2/24")
	id := lanRandHex(t, 32)
	mk := func(pa, own, remotePA, remotePrefix string) *network.Network {
		return &network.Network{
			ID: id, Name: "ov", Type: network.Overlay,
			Subnets: []network.Subnet{{Prefix: netip.MustParsePrefix(own)}},
			Options: map[string]string{"vni": "5001"},
			Policies: []network.NetworkPolicy{
				{Type: network.VxlanPort, Settings: network.NetworkPolicySettings{Port: 4790}},
				{Type: network.ProviderAddress, Settings: network.NetworkPolicySettings{ProviderAddress: netip.MustParseAddr(pa)}},
				{Type: network.RemoteSubnetRoute, Settings: network.NetworkPolicySettings{
					ProviderAddress:   netip.MustParseAddr(remotePA),
					DestinationPrefix: netip.MustParsePrefix(remotePrefix),
				}},
			},
		}
	}
	d := overlay.New()
	na := mk("10.99.0.1", "10.201.1.0/24", "10.99.0.2", "10.201.2.0/24")
	nb := mk("10.99.0.2", "10.201.2.0/24", "10.99.0.1", "10.201.1.0/24")
	for _, s := range []struct {
		h *network.HostNS
		n *network.Network
	}{{a.HNS, na}, {b.HNS, nb}} {
		if err := d.Validate(s.n); err != nil {
			t.Fatal(err)
		}
		if err := d.Setup(ctx, s.h, s.n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Teardown(ctx, s.h, s.n) })
	}
	link, err := b.HNS.Link.LinkByName("vx-" + id[:8])
	if err != nil {
		t.Fatal(err)
	}
	if v := link.(*netlink.Vxlan); v.VxlanId != 5001 || v.Port != 4790 {
		t.Errorf("vxlan VNI %d port %d, want 5001 4790", v.VxlanId, v.Port)
	}
	ca, pa := l.container("ra")
	_, pb := l.container("rb")
	epA := handEndpoint(t, pa, "10.201.1.2/24", "02:42:0a:c9:01:02")
	epB := handEndpoint(t, pb, "10.201.2.2/24", "02:42:0a:c9:02:02")
	joinTwice(t, d, a.HNS, na, epA)
	joinTwice(t, d, b.HNS, nb, epB)

	ha := openNetlinkAt(t, pa)
	rs, err := ha.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: lanIPNet(netip.MustParsePrefix("10.201.2.0/24"))}, netlink.RT_FILTER_DST)
	if err != nil || len(rs) != 1 || rs[0].Scope != netlink.SCOPE_LINK {
		t.Fatalf("routes to the remote prefix in the endpoint: %v (%v), want one on-link route", rs, err)
	}
	mustPing(t, ca, "10.201.2.2")

	for _, s := range []struct {
		h  *network.HostNS
		n  *network.Network
		ep *network.Endpoint
	}{{a.HNS, na, epA}, {b.HNS, nb, epB}} {
		if err := d.Leave(ctx, s.h, s.n, s.ep); err != nil {
			t.Fatal(err)
		}
		if err := d.Teardown(ctx, s.h, s.n); err != nil {
			t.Fatal(err)
		}
		onlyLinks(t, s.h.Link, "eth0")
	}
}

// TestParentConflicts: an interface already a port of one l2bridge
// network can be neither the parent of a second one nor of a transparent
// network, and the failed network's Teardown leaves the first intact.
func TestParentConflicts(t *testing.T) {
	ctx := context.Background()
	l := newLAN(t)
	a := l.addHost("a", "10.99.0.1/24")
	b := l.addHost("b", "10.99.0.2/24")
	mk := func(typ network.Type) *network.Network {
		return &network.Network{ID: lanRandHex(t, 32), Name: string(typ), Type: typ, Policies: []network.NetworkPolicy{adapterPolicy("eth0")}}
	}
	d := l2bridge.New()
	n1 := mk(network.L2Bridge)
	if err := d.Validate(n1); err != nil {
		t.Fatal(err)
	}
	if err := d.Setup(ctx, a.HNS, n1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Teardown(ctx, a.HNS, n1) })

	n2 := mk(network.L2Bridge)
	if err := d.Validate(n2); err != nil {
		t.Fatal(err)
	}
	if err := d.Setup(ctx, a.HNS, n2); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second l2bridge on the same interface: %v, want conflict", err)
	}
	if err := d.Teardown(ctx, a.HNS, n2); err != nil {
		t.Fatal(err)
	}
	tr := macvlan.NewTransparent()
	n3 := mk(network.Transparent)
	if err := tr.Validate(n3); err != nil {
		t.Fatal(err)
	}
	if err := tr.Setup(ctx, a.HNS, n3); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("transparent on an l2bridge port: %v, want conflict", err)
	}
	onlyLinks(t, a.HNS.Link, "eth0", n1.Interface)
	mustPing(t, b.ns, "10.99.0.1")
	if err := d.Teardown(ctx, a.HNS, n1); err != nil {
		t.Fatal(err)
	}
	onlyLinks(t, a.HNS.Link, "eth0")
	mustPing(t, b.ns, "10.99.0.1")
}

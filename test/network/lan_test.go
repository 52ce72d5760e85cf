//go:build integration

package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/network"
)

// A simulated LAN: a "switch" namespace holding a bridge, and "hosts",
// each a namespace whose eth0 is a veth plugged into the switch. Every
// namespace is named after the test's random prefix and removed by a
// cleanup, whatever happens; traffic never leaves these namespaces.

// lan is one simulated LAN.
type lan struct {
	t      *testing.T
	prefix string
	sw     *netlink.Handle
	swNS   netns.NsHandle
	bridge netlink.Link
	hosts  map[string]*simHost
}

// simHost is one simulated host on the LAN.
type simHost struct {
	name string
	// ns is the netns name; path its bind mount.
	ns, path string
	// port is the host's port on the switch bridge.
	port string
	HNS  *network.HostNS
	Addr netip.Prefix
}

// randHex returns n random bytes in hex.
func lanRandHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// run runs a command, failing the test on error.
func lanRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := lanRunErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func lanRunErr(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// addNetns makes a named netns removed at cleanup, with lo up.
func lanNetns(t *testing.T, name string) string {
	t.Helper()
	lanRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := lanRunErr("ip", "netns", "del", name); err != nil {
			t.Errorf("remove netns %s: %v: %s", name, err, out)
		}
	})
	lanRun(t, "ip", "-n", name, "link", "set", "lo", "up")
	return filepath.Join("/run/netns", name)
}

// newLAN builds the switch. Its first cleanup (so the last to run) checks
// that no namespace of the test is left.
func newLAN(t *testing.T) *lan {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	l := &lan{t: t, prefix: "silo-n2-" + lanRandHex(t, 3), hosts: map[string]*simHost{}}
	t.Cleanup(func() {
		ents, _ := os.ReadDir("/run/netns")
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), l.prefix) {
				t.Errorf("netns %s left behind", e.Name())
			}
		}
	})
	path := lanNetns(t, l.prefix+"-sw")
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	l.sw, l.swNS = h, ns
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}); err != nil {
		t.Fatalf("switch bridge: %v", err)
	}
	if l.bridge, err = h.LinkByName("br0"); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(l.bridge); err != nil {
		t.Fatal(err)
	}
	return l
}

// addHost plugs a new host into the switch, with addrs on its eth0
// (IPv6 ones usable at once, without duplicate detection).
func (l *lan) addHost(name string, addrs ...string) *simHost {
	t := l.t
	t.Helper()
	s := &simHost{name: name, ns: l.prefix + "-" + name, port: "p-" + name, Addr: netip.MustParsePrefix(addrs[0])}
	s.path = lanNetns(t, s.ns)
	hns, err := network.OpenHostNS(s.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hns.Close() })
	s.HNS = hns
	if err := l.sw.LinkAdd(&netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: s.port, MasterIndex: l.bridge.Attrs().Index},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(hns.NS()),
	}); err != nil {
		t.Fatalf("plug host %s into the switch: %v", name, err)
	}
	port, err := l.sw.LinkByName(s.port)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.sw.LinkSetUp(port); err != nil {
		t.Fatal(err)
	}
	eth0, err := hns.Link.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		p := netip.MustParsePrefix(a)
		na := &netlink.Addr{IPNet: lanIPNet(p)}
		if p.Addr().Is6() {
			na.Flags = unix.IFA_F_NODAD
		}
		if err := hns.Link.AddrAdd(eth0, na); err != nil {
			t.Fatal(err)
		}
	}
	if err := hns.Link.LinkSetUp(eth0); err != nil {
		t.Fatal(err)
	}
	l.hosts[name] = s
	return s
}

// hairpin turns reflection on host's switch port on or off.
func (l *lan) hairpin(s *simHost, on bool) {
	l.t.Helper()
	port, err := l.sw.LinkByName(s.port)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := l.sw.LinkSetHairpin(port, on); err != nil {
		l.t.Fatalf("hairpin %v on %s: %v", on, s.port, err)
	}
}

// container makes a container namespace (removed at cleanup) and returns
// its netns name and path.
func (l *lan) container(name string) (string, string) {
	l.t.Helper()
	ns := l.prefix + "-c-" + name
	return ns, lanNetns(l.t, ns)
}

// ping sends one echo request from netns ns to addr, trying up to tries
// times (the first may be spent on ARP).
func lanPing(ns, addr string, tries int) error {
	var err error
	var out string
	for i := 0; i < tries; i++ {
		if out, err = lanRunErr("ip", "netns", "exec", ns, "busybox", "ping", "-c1", "-W1", addr); err == nil {
			return nil
		}
	}
	return fmt.Errorf("ping %s from %s: %v: %s", addr, ns, err, strings.TrimSpace(out))
}

// mustPing fails the test unless ns reaches addr.
func mustPing(t *testing.T, ns, addr string) {
	t.Helper()
	if err := lanPing(ns, addr, 3); err != nil {
		t.Fatal(err)
	}
}

// mustNotPing fails the test if ns reaches addr.
func mustNotPing(t *testing.T, ns, addr string) {
	t.Helper()
	if err := lanPing(ns, addr, 1); err == nil {
		t.Fatalf("ping %s from %s: answered, want no answer", addr, ns)
	}
}

func lanIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// handEndpoint is a hand-built endpoint in the container namespace at
// path; addr may be "v4,v6".
func handEndpoint(t *testing.T, path, addr, mac string, gws ...string) *network.Endpoint {
	ep := &network.Endpoint{
		ID:        lanRandHex(t, 32),
		NetnsPath: path,
		IfName:    "eth0",
		MAC:       mac,
	}
	for _, a := range strings.Split(addr, ",") {
		ep.Addresses = append(ep.Addresses, netip.MustParsePrefix(a))
	}
	for _, g := range gws {
		ep.Gateways = append(ep.Gateways, netip.MustParseAddr(g))
	}
	return ep
}

// linkNames lists the interfaces of a namespace's handle.
func linkNames(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name+"("+l.Type()+")")
	}
	return names
}

// onlyLinks fails unless the namespace holds exactly the named links
// (and lo).
func onlyLinks(t *testing.T, h *netlink.Handle, want ...string) {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, l := range links {
		if l.Attrs().Name != "lo" {
			have[l.Attrs().Name] = true
		}
	}
	ok := len(have) == len(want)
	for _, w := range want {
		ok = ok && have[w]
	}
	if !ok {
		t.Fatalf("links %v, want lo and %v", linkNames(t, h), want)
	}
}

// openNS opens a netlink handle in the namespace at path, closed at
// cleanup.
func openNetlinkAt(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// addrsOf lists the IPv4 addresses of a link (addrs6Of the global IPv6
// ones).
func addrsOf(t *testing.T, h *netlink.Handle, name string) []string {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	as, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.IPNet.String())
	}
	return out
}

func addrs6Of(t *testing.T, h *netlink.Handle, name string) []string {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	as, err := h.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		if !a.IP.IsLinkLocalUnicast() {
			out = append(out, a.IPNet.String())
		}
	}
	return out
}

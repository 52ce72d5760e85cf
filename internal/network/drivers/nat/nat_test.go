package nat

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/silo-containers/silo/internal/network/netnsutil"
)

// testNS makes a namespace for the test and returns its path and a
// netlink handle in it.
func testNS(t *testing.T, name string) (string, *netlink.Handle) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := netnsutil.Create(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netnsutil.Remove(p) })
	ns, err := netns.GetFromPath(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return p, h
}

func ipIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + ns, "ip"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
	return string(out)
}

func TestBridgeAndPort(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	hostPath, h := testNS(t, "host")
	ctrPath, _ := testNS(t, "ctr")
	gw := []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")}
	for range 2 { // idempotent
		if err := EnsureBridge(h, "br-test", gw, 1400); err != nil {
			t.Fatal(err)
		}
	}
	if out := ipIn(t, hostPath, "-o", "addr", "show", "br-test"); strings.Count(out, "10.77.0.1/24") != 1 {
		t.Fatalf("bridge addresses: %s", out)
	}
	if err := EnsureBridge(h, "lo", nil, 0); err == nil {
		t.Fatal("EnsureBridge accepted a non-bridge")
	}

	mac, _ := net.ParseMAC("02:42:0a:4d:00:02")
	p := Port{
		HostIfName: "vethtest0001", Bridge: "br-test", NetnsPath: ctrPath, IfName: "eth0", MAC: mac,
		Addrs:    []netip.Prefix{netip.MustParsePrefix("10.77.0.2/24")},
		Gateways: []netip.Addr{netip.MustParseAddr("10.77.0.1")},
		Routes:   []Route{{Dst: netip.MustParsePrefix("10.88.0.0/16"), Via: netip.MustParseAddr("10.77.0.1")}},
	}
	for range 2 { // a leftover pair (a crash in Join) is replaced
		if err := Join(h, p); err != nil {
			t.Fatal(err)
		}
	}
	out := ipIn(t, ctrPath, "-o", "addr", "show", "eth0")
	if !strings.Contains(out, "10.77.0.2/24") {
		t.Fatalf("eth0: %s", out)
	}
	if out := ipIn(t, ctrPath, "link", "show", "eth0"); !strings.Contains(out, "02:42:0a:4d:00:02") || !strings.Contains(out, "mtu 1400") {
		t.Fatalf("eth0 link: %s", out)
	}
	if out := ipIn(t, ctrPath, "route"); !strings.Contains(out, "default via 10.77.0.1") || !strings.Contains(out, "10.88.0.0/16 via 10.77.0.1") {
		t.Fatalf("routes: %s", out)
	}
	if out := ipIn(t, hostPath, "-d", "link", "show", "vethtest0001"); !strings.Contains(out, "master br-test") || !strings.Contains(out, "hairpin on") {
		t.Fatalf("host side: %s", out)
	}
	if out, err := exec.Command("nsenter", "--net="+ctrPath, "busybox", "ping", "-c1", "-W1", "10.77.0.1").CombinedOutput(); err != nil {
		t.Fatalf("ping gateway: %v: %s", err, out)
	}

	if err := SetQoS(ctrPath, "eth0", 125000); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("nsenter", "--net="+ctrPath, "tc", "qdisc", "show", "dev", "eth0").CombinedOutput(); !strings.Contains(string(out), "tbf") || !strings.Contains(string(out), "rate 1Mbit") {
		t.Fatalf("qdisc: %s", out)
	}
	for range 2 {
		if err := SetQoS(ctrPath, "eth0", 0); err != nil {
			t.Fatal(err)
		}
	}

	for range 2 { // missing is not an error
		if err := Leave(h, "vethtest0001"); err != nil {
			t.Fatal(err)
		}
	}
	if out := ipIn(t, ctrPath, "-o", "link"); strings.Contains(out, "eth0") {
		t.Fatalf("peer left: %s", out)
	}
	for range 2 {
		if err := DeleteBridge(h, "br-test"); err != nil {
			t.Fatal(err)
		}
	}
}

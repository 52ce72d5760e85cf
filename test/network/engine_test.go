//go:build integration

package network

import (
	"fmt"
	"strings"
	"testing"

	"github.com/silo-containers/silo/test/harness"
)

// TestEngineOnLAN drives the drivers through silod and the silo CLI, the
// way a user does: two simulated hosts on one LAN, each with its own
// daemon; containers on a transparent network (host A) and an l2bridge
// network (host B) reach each other and the hosts on the LAN's subnet;
// then an overlay network spans both hosts.
func TestEngineOnLAN(t *testing.T) {
	l := newLAN(t)
	a := l.addHost("a", "10.98.0.1/24")
	b := l.addHost("b", "10.98.0.2/24")
	da := harness.NewDaemonIn(t, "/silo-itest-lan-a", a.ns)
	db := harness.NewDaemonIn(t, "/silo-itest-lan-b", b.ns)
	for _, d := range []*harness.Daemon{da, db} {
		d.Must("image", "build-busybox")
	}
	ipOf := func(d *harness.Daemon, ctr, net string) string {
		return strings.TrimSpace(d.Must("inspect", "-f", "{{.NetworkSettings.Networks."+net+".IPAddress}}", ctr))
	}

	da.Must("network", "create", "-d", "transparent", "-o", "parent=eth0", "--subnet", "10.98.0.0/24",
		"--gateway", "10.98.0.1", "--ip-range", "10.98.0.64/26", "lan")
	db.Must("network", "create", "-d", "l2bridge", "-o", "parent=eth0", "--subnet", "10.98.0.0/24",
		"--gateway", "10.98.0.2", "--ip-range", "10.98.0.128/26", "lan")
	da.Must("run", "-d", "--name", "ta", "--network", "lan", "busybox", "sleep", "300")
	db.Must("run", "-d", "--name", "lb", "--network", "lan", "busybox", "sleep", "300")
	ta, lb := ipOf(da, "ta", "lan"), ipOf(db, "lb", "lan")
	if !strings.HasPrefix(ta, "10.98.0.") || !strings.HasPrefix(lb, "10.98.0.") {
		t.Fatalf("addresses not on the LAN: %s, %s", ta, lb)
	}
	mustPing(t, b.ns, ta) // host B → transparent container on A
	mustPing(t, a.ns, lb) // host A → l2bridge container on B
	for _, c := range []struct {
		d        *harness.Daemon
		ctr, dst string
	}{{da, "ta", lb}, {db, "lb", ta}, {db, "lb", "10.98.0.1"}} {
		if out, ok := execPing(c.d, c.ctr, c.dst); !ok {
			t.Fatalf("%s cannot reach %s: %s", c.ctr, c.dst, out)
		}
	}
	// Host B keeps its own address while eth0 sits in the l2bridge bridge.
	mustPing(t, a.ns, "10.98.0.2")
	da.Must("rm", "-f", "ta")
	db.Must("rm", "-f", "lb")
	da.Must("network", "rm", "lan")
	db.Must("network", "rm", "lan")
	if out := lanRun(t, "ip", "-n", b.ns, "-br", "addr", "show", "eth0"); !strings.Contains(out, "10.98.0.2/24") {
		t.Fatalf("host B's address did not come back to eth0: %s", out)
	}

	// One overlay subnet across both hosts: each allocates from its own
	// range and routes the other's through the VXLAN tunnel.
	remote := func(pa, prefix string) string {
		return fmt.Sprintf(`{"Type":"RemoteSubnetRoute","Settings":{"ProviderAddress":"%s","DestinationPrefix":"%s"}}`, pa, prefix)
	}
	da.Must("network", "create", "-d", "overlay", "-o", "parent=eth0", "-o", "vni=5010", "--subnet", "10.210.0.0/16",
		"--ip-range", "10.210.1.0/24", "--policy", remote("10.98.0.2", "10.210.2.0/24"), "ov")
	db.Must("network", "create", "-d", "overlay", "-o", "parent=eth0", "-o", "vni=5010", "--subnet", "10.210.0.0/16",
		"--ip-range", "10.210.2.0/24", "--policy", remote("10.98.0.1", "10.210.1.0/24"), "ov")
	if out := da.Must("network", "inspect", "-f", "{{json .Hns.Policies}}", "ov"); !strings.Contains(out, "RemoteSubnetRoute") {
		t.Fatalf("inspect lacks the policy: %s", out)
	}
	da.Must("run", "-d", "--name", "oa", "--network", "ov", "busybox", "sleep", "300")
	db.Must("run", "-d", "--name", "ob", "--network", "ov", "busybox", "sleep", "300")
	oa, ob := ipOf(da, "oa", "ov"), ipOf(db, "ob", "ov")
	if out, ok := execPing(da, "oa", ob); !ok {
		t.Fatalf("overlay: %s cannot reach %s: %s", oa, ob, out)
	}
	if out, ok := execPing(db, "ob", oa); !ok {
		t.Fatalf("overlay: %s cannot reach %s: %s", ob, oa, out)
	}
	da.Must("rm", "-f", "oa")
	db.Must("rm", "-f", "ob")
	da.Must("network", "rm", "ov")
	db.Must("network", "rm", "ov")
}

// execPing pings addr from inside container ctr, a few times: a fresh
// endpoint may miss the first echo while neighbours are being resolved.
func execPing(d *harness.Daemon, ctr, addr string) (string, bool) {
	var out string
	for range 3 {
		var code int
		if out, _, code = d.Silo("exec", ctr, "ping", "-c", "1", "-W", "2", addr); code == 0 {
			return out, true
		}
	}
	return out, false
}

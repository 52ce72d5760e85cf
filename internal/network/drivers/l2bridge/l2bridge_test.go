package l2bridge

import (
	"errors"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
)

func TestValidate(t *testing.T) {
	adapter := []network.NetworkPolicy{{Type: network.NetAdapterName, Settings: network.NetworkPolicySettings{NetworkAdapterName: "eth0"}}}
	const id = "3f2a9c1d0123456789abcdef"
	for _, tc := range []struct {
		desc string
		n    network.Network
		want string
	}{
		{"ok", network.Network{ID: id, Type: network.L2Bridge, Policies: adapter}, "l2br-3f2a9c1d"},
		{"no parent", network.Network{ID: id, Type: network.L2Bridge}, ""},
		{"short id", network.Network{ID: "abc", Type: network.L2Bridge, Policies: adapter}, ""},
		{"wrong type", network.Network{ID: id, Type: network.NAT, Policies: adapter}, ""},
	} {
		n := tc.n
		err := New().Validate(&n)
		if tc.want == "" {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s: Validate = %v, want invalid argument", tc.desc, err)
			}
			continue
		}
		if err != nil || n.Interface != tc.want {
			t.Errorf("%s: Validate = %v, Interface %q; want %q", tc.desc, err, n.Interface, tc.want)
		}
	}
}

func addr(cidr string, flags int, label string) netlink.Addr {
	ip, n, _ := net.ParseCIDR(cidr)
	n.IP = ip
	return netlink.Addr{IPNet: n, Flags: flags, Label: label}
}

func TestMovableAddr(t *testing.T) {
	for _, tc := range []struct {
		a    netlink.Addr
		want bool
	}{
		{addr("10.0.0.1/24", unix.IFA_F_PERMANENT, "eth0"), true},
		{addr("10.0.0.1/24", 0, "eth0"), true}, // DHCP lease: moved with its lifetime
		{addr("fd00::1/64", unix.IFA_F_PERMANENT, ""), true},
		{addr("fd00::1/64", 0, ""), false}, // SLAAC
		{addr("fe80::1/64", unix.IFA_F_PERMANENT, ""), false},
		{addr("fd00::2/64", unix.IFA_F_PERMANENT|unix.IFA_F_DADFAILED, ""), false},
		{netlink.Addr{}, false},
	} {
		if got := movableAddr(tc.a); got != tc.want {
			t.Errorf("movableAddr(%v flags %#x) = %v, want %v", tc.a.IPNet, tc.a.Flags, got, tc.want)
		}
	}
}

func TestCopyAddrLabel(t *testing.T) {
	for _, tc := range []struct {
		label, from, to, want string
	}{
		{"eth0", "eth0", "l2br-01234567", "l2br-01234567"},
		{"eth0:1", "eth0", "l2br-01234567", "l2br-01234567:1"},
		{"eth0:long", "eth0", "l2br-01234567", ""}, // would exceed 15 bytes
		{"eth01", "eth0", "br", ""},
		{"l2br-01234567:1", "l2br-01234567", "eth0", "eth0:1"},
	} {
		got := copyAddr(addr("10.0.0.1/24", unix.IFA_F_PERMANENT, tc.label), tc.from, tc.to)
		if got.Label != tc.want {
			t.Errorf("label %q from %s to %s = %q, want %q", tc.label, tc.from, tc.to, got.Label, tc.want)
		}
	}
	if v6 := copyAddr(addr("fd00::1/64", unix.IFA_F_PERMANENT, ""), "a", "b"); v6.Flags&unix.IFA_F_NODAD == 0 {
		t.Error("moved IPv6 address without NODAD")
	}
}

func TestMovableRoute(t *testing.T) {
	for _, tc := range []struct {
		desc string
		r    netlink.Route
		want bool
	}{
		{"static", netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_BOOT, Type: unix.RTN_UNICAST}, true},
		{"dhcp", netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: 16, Type: unix.RTN_UNICAST}, true},
		{"other table", netlink.Route{Table: 100, Protocol: unix.RTPROT_STATIC, Type: unix.RTN_UNICAST}, true},
		{"prefix route", netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_KERNEL, Type: unix.RTN_UNICAST}, false},
		{"router advertisement", netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_RA, Type: unix.RTN_UNICAST}, false},
		{"local table", netlink.Route{Table: unix.RT_TABLE_LOCAL, Protocol: unix.RTPROT_BOOT, Type: unix.RTN_UNICAST}, false},
		{"broadcast", netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_BOOT, Type: unix.RTN_BROADCAST}, false},
		{"multipath", netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: unix.RTPROT_BOOT, Type: unix.RTN_UNICAST, MultiPath: []*netlink.NexthopInfo{{}}}, false},
	} {
		if got := movableRoute(tc.r); got != tc.want {
			t.Errorf("%s: movableRoute = %v, want %v", tc.desc, got, tc.want)
		}
	}
}

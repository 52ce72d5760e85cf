package attach

import (
	"errors"
	"strings"
	"testing"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
)

func TestValidIfName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"eth0", true},
		{"l2br-0123abcd", true},
		{strings.Repeat("a", 15), true},
		{strings.Repeat("a", 16), false},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"eth0:1", false},
		{"a b", false},
		{"a\x00", false},
	} {
		err := ValidIfName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidIfName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ValidIfName(%q) = %v, want invalid argument", tc.name, err)
		}
	}
}

func TestObjectName(t *testing.T) {
	for _, tc := range []struct {
		prefix, id, want string
	}{
		{"l2br-", "0123456789abcdef", "l2br-01234567"},
		{"vx-", "deadbeef", "vx-deadbeef"},
		{"vx-", "short", ""},
		{"ov-", "ab/cdefgh", ""},
		{"toolongprefix-", "0123456789", ""},
	} {
		got, err := ObjectName(tc.prefix, tc.id)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("ObjectName(%q, %q) = %q, %v; want %q", tc.prefix, tc.id, got, err, tc.want)
		}
	}
}

func TestHostVethName(t *testing.T) {
	a, b := HostVethName("endpoint-1"), HostVethName("endpoint-2")
	if a == b || a != HostVethName("endpoint-1") || len(a) != 12 || ValidIfName(a) != nil {
		t.Errorf("HostVethName: %q, %q: want distinct, stable, valid 12-byte names", a, b)
	}
}

func TestParseMAC(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"02:42:ac:11:00:02", "02:42:ac:11:00:02"},
		{"02-42-AC-11-00-02", "02:42:ac:11:00:02"},
		{"02:42:ac:11:00", ""},
		{"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", ""},
		{"nonsense", ""},
	} {
		mac, err := ParseMAC(tc.in)
		if tc.want == "" {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ParseMAC(%q) = %v, %v; want invalid argument", tc.in, mac, err)
			}
			continue
		}
		if err != nil || mac.String() != tc.want {
			t.Errorf("ParseMAC(%q) = %v, %v; want %s", tc.in, mac, err, tc.want)
		}
	}
}

func adapter(name string) network.NetworkPolicy {
	return network.NetworkPolicy{Type: network.NetAdapterName, Settings: network.NetworkPolicySettings{NetworkAdapterName: name}}
}

func TestParent(t *testing.T) {
	for _, tc := range []struct {
		desc     string
		policies []network.NetworkPolicy
		options  map[string]string
		want     string
		bad      bool
	}{
		{desc: "none"},
		{desc: "policy", policies: []network.NetworkPolicy{adapter("eth0")}, want: "eth0"},
		{desc: "option", options: map[string]string{"parent": "eth1"}, want: "eth1"},
		{desc: "both agree", policies: []network.NetworkPolicy{adapter("eth0")}, options: map[string]string{"parent": "eth0"}, want: "eth0"},
		{desc: "both disagree", policies: []network.NetworkPolicy{adapter("eth0")}, options: map[string]string{"parent": "eth1"}, bad: true},
		{desc: "two policies", policies: []network.NetworkPolicy{adapter("eth0"), adapter("eth1")}, bad: true},
		{desc: "empty policy", policies: []network.NetworkPolicy{adapter("")}, bad: true},
		{desc: "bad name", options: map[string]string{"parent": "../etc"}, bad: true},
		{desc: "empty option", options: map[string]string{"parent": ""}},
	} {
		n := &network.Network{Policies: tc.policies, Options: tc.options}
		got, err := Parent(n)
		if tc.bad {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s: Parent = %q, %v; want invalid argument", tc.desc, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: Parent = %q, %v; want %q", tc.desc, got, err, tc.want)
		}
	}
}

func TestSetParentPolicy(t *testing.T) {
	n := &network.Network{}
	SetParentPolicy(n, "eth0")
	SetParentPolicy(n, "eth1")
	if len(n.Policies) != 1 || n.Policies[0].Settings.NetworkAdapterName != "eth0" {
		t.Errorf("policies %+v, want one NetAdapterName eth0", n.Policies)
	}
}

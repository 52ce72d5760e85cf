package overlay

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
)

const testID = "0123456789abcdef0123456789abcdef"

func pol(t network.NetworkPolicyType, s network.NetworkPolicySettings) network.NetworkPolicy {
	return network.NetworkPolicy{Type: t, Settings: s}
}

func remotePol(pa, prefix, mac string) network.NetworkPolicy {
	s := network.NetworkPolicySettings{DistributedRouterMacAddress: mac}
	if pa != "" {
		s.ProviderAddress = netip.MustParseAddr(pa)
	}
	if prefix != "" {
		s.DestinationPrefix = netip.MustParsePrefix(prefix)
	}
	return pol(network.RemoteSubnetRoute, s)
}

func TestValidate(t *testing.T) {
	local := pol(network.ProviderAddress, network.NetworkPolicySettings{ProviderAddress: netip.MustParseAddr("10.99.0.1")})
	for _, tc := range []struct {
		desc     string
		id       string
		policies []network.NetworkPolicy
		options  map[string]string
		vni      uint32 // 0: refused
		port     uint16
	}{
		{desc: "defaults", id: testID, vni: defaultVNI(testID), port: 4789},
		{desc: "VSID", id: testID, policies: []network.NetworkPolicy{pol(network.VSID, network.NetworkPolicySettings{IsolationID: 5001})}, vni: 5001, port: 4789},
		{desc: "vni option", id: testID, options: map[string]string{"vni": "77"}, vni: 77, port: 4789},
		{desc: "port", id: testID, policies: []network.NetworkPolicy{pol(network.VxlanPort, network.NetworkPolicySettings{Port: 8472})}, vni: defaultVNI(testID), port: 8472},
		{desc: "remote", id: testID, policies: []network.NetworkPolicy{local, remotePol("10.99.0.2", "10.200.2.0/24", "02-00-00-00-00-01")}, vni: defaultVNI(testID), port: 4789},
		{desc: "vni too big", id: testID, options: map[string]string{"vni": "16777216"}},
		{desc: "vni zero", id: testID, options: map[string]string{"vni": "0"}},
		{desc: "vni not a number", id: testID, options: map[string]string{"vni": "x"}},
		{desc: "VSID zero", id: testID, policies: []network.NetworkPolicy{pol(network.VSID, network.NetworkPolicySettings{})}},
		{desc: "VSID and option disagree", id: testID, options: map[string]string{"vni": "1"}, policies: []network.NetworkPolicy{pol(network.VSID, network.NetworkPolicySettings{IsolationID: 2})}},
		{desc: "port zero", id: testID, policies: []network.NetworkPolicy{pol(network.VxlanPort, network.NetworkPolicySettings{})}},
		{desc: "bad provider address", id: testID, policies: []network.NetworkPolicy{pol(network.ProviderAddress, network.NetworkPolicySettings{ProviderAddress: netip.MustParseAddr("224.0.0.1")})}},
		{desc: "remote without address", id: testID, policies: []network.NetworkPolicy{remotePol("", "10.200.2.0/24", "")}},
		{desc: "remote without prefix", id: testID, policies: []network.NetworkPolicy{remotePol("10.99.0.2", "", "")}},
		{desc: "remote bad MAC", id: testID, policies: []network.NetworkPolicy{remotePol("10.99.0.2", "10.200.2.0/24", "zz")}},
		{desc: "remote multicast MAC", id: testID, policies: []network.NetworkPolicy{remotePol("10.99.0.2", "10.200.2.0/24", "01:00:5e:00:00:01")}},
		{desc: "remote is local", id: testID, policies: []network.NetworkPolicy{local, remotePol("10.99.0.1", "10.200.2.0/24", "")}},
		{desc: "remote family differs", id: testID, policies: []network.NetworkPolicy{local, remotePol("fd00::2", "10.200.2.0/24", "")}},
		{desc: "short id", id: "abc"},
	} {
		n := &network.Network{ID: tc.id, Type: network.Overlay, Policies: tc.policies, Options: tc.options}
		err := New().Validate(n)
		if tc.vni == 0 {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s: Validate = %v, want invalid argument", tc.desc, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Validate = %v", tc.desc, err)
			continue
		}
		if n.Interface != "vx-01234567" {
			t.Errorf("%s: Interface %q", tc.desc, n.Interface)
		}
		c, err := parse(n)
		if err != nil || c.vni != tc.vni || c.port != tc.port {
			t.Errorf("%s: after Validate VNI %d port %d (%v), want %d %d", tc.desc, c.vni, c.port, err, tc.vni, tc.port)
		}
	}
}

func TestDefaultVNI(t *testing.T) {
	for _, id := range []string{"a", testID, "ffffffffffffffff", ""} {
		v := defaultVNI(id)
		if v < MinDefaultVNI || v > MaxVNI || v != defaultVNI(id) {
			t.Errorf("defaultVNI(%q) = %d", id, v)
		}
	}
}

func TestEndpointRoutes(t *testing.T) {
	n := &network.Network{ID: testID, Subnets: []network.Subnet{{Prefix: netip.MustParsePrefix("10.200.0.0/16")}}, Policies: []network.NetworkPolicy{
		remotePol("10.99.0.2", "10.200.2.0/24", ""), // inside: switched, no route
		remotePol("10.99.0.3", "10.201.0.0/24", ""), // outside
		remotePol("10.99.0.4", "fd00:2::/64", ""),   // outside, IPv6
	}}
	c, err := parse(n)
	if err != nil {
		t.Fatal(err)
	}
	out := netip.MustParsePrefix("10.201.0.0/24")
	for _, tc := range []struct {
		desc  string
		addrs []string
		gws   []string
		want  []network.Route
	}{
		{"on-link", []string{"10.200.1.2/16"}, nil, []network.Route{{Destination: out}}},
		{"gateway not used", []string{"10.200.1.2/16"}, []string{"fd00::1", "10.200.0.1"}, []network.Route{{Destination: out}}},
		{"v6 only endpoint", []string{"fd00:1::2/64"}, nil, []network.Route{{Destination: netip.MustParsePrefix("fd00:2::/64")}}},
	} {
		ep := &network.Endpoint{}
		for _, a := range tc.addrs {
			ep.Addresses = append(ep.Addresses, netip.MustParsePrefix(a))
		}
		for _, g := range tc.gws {
			ep.Gateways = append(ep.Gateways, netip.MustParseAddr(g))
		}
		if got := c.endpointRoutes(n, ep); !slices.Equal(got, tc.want) {
			t.Errorf("%s: routes %v, want %v", tc.desc, got, tc.want)
		}
	}
}

func TestGatewayMAC(t *testing.T) {
	a, b := gatewayMAC(testID), gatewayMAC(testID+"x")
	if a.String() != gatewayMAC(testID).String() || a.String() == b.String() {
		t.Errorf("gatewayMAC: %s, %s: want stable per id and distinct between ids", a, b)
	}
	if a[0] != 0x02 {
		t.Errorf("gatewayMAC %s: want a locally administered unicast MAC", a)
	}
}

func TestGatewayAddrs(t *testing.T) {
	n := &network.Network{Subnets: []network.Subnet{
		{Prefix: netip.MustParsePrefix("10.200.0.0/16"), Gateway: netip.MustParseAddr("10.200.0.1")},
		{Prefix: netip.MustParsePrefix("10.201.0.0/16")},
		{Prefix: netip.MustParsePrefix("fd00::/64"), Gateway: netip.MustParseAddr("fd00::1")},
	}}
	want := []netip.Prefix{netip.MustParsePrefix("10.200.0.1/16"), netip.MustParsePrefix("fd00::1/64")}
	if got := gatewayAddrs(n); !slices.Equal(got, want) {
		t.Errorf("gatewayAddrs = %v, want %v", got, want)
	}
}

func TestBridgeName(t *testing.T) {
	if got, err := BridgeName(testID); err != nil || got != "ov-01234567" {
		t.Errorf("BridgeName = %q, %v", got, err)
	}
	if _, err := BridgeName("x"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("BridgeName(short) = %v, want invalid argument", err)
	}
}

package network

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/silo-containers/silo/internal/errdefs"
)

func testService(nets ...*Network) *Service {
	s := &Service{networks: map[string]*Network{}, endpoints: map[string]*Endpoint{}, ports: map[portKey][]portUse{}}
	for _, n := range nets {
		s.networks[n.ID] = n
	}
	return s
}

func TestResolve(t *testing.T) {
	def := &Network{ID: strings.Repeat("a", 64), Name: "nat", Type: NAT, Default: true}
	front := &Network{ID: "b1" + strings.Repeat("0", 62), Name: "front", Type: NAT}
	back := &Network{ID: "b2" + strings.Repeat("0", 62), Name: "back", Type: NAT}
	// A network named like another's id prefix: the name wins.
	odd := &Network{ID: strings.Repeat("c", 64), Name: "b1", Type: NAT}
	s := testService(def, front, back, odd)
	tests := []struct {
		ref  string
		want string
		err  error
	}{
		{def.ID, "nat", nil},
		{"nat", "nat", nil},
		{"bridge", "nat", nil},
		{"default", "nat", nil},
		{"front", "front", nil},
		{front.ID, "front", nil},
		{"b2", "back", nil},
		{"b1", "b1", nil},
		{"b", "", errdefs.ErrInvalidArgument}, // ambiguous prefix
		{"zz", "", errdefs.ErrNotFound},
		{"", "", errdefs.ErrInvalidArgument},
		{"FRONT", "", errdefs.ErrNotFound}, // names are case-sensitive
	}
	for _, tt := range tests {
		n, err := s.resolveLocked(tt.ref)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("resolve %q: got %v, want %v", tt.ref, err, tt.err)
			}
			continue
		}
		if err != nil || n.Name != tt.want {
			t.Errorf("resolve %q: got %v, %v; want %s", tt.ref, n, err, tt.want)
		}
	}
}

func TestNormalizeType(t *testing.T) {
	for in, want := range map[Type]Type{"": NAT, "bridge": NAT, "NAT": NAT, "private": Internal, "internal": Internal, "Overlay": Overlay, "l2bridge": L2Bridge} {
		if got := normalizeType(in); got != want {
			t.Errorf("normalizeType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLookup(t *testing.T) {
	n := &Network{ID: strings.Repeat("a", 64), Name: "front", Type: NAT}
	other := &Network{ID: strings.Repeat("b", 64), Name: "back", Type: NAT}
	s := testService(n, other)
	add := func(id, net, name, cid string, aliases []string, addrs ...string) {
		ep := &Endpoint{ID: id, NetworkID: net, Name: name, ContainerID: cid, Aliases: aliases}
		for _, a := range addrs {
			ep.Addresses = append(ep.Addresses, netip.MustParsePrefix(a))
		}
		s.endpoints[id] = ep
	}
	add("e1", n.ID, "web", strings.Repeat("1", 64), []string{"www", "Site"}, "172.18.0.2/16", "fd00::2/64")
	add("e2", n.ID, "db", strings.Repeat("2", 64), nil, "172.18.0.3/16")
	add("e3", other.ID, "web", "", nil, "172.19.0.2/16")
	tests := []struct {
		net, name string
		want      []string
	}{
		{n.ID, "web", []string{"172.18.0.2", "fd00::2"}},
		{"front", "WEB.", []string{"172.18.0.2", "fd00::2"}},
		{"front", "site", []string{"172.18.0.2", "fd00::2"}},
		{"front", "111111111111", []string{"172.18.0.2", "fd00::2"}},
		{"front", "db", []string{"172.18.0.3"}},
		{"back", "web", []string{"172.19.0.2"}},
		{"back", "db", nil},
		{"front", "", nil},
		{"nosuch", "web", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, a := range s.Lookup(tt.net, tt.name) {
			got = append(got, a.String())
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Lookup(%s, %q) = %v, want %v", tt.net, tt.name, got, tt.want)
		}
	}
}

func TestPortHolder(t *testing.T) {
	s := testService()
	lo := netip.MustParseAddr("127.0.0.1")
	s.ports[portKey{"tcp", 8080}] = []portUse{{hostIP: lo, endpoint: "e1"}}
	s.ports[portKey{"tcp", 9090}] = []portUse{{endpoint: "e2"}}
	tests := []struct {
		proto string
		ip    netip.Addr
		port  uint16
		want  string
	}{
		{"tcp", lo, 8080, "e1"},
		{"tcp", netip.Addr{}, 8080, "e1"}, // all addresses include 127.0.0.1
		{"tcp", netip.MustParseAddr("10.0.0.1"), 8080, ""},
		{"udp", lo, 8080, ""},
		{"tcp", lo, 9090, "e2"},
		{"tcp", netip.IPv4Unspecified(), 9090, "e2"},
	}
	for _, tt := range tests {
		if got := s.portHolderLocked(tt.proto, tt.ip, tt.port); got != tt.want {
			t.Errorf("portHolder(%s %s:%d) = %q, want %q", tt.proto, tt.ip, tt.port, got, tt.want)
		}
	}
	s.releaseLocked(&Endpoint{ID: "e1"})
	if got := s.portHolderLocked("tcp", lo, 8080); got != "" {
		t.Errorf("after release: %q", got)
	}
}

func TestValidatePolicies(t *testing.T) {
	tests := []struct {
		name string
		ep   Endpoint
		want error
	}{
		{"ok", Endpoint{PortMappings: []PortMapping{{Protocol: "tcp", InternalPort: 80}}, ACLs: []ACL{{Action: Block, Direction: In, Protocol: "tcp", LocalPorts: []PortRange{{80, 80}}}}}, nil},
		{"mapping protocol", Endpoint{PortMappings: []PortMapping{{Protocol: "icmp", InternalPort: 80}}}, errdefs.ErrInvalidArgument},
		{"no container port", Endpoint{PortMappings: []PortMapping{{Protocol: "tcp"}}}, errdefs.ErrInvalidArgument},
		{"ipv6 host ip", Endpoint{PortMappings: []PortMapping{{Protocol: "tcp", InternalPort: 80, HostIP: netip.MustParseAddr("::1")}}}, errdefs.ErrNotImplemented},
		{"acl action", Endpoint{ACLs: []ACL{{Action: "Maybe", Direction: In}}}, errdefs.ErrInvalidArgument},
		{"acl direction", Endpoint{ACLs: []ACL{{Action: Allow, Direction: "Sideways"}}}, errdefs.ErrInvalidArgument},
		{"acl ports without protocol", Endpoint{ACLs: []ACL{{Action: Allow, Direction: In, LocalPorts: []PortRange{{1, 2}}}}}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		tt.ep.ID = strings.Repeat("e", 64)
		tt.ep.Addresses = []netip.Prefix{netip.MustParsePrefix("172.18.0.2/16")}
		err := validatePolicies(&tt.ep)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestMAC(t *testing.T) {
	if got := macFor([]netip.Prefix{netip.MustParsePrefix("fd00::5/64"), netip.MustParsePrefix("172.17.0.2/16")}); got != "02:42:ac:11:00:02" {
		t.Errorf("macFor = %s", got)
	}
	if got := macFor(nil); !strings.HasPrefix(got, "02:42:") || len(got) != 17 {
		t.Errorf("macFor without IPv4 = %s", got)
	}
	n := &Network{Subnets: []Subnet{{Prefix: netip.MustParsePrefix("192.168.16.0/20")}}}
	if got := macPool(n); got != (MacPool{Start: "02-42-C0-A8-10-00", End: "02-42-C0-A8-1F-FF"}) {
		t.Errorf("macPool = %+v", got)
	}
}

func TestStoreRoundTrip(t *testing.T) {
	dir, run := t.TempDir(), t.TempDir()
	st, err := openStore(dir, run)
	if err != nil {
		t.Fatal(err)
	}
	n := &Network{
		ID: strings.Repeat("a", 64), Name: "front", Type: NAT, Interface: "br-aaaaaaaaaaaa",
		Subnets:  []Subnet{{Prefix: netip.MustParsePrefix("172.18.0.0/16"), Gateway: netip.MustParseAddr("172.18.0.1"), IPRange: netip.MustParsePrefix("172.18.5.0/24")}},
		Policies: []NetworkPolicy{{Type: OutBoundNATPolicy, Settings: NetworkPolicySettings{Exceptions: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}},
		Options:  map[string]string{"k": "v"}, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	ep := &Endpoint{
		ID: strings.Repeat("e", 64), NetworkID: n.ID, Namespace: "c1", NetnsPath: "/run/x", IfName: "eth0", HostIfName: "vetheeeeeeee",
		Addresses: []netip.Prefix{netip.MustParsePrefix("172.18.0.2/16")}, Gateways: []netip.Addr{netip.MustParseAddr("172.18.0.1")},
		MAC: "02:42:ac:12:00:02", PortMappings: []PortMapping{{Protocol: "tcp", InternalPort: 80, ExternalPort: 8080, HostIP: netip.MustParseAddr("127.0.0.1")}},
		ACLs:        []ACL{{Action: Block, Direction: In, Protocol: "tcp", LocalPorts: []PortRange{{80, 80}}, Priority: 1}},
		OutboundNAT: &OutboundNAT{Exceptions: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		QoS:         &QoS{MaximumOutgoingBandwidthInBytes: 1000},
		Created:     time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
	}
	ns := &Namespace{ID: "c1", Path: "/run/x", Created: time.Date(2026, 1, 2, 3, 4, 7, 0, time.UTC)}
	for _, err := range []error{st.put(bucketNetworks, n.ID, n), st.put(bucketEndpoints, ep.ID, ep), st.put(bucketNamespaces, ns.ID, ns)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	st.close()
	if st, err = openStore(dir, run); err != nil {
		t.Fatal(err)
	}
	defer st.close()
	nets, err := load[Network](st, bucketNetworks)
	if err != nil || len(nets) != 1 || !reflect.DeepEqual(nets[0], n) {
		t.Fatalf("networks: %+v, %v", nets, err)
	}
	eps, err := load[Endpoint](st, bucketEndpoints)
	if err != nil || len(eps) != 1 || !reflect.DeepEqual(eps[0], ep) {
		t.Fatalf("endpoints: %+v, %v", eps, err)
	}
	nss, err := load[Namespace](st, bucketNamespaces)
	if err != nil || len(nss) != 1 || !reflect.DeepEqual(nss[0], ns) {
		t.Fatalf("namespaces: %+v, %v", nss, err)
	}
	if err := st.delete(bucketEndpoints, ep.ID); err != nil {
		t.Fatal(err)
	}
	if eps, _ := load[Endpoint](st, bucketEndpoints); len(eps) != 0 {
		t.Fatalf("endpoint after delete: %v", eps)
	}
}

func TestValidNamespaceID(t *testing.T) {
	for id, want := range map[string]bool{"abc": true, "0123456789abcdef": true, "": false, ".": false, "..": false, "a/b": false, "../x": false, "a\x00": false} {
		if got := validNamespaceID(id); got != want {
			t.Errorf("validNamespaceID(%q) = %v, want %v", id, got, want)
		}
	}
}

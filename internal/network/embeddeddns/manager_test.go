package embeddeddns

import (
	"context"
	"net/netip"
	"reflect"
	"testing"

	"github.com/silo-containers/silo/internal/network"
)

// records is a network service's records, as the manager reads them.
type records struct {
	nets []*network.Network
	eps  []*network.Endpoint
}

func (r *records) Networks(context.Context) ([]*network.Network, error) { return r.nets, nil }
func (r *records) Endpoints(_ context.Context, id string) ([]*network.Endpoint, error) {
	var out []*network.Endpoint
	for _, ep := range r.eps {
		if ep.NetworkID == id {
			out = append(out, ep)
		}
	}
	return out, nil
}
func (r *records) Lookup(string, string) []netip.Addr { return nil }

func TestEndpointAnswers(t *testing.T) {
	r := &records{eps: []*network.Endpoint{
		{NetworkID: "n1", Name: "web", Aliases: []string{"www"}, Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.2/24")}},
		{NetworkID: "n1", Name: "db", Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.3/24")},
			DNSServers: []netip.Addr{netip.MustParseAddr("10.9.9.9")}},
		{NetworkID: "n2", Name: "other", Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.2/24")}},
	}}
	m := New(nil, r, nil, nil)
	tests := []struct {
		net, addr string
		names     []string
		ups       []netip.AddrPort
	}{
		{"n1", "10.1.0.2", []string{"web", "www"}, nil},
		{"n1", "10.1.0.3", []string{"db"}, []netip.AddrPort{netip.MustParseAddrPort("10.9.9.9:53")}},
		{"n2", "10.1.0.2", []string{"other"}, nil},
		{"n1", "10.1.0.4", nil, nil},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if got := m.reverse(tt.net, a); !reflect.DeepEqual(got, tt.names) {
			t.Errorf("reverse(%s, %s) = %v, want %v", tt.net, a, got, tt.names)
		}
		if got := m.clientUpstreams(tt.net, a); !reflect.DeepEqual(got, tt.ups) {
			t.Errorf("clientUpstreams(%s, %s) = %v, want %v", tt.net, a, got, tt.ups)
		}
	}
}

func TestServes(t *testing.T) {
	gw := netip.MustParseAddr("10.1.0.1")
	sub := []network.Subnet{{Prefix: netip.MustParsePrefix("10.1.0.0/24"), Gateway: gw}}
	tests := []struct {
		n    network.Network
		want bool
	}{
		{network.Network{Type: network.NAT, Subnets: sub}, true},
		{network.Network{Type: network.Internal, Subnets: sub}, true},
		{network.Network{Type: network.NAT, Subnets: sub, Default: true}, false},
		{network.Network{Type: network.Transparent, Subnets: sub}, false},
		{network.Network{Type: network.NAT}, false},
	}
	for _, tt := range tests {
		if got := Serves(&tt.n); got != tt.want {
			t.Errorf("Serves(%s default=%v subnets=%d) = %v", tt.n.Type, tt.n.Default, len(tt.n.Subnets), got)
		}
	}
}

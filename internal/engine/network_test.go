package engine

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
)

func TestNetworkMode(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"", "nat", nil},
		{"default", "nat", nil},
		{"bridge", "nat", nil},
		{"none", "none", nil},
		{"host", "host", nil},
		{"appnet", "appnet", nil},
		{"container:web", "", errdefs.ErrNotImplemented},
		{"ns:/proc/1/ns/net", "", errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		got, err := networkMode(&container.HostConfig{NetworkMode: container.NetworkMode(tt.in)})
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("networkMode(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("networkMode(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestPortMappings(t *testing.T) {
	p80 := mobynet.MustParsePort("80/tcp")
	p53 := mobynet.MustParsePort("53/udp")
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name string
		cfg  *container.Config
		host *container.HostConfig
		want []network.PortMapping
		err  error
	}{
		{name: "none", host: &container.HostConfig{}},
		{
			name: "host ip and port",
			host: &container.HostConfig{PortBindings: mobynet.PortMap{p80: {{HostIP: lo, HostPort: "8000"}}}},
			want: []network.PortMapping{{Protocol: "tcp", InternalPort: 80, ExternalPort: 8000, HostIP: lo}},
		},
		{
			name: "any address, free port, udp",
			host: &container.HostConfig{PortBindings: mobynet.PortMap{p53: {{HostIP: netip.IPv4Unspecified()}}}},
			want: []network.PortMapping{{Protocol: "udp", InternalPort: 53}},
		},
		{
			name: "publish all skips bound ports",
			cfg:  &container.Config{ExposedPorts: mobynet.PortSet{p80: {}, p53: {}}},
			host: &container.HostConfig{PublishAllPorts: true, PortBindings: mobynet.PortMap{p80: {{HostPort: "8080"}}}},
			want: []network.PortMapping{
				{Protocol: "tcp", InternalPort: 80, ExternalPort: 8080},
				{Protocol: "udp", InternalPort: 53},
			},
		},
		{
			name: "bad host port",
			host: &container.HostConfig{PortBindings: mobynet.PortMap{p80: {{HostPort: "http"}}}},
			err:  errdefs.ErrInvalidArgument,
		},
		{
			name: "range",
			host: &container.HostConfig{PortBindings: mobynet.PortMap{p80: {{HostPort: "8000-8010"}}}},
			err:  errdefs.ErrNotImplemented,
		},
		{
			name: "ipv6 host address",
			host: &container.HostConfig{PortBindings: mobynet.PortMap{p80: {{HostIP: netip.IPv6Loopback()}}}},
			err:  errdefs.ErrNotImplemented,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := portMappings(tt.cfg, tt.host)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestNetSettingsShowsLiveEndpoints(t *testing.T) {
	c := &Container{
		ID:               "0123456789abcdef",
		HostConfig:       &container.HostConfig{NetworkMode: "nat"},
		Config:           &container.Config{},
		NetworkingConfig: map[string]*mobynet.EndpointSettings{"nat": {NetworkID: "n1"}},
		State:            State{Status: container.StateRunning},
		Net: &NetState{NetnsPath: "/run/silo/network/netns/x", Endpoints: map[string]*network.Endpoint{
			"nat": {ID: "e1", NetworkID: "n1", MAC: "02:42:ac:11:00:02",
				Addresses:    []netip.Prefix{netip.MustParsePrefix("172.17.0.2/16")},
				Gateways:     []netip.Addr{netip.MustParseAddr("172.17.0.1")},
				PortMappings: []network.PortMapping{{Protocol: "tcp", InternalPort: 80, ExternalPort: 8000}}},
		}},
	}
	ns := netSettings(c)
	ep := ns.Networks["nat"]
	if ep == nil || ep.IPAddress.String() != "172.17.0.2" || ep.IPPrefixLen != 16 || ep.Gateway.String() != "172.17.0.1" || ep.EndpointID != "e1" {
		t.Fatalf("endpoint settings %+v", ep)
	}
	b := ns.Ports[mobynet.MustParsePort("80/tcp")]
	if len(b) != 1 || b[0].HostPort != "8000" || b[0].HostIP.String() != "0.0.0.0" {
		t.Fatalf("ports %+v", ns.Ports)
	}
	if ps := portSummaries(c); len(ps) != 1 || ps[0].PublicPort != 8000 || ps[0].PrivatePort != 80 {
		t.Fatalf("port summaries %+v", ps)
	}
	// Stopped: the addresses are gone, the network stays listed.
	c.State.Status = container.StateExited
	ns = netSettings(c)
	if ep := ns.Networks["nat"]; ep == nil || ep.IPAddress.IsValid() || len(ns.Ports[mobynet.MustParsePort("80/tcp")]) != 0 {
		t.Fatalf("stopped container shows %+v / %+v", ns.Networks["nat"], ns.Ports)
	}
}

package macvlan

import (
	"errors"
	"testing"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
)

func TestValidate(t *testing.T) {
	adapter := func(name string) []network.NetworkPolicy {
		return []network.NetworkPolicy{{Type: network.NetAdapterName, Settings: network.NetworkPolicySettings{NetworkAdapterName: name}}}
	}
	for _, tc := range []struct {
		desc string
		d    *Driver
		n    network.Network
		want string // n.Interface; "" means refused
	}{
		{"transparent by policy", NewTransparent(), network.Network{Type: network.Transparent, Policies: adapter("eth0")}, "eth0"},
		{"l2tunnel by option", NewL2Tunnel(), network.Network{Type: network.L2Tunnel, Options: map[string]string{"parent": "ens3"}}, "ens3"},
		{"no parent", NewTransparent(), network.Network{Type: network.Transparent}, ""},
		{"bad parent name", NewTransparent(), network.Network{Type: network.Transparent, Options: map[string]string{"parent": "a/b"}}, ""},
		{"wrong type", NewL2Tunnel(), network.Network{Type: network.Transparent, Policies: adapter("eth0")}, ""},
	} {
		n := tc.n
		err := tc.d.Validate(&n)
		if tc.want == "" {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s: Validate = %v, want invalid argument", tc.desc, err)
			}
			continue
		}
		if err != nil || n.Interface != tc.want {
			t.Errorf("%s: Validate = %v, Interface %q; want %q", tc.desc, err, n.Interface, tc.want)
		}
		if len(n.Policies) != 1 || n.Policies[0].Settings.NetworkAdapterName != tc.want {
			t.Errorf("%s: policies %+v, want one NetAdapterName %s", tc.desc, n.Policies, tc.want)
		}
	}
}

func TestTypes(t *testing.T) {
	if NewTransparent().Type() != network.Transparent || NewL2Tunnel().Type() != network.L2Tunnel {
		t.Error("driver types")
	}
}

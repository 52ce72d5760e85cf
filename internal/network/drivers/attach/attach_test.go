package attach

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
)

func TestOpenNSGone(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing"), plain} {
		if _, err := OpenNS(path); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("OpenNS(%q) = %v, want not found", path, err)
		}
		ns, err := OpenIfExists(path)
		if ns != nil || err != nil {
			t.Errorf("OpenIfExists(%q) = %v, %v; want nil, nil", path, ns, err)
		}
	}
	if _, err := OpenNS(""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("OpenNS(\"\") = %v, want invalid argument", err)
	}
}

func TestSubnetRoutes(t *testing.T) {
	r1 := network.Route{Destination: netip.MustParsePrefix("192.168.0.0/16"), NextHop: netip.MustParseAddr("10.0.0.1")}
	r2 := network.Route{Destination: netip.MustParsePrefix("fd00:1::/64")}
	n := &network.Network{Subnets: []network.Subnet{
		{Prefix: netip.MustParsePrefix("10.0.0.0/24"), Routes: []network.Route{r1}},
		{Prefix: netip.MustParsePrefix("fd00::/64"), Routes: []network.Route{r2}},
	}}
	for _, tc := range []struct {
		addrs []string
		want  []network.Route
	}{
		{[]string{"10.0.0.5/24"}, []network.Route{r1}},
		{[]string{"10.0.0.5/24", "fd00::5/64"}, []network.Route{r1, r2}},
		{[]string{"10.1.0.5/24"}, nil},
	} {
		ep := &network.Endpoint{}
		for _, a := range tc.addrs {
			ep.Addresses = append(ep.Addresses, netip.MustParsePrefix(a))
		}
		if got := SubnetRoutes(n, ep); !slices.Equal(got, tc.want) {
			t.Errorf("SubnetRoutes(%v) = %v, want %v", tc.addrs, got, tc.want)
		}
	}
}

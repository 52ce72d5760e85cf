package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/silo-containers/silo/internal/errdefs"
)

func TestPoolAllocate(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		rng     string
		gateway string
		want    []string // successive allocations; "" = exhausted
	}{
		{"gateway skipped", "10.0.0.0/29", "", "10.0.0.1", []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", ""}},
		{"no gateway", "10.0.0.0/30", "", "", []string{"10.0.0.1", "10.0.0.2", ""}},
		{"range", "10.1.0.0/16", "10.1.5.0/30", "10.1.0.1", []string{"10.1.5.0", "10.1.5.1", "10.1.5.2", "10.1.5.3", ""}},
		{"range holding gateway", "10.2.0.0/24", "10.2.0.0/30", "10.2.0.1", []string{"10.2.0.2", "10.2.0.3", ""}},
		{"ipv6", "fd00::/126", "", "fd00::1", []string{"fd00::2", "fd00::3", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rng netip.Prefix
			if tt.rng != "" {
				rng = netip.MustParsePrefix(tt.rng)
			}
			var gw netip.Addr
			if tt.gateway != "" {
				gw = netip.MustParseAddr(tt.gateway)
			}
			p, err := NewPool(netip.MustParsePrefix(tt.prefix), rng, gw)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tt.want {
				a, err := p.Allocate()
				if w == "" {
					if !errors.Is(err, errdefs.ErrConflict) {
						t.Fatalf("allocation %d: got %v, %v; want exhaustion", i, a, err)
					}
					continue
				}
				if err != nil || a.String() != w {
					t.Fatalf("allocation %d: got %v, %v; want %s", i, a, err, w)
				}
			}
		})
	}
}

func TestPoolReleaseNotReusedAtOnce(t *testing.T) {
	p, err := NewPool(netip.MustParsePrefix("10.0.0.0/24"), netip.Prefix{}, netip.MustParseAddr("10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p.Allocate()
	b, _ := p.Allocate()
	p.Release(a)
	c, _ := p.Allocate()
	if c == a || c == b {
		t.Fatalf("got %s after releasing %s (b=%s): want a fresh address", c, a, b)
	}
	if p.InUse() != 2 {
		t.Fatalf("in use %d, want 2", p.InUse())
	}
	// Wrap around: a small pool reuses released addresses once exhausted.
	q, _ := NewPool(netip.MustParsePrefix("10.0.0.0/30"), netip.Prefix{}, netip.Addr{})
	x, _ := q.Allocate()
	q.Allocate()
	q.Release(x)
	y, err := q.Allocate()
	if err != nil || y != x {
		t.Fatalf("wrap: got %v, %v; want %s", y, err, x)
	}
}

func TestPoolReserve(t *testing.T) {
	p, err := NewPool(netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("10.0.0.128/25"), netip.MustParseAddr("10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want error
	}{
		{"10.0.0.5", nil}, // outside the range but inside the subnet: allowed for --ip
		{"10.0.0.5", errdefs.ErrConflict},
		{"10.0.0.1", errdefs.ErrInvalidArgument},   // gateway
		{"10.0.0.0", errdefs.ErrInvalidArgument},   // network address
		{"10.0.0.255", errdefs.ErrInvalidArgument}, // broadcast
		{"10.0.1.5", errdefs.ErrInvalidArgument},   // other subnet
	}
	for _, tt := range tests {
		err := p.Reserve(netip.MustParseAddr(tt.addr))
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("Reserve(%s) = %v, want %v", tt.addr, err, tt.want)
		}
	}
	// A reserved static address is skipped by dynamic allocation.
	if err := p.Reserve(netip.MustParseAddr("10.0.0.128")); err != nil {
		t.Fatal(err)
	}
	if a, _ := p.Allocate(); a.String() != "10.0.0.129" {
		t.Fatalf("allocate after reserve: %s", a)
	}
}

func TestNewPoolInvalid(t *testing.T) {
	tests := []struct{ prefix, rng, gw string }{
		{"10.0.0.0/24", "10.0.1.0/25", ""},
		{"10.0.0.0/24", "10.0.0.0/16", ""},
		{"10.0.0.0/24", "", "10.9.0.1"},
		{"10.0.0.0/31", "", ""},
		{"10.0.0.0/24", "fd00::/64", ""},
	}
	for _, tt := range tests {
		var rng netip.Prefix
		if tt.rng != "" {
			rng = netip.MustParsePrefix(tt.rng)
		}
		var gw netip.Addr
		if tt.gw != "" {
			gw = netip.MustParseAddr(tt.gw)
		}
		if _, err := NewPool(netip.MustParsePrefix(tt.prefix), rng, gw); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("NewPool(%v) = %v, want invalid argument", tt, err)
		}
	}
}

func TestLastAddr(t *testing.T) {
	tests := map[string]string{
		"10.0.0.0/24":   "10.0.0.255",
		"10.0.0.0/8":    "10.255.255.255",
		"172.16.0.0/12": "172.31.255.255",
		"10.0.0.7/32":   "10.0.0.7",
		"fd00::/120":    "fd00::ff",
	}
	for in, want := range tests {
		if got := LastAddr(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("LastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestPickSubnet(t *testing.T) {
	c := DefaultCandidates()
	tests := []struct {
		name  string
		taken []string
		want  string
	}{
		{"empty", nil, "172.17.0.0/16"},
		{"default route ignored", []string{"0.0.0.0/0"}, "172.17.0.0/16"},
		{"first taken", []string{"172.17.0.0/16"}, "172.18.0.0/16"},
		{"route inside", []string{"172.17.3.0/24", "172.18.0.1/32"}, "172.19.0.0/16"},
		{"wide route", []string{"172.16.0.0/12"}, "192.168.0.0/20"},
		{"wide route and first /20", []string{"172.16.0.0/12", "192.168.1.0/24"}, "192.168.16.0/20"},
	}
	for _, tt := range tests {
		var taken []netip.Prefix
		for _, s := range tt.taken {
			taken = append(taken, netip.MustParsePrefix(s))
		}
		got, err := PickSubnet(c, taken)
		if err != nil || got.String() != tt.want {
			t.Errorf("%s: got %v, %v; want %s", tt.name, got, err, tt.want)
		}
	}
	if _, err := PickSubnet(c, []netip.Prefix{netip.MustParsePrefix("128.0.0.0/1")}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("all taken: %v", err)
	}
}

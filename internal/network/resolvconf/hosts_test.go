package resolvconf

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/silo-containers/silo/internal/errdefs"
)

const loopbackLines = "127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"ff00::0\tip6-mcastprefix\n" +
	"ff02::1\tip6-allnodes\n" +
	"ff02::2\tip6-allrouters\n"

func TestHosts(t *testing.T) {
	tests := []struct {
		name string
		cfg  HostsConfig
		want string
	}{
		{
			"container on a network",
			HostsConfig{Hostname: "0123456789ab", Addrs: addrs("10.88.0.2")},
			loopbackLines + "10.88.0.2\t0123456789ab\n",
		},
		{
			"no network",
			HostsConfig{Hostname: "box"},
			loopbackLines,
		},
		{
			"IPv6 disabled",
			HostsConfig{Hostname: "box", Addrs: addrs("10.88.0.2"), NoIPv6: true},
			"127.0.0.1\tlocalhost\n10.88.0.2\tbox\n",
		},
		{
			"dual stack",
			HostsConfig{Hostname: "box", Addrs: addrs("10.88.0.2", "fd00:88::2")},
			loopbackLines + "10.88.0.2\tbox\nfd00:88::2\tbox\n",
		},
		{
			"hostname and domainname",
			HostsConfig{Hostname: "web", Domainname: "example.com", Addrs: addrs("10.88.0.2")},
			loopbackLines + "10.88.0.2\tweb.example.com web\n",
		},
		{
			"full hostname",
			HostsConfig{Hostname: "web.example.com", Addrs: addrs("10.88.0.2")},
			loopbackLines + "10.88.0.2\tweb.example.com web\n",
		},
		{
			"extra hosts before the container's line",
			HostsConfig{
				Hostname:    "box",
				Addrs:       addrs("10.88.0.2"),
				ExtraHosts:  []string{"db:10.0.0.5", "v6=2001:db8::5", "v6b:[2001:db8::6]", "v6c:::7", "host.docker.internal:host-gateway"},
				HostGateway: addrs("10.88.0.1", "fd00:88::1"),
			},
			loopbackLines +
				"10.0.0.5\tdb\n2001:db8::5\tv6\n2001:db8::6\tv6b\n::7\tv6c\n" +
				"10.88.0.1\thost.docker.internal\nfd00:88::1\thost.docker.internal\n" +
				"10.88.0.2\tbox\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Hosts(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestHostsErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  HostsConfig
	}{
		{"no separator", HostsConfig{ExtraHosts: []string{"db"}}},
		{"bad address", HostsConfig{ExtraHosts: []string{"db:10.0.0"}}},
		{"empty name", HostsConfig{ExtraHosts: []string{":10.0.0.1"}}},
		{"name with space", HostsConfig{ExtraHosts: []string{"a b:10.0.0.1"}}},
		{"name with newline", HostsConfig{ExtraHosts: []string{"a\n10.6.6.6 evil:10.0.0.1"}}},
		{"comment name", HostsConfig{ExtraHosts: []string{"#a:10.0.0.1"}}},
		{"host-gateway without gateway", HostsConfig{ExtraHosts: []string{"h:host-gateway"}}},
		{"hostname with newline", HostsConfig{Hostname: "a\nb", Addrs: addrs("10.0.0.2")}},
		{"domainname with space", HostsConfig{Hostname: "a", Domainname: "b c", Addrs: addrs("10.0.0.2")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Hosts(tt.cfg); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err %v, want invalid argument", err)
			}
		})
	}
}

func TestParseExtraHost(t *testing.T) {
	tests := []struct {
		in   string
		want ExtraHost
	}{
		{"db:10.0.0.5", ExtraHost{Name: "db", Addr: netip.MustParseAddr("10.0.0.5")}},
		{"db=10.0.0.5", ExtraHost{Name: "db", Addr: netip.MustParseAddr("10.0.0.5")}},
		{"db:::1", ExtraHost{Name: "db", Addr: netip.MustParseAddr("::1")}},
		{"db:[::1]", ExtraHost{Name: "db", Addr: netip.MustParseAddr("::1")}},
		{"host.docker.internal:host-gateway", ExtraHost{Name: "host.docker.internal", Gateway: true}},
	}
	for _, tt := range tests {
		got, err := ParseExtraHost(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseExtraHost(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

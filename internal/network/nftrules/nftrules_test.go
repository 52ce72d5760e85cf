package nftrules

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network/netnsutil"
)

var (
	sub    = netip.MustParsePrefix("172.18.0.0/16")
	epAddr = netip.MustParseAddr("172.18.0.2")
)

func testState() State {
	return State{
		Networks: []Network{
			{Name: "nat", Bridge: "silo0", Subnets: []netip.Prefix{sub}, Masquerade: true, Exceptions: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
			{Name: "priv", Bridge: "br-priv", Subnets: []netip.Prefix{netip.MustParsePrefix("172.19.0.0/16")}, Isolated: true},
		},
		Endpoints: []Endpoint{{
			ID: "0123456789abcdef", Addr: epAddr, Bridge: "silo0", Masquerade: true,
			PortMappings: []PortMapping{
				{Protocol: "tcp", HostPort: 8080, Port: 80},
				{Protocol: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, Port: 53},
			},
			ACLs: []ACL{
				{Block: true, In: true, Protocol: "tcp", LocalPorts: []PortRange{{80, 80}}, Priority: 200},
				{In: true, Protocol: "tcp", RemoteAddresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, LocalPorts: []PortRange{{80, 80}}, Priority: 100},
				{Block: true, Protocol: "udp", RemotePorts: []PortRange{{1000, 2000}}, Priority: 300},
			},
			HasOutboundNAT: true, NATExceptions: []netip.Prefix{netip.MustParsePrefix("192.168.50.0/24")},
		}},
	}
}

func TestRenderText(t *testing.T) {
	rs, err := Render(testState())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		chain string
		want  []string
	}{
		{"prerouting", []string{"fib daddr type local jump portmap"}},
		{"output", []string{"fib daddr type local jump portmap"}},
		{"portmap", []string{
			"meta l4proto tcp th dport 8080 dnat to 172.18.0.2:80",
			"ip daddr 127.0.0.1 meta l4proto udp th dport 5353 dnat to 172.18.0.2:53",
		}},
		{"postrouting", []string{
			`oifname "silo0" ip saddr 127.0.0.0/8 masquerade`,
			`ct status dnat oifname "silo0" ip saddr 172.18.0.0/16 masquerade`,
			`ip saddr 172.18.0.2 ip daddr 192.168.50.0/24 oifname != "silo0" accept`,
			`ip saddr 172.18.0.2 oifname != "silo0" masquerade`,
			`ip saddr 172.18.0.0/16 ip daddr 10.0.0.0/8 oifname != "silo0" accept`,
			`ip saddr 172.18.0.0/16 oifname != "silo0" masquerade`,
		}},
		{"forward", []string{
			`iifname "br-priv" oifname != "br-priv" drop`,
			`oifname "br-priv" iifname != "br-priv" drop`,
			`iifname "silo0" oifname "br-priv" ct status & dnat == 0 drop`,
			`iifname "br-priv" oifname "silo0" ct status & dnat == 0 drop`,
			"ip saddr 172.18.0.2 jump out-0123456789ab",
			"ip daddr 172.18.0.2 jump in-0123456789ab",
		}},
		{"input", []string{"ip saddr 172.18.0.2 jump out-0123456789ab"}},
		{"output-acl", []string{"ip daddr 172.18.0.2 jump in-0123456789ab"}},
		{"in-0123456789ab", []string{
			"ct state established,related return",
			"ip saddr 10.1.0.0/16 meta l4proto tcp th dport 80 return",
			"meta l4proto tcp th dport 80 drop",
		}},
		{"out-0123456789ab", []string{
			"ct state established,related return",
			"meta l4proto udp th dport 1000-2000 drop",
		}},
	}
	for _, tt := range tests {
		if got := rs.Text(tt.chain); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("chain %s:\n got %q\nwant %q", tt.chain, got, tt.want)
		}
	}
}

func TestRenderExpressions(t *testing.T) {
	rs, err := Render(testState())
	if err != nil {
		t.Fatal(err)
	}
	r := rs.Rules[0]
	for _, x := range rs.Rules {
		if x.Chain == "portmap" {
			r = x
			break
		}
	}
	// meta l4proto tcp th dport 8080 dnat to 172.18.0.2:80
	want := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x1f, 0x90}},
		&expr.Immediate{Register: 1, Data: []byte{172, 18, 0, 2}},
		&expr.Immediate{Register: 2, Data: []byte{0, 80}},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: 2, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
	if !reflect.DeepEqual(r.Exprs, want) {
		t.Fatalf("portmap rule expressions:\n got %#v\nwant %#v", r.Exprs, want)
	}
}

func TestRenderInvalid(t *testing.T) {
	tests := []struct {
		name string
		ep   Endpoint
		want error
	}{
		{"ports without protocol", Endpoint{ID: "a", Addr: epAddr, ACLs: []ACL{{LocalPorts: []PortRange{{80, 80}}}}}, errdefs.ErrInvalidArgument},
		{"ports with icmp", Endpoint{ID: "a", Addr: epAddr, ACLs: []ACL{{Protocol: "icmp", LocalPorts: []PortRange{{80, 80}}}}}, errdefs.ErrInvalidArgument},
		{"unknown protocol", Endpoint{ID: "a", Addr: epAddr, ACLs: []ACL{{Protocol: "bogus"}}}, errdefs.ErrInvalidArgument},
		{"ipv6 acl address", Endpoint{ID: "a", Addr: epAddr, ACLs: []ACL{{RemoteAddresses: []netip.Prefix{netip.MustParsePrefix("fd00::/64")}}}}, errdefs.ErrNotImplemented},
		{"mapping protocol", Endpoint{ID: "a", Addr: epAddr, PortMappings: []PortMapping{{Protocol: "icmp", HostPort: 1, Port: 1}}}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		if _, err := Render(State{Endpoints: []Endpoint{tt.ep}}); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestApply installs the ruleset twice in a throwaway namespace: the
// kernel accepts every expression, and the second apply replaces the
// table instead of adding to it.
func TestApply(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nsPath := filepath.Join(t.TempDir(), "ns")
	if err := netnsutil.Create(nsPath); err != nil {
		t.Fatal(err)
	}
	defer netnsutil.Remove(nsPath)
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	rs, err := Render(testState())
	if err != nil {
		t.Fatal(err)
	}
	list := func() string {
		out, err := exec.Command("nsenter", "--net="+nsPath, "nft", "list", "table", "ip", TableName).CombinedOutput()
		if err != nil {
			t.Fatalf("nft list: %v: %s", err, out)
		}
		return string(out)
	}
	var first string
	for i := range 2 {
		c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
		if err != nil {
			t.Fatal(err)
		}
		if err := Apply(c, rs); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
		if i == 0 {
			first = list()
		}
	}
	second := list()
	if first != second {
		t.Fatalf("second apply changed the table:\n%s\n---\n%s", first, second)
	}
	// One listed line per rendered rule: nothing duplicated.
	if rules := countRules(second); rules != len(rs.Rules) {
		t.Errorf("nft lists %d rules, rendered %d:\n%s", rules, len(rs.Rules), second)
	}
	for _, want := range []string{
		"tcp dport 8080 dnat to 172.18.0.2:80",
		"ct status dnat",
		"udp dport 1000-2000 drop",
		"type nat hook prerouting priority dstnat",
	} {
		if !strings.Contains(second, want) {
			t.Errorf("nft list: no %q:\n%s", want, second)
		}
	}
	// Update refills the table: the endpoint's ACL chains go with its
	// ACLs, and the rules are the new state's, once each.
	st := testState()
	st.Endpoints[0].ACLs = nil
	rs2, err := Render(st)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := nftables.New(nftables.WithNetNSFd(int(ns)), nftables.AsLasting())
	if err != nil {
		t.Fatal(err)
	}
	defer lc.CloseLasting()
	for i := range 2 {
		if err := Update(lc, rs2); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	third := list()
	if strings.Contains(third, "in-0123456789ab") || strings.Contains(third, "1000-2000") {
		t.Fatalf("acl chains kept after update:\n%s", third)
	}
	if got := countRules(third); got != len(rs2.Rules) {
		t.Fatalf("after update nft lists %d rules, rendered %d:\n%s", got, len(rs2.Rules), third)
	}

	c, _ := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err := Delete(c); err != nil {
		t.Fatal(err)
	}
	if err := Delete(c); err != nil { // missing is not an error
		t.Fatal(err)
	}
	// Without a table, Update asks for a full Apply and sends nothing.
	if err := Update(lc, rs2); !NeedsApply(err) {
		t.Fatalf("update without table: %v", err)
	}
	if err := Apply(lc, rs2); err != nil {
		t.Fatalf("apply after a refused update: %v", err)
	}
	if got := countRules(list()); got != len(rs2.Rules) {
		t.Fatalf("apply after a refused update: %d rules, want %d", got, len(rs2.Rules))
	}
	if err := Delete(lc); err != nil {
		t.Fatal(err)
	}
}

// countRules counts the rule lines of an `nft list table` output.
func countRules(listing string) int {
	n := 0
	for _, l := range strings.Split(listing, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l == "}" || strings.HasPrefix(l, "table ") || strings.HasPrefix(l, "chain ") || strings.HasPrefix(l, "type ") {
			continue
		}
		n++
	}
	return n
}

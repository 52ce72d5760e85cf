// Package nftrules renders the network service's whole state into the
// nftables table "ip silo" and installs it in one netlink batch.
//
// Rendering is pure (State → Ruleset): each rule carries both its
// expressions for the kernel and its text in nft syntax, which tests and
// logs read. Apply replaces the table atomically (add, delete and add
// again, then every chain and rule, in one transaction), so applying the
// same state twice, or after a daemon restart, never duplicates a rule.
//
// Chains of table ip silo:
//
//	prerouting  nat hook prerouting -100   fib daddr type local → portmap
//	output      nat hook output -100       fib daddr type local → portmap
//	portmap     DNAT of each published port to its endpoint
//	postrouting nat hook postrouting 100   localhost and hairpin masquerade,
//	                                       outbound NAT with exceptions
//	forward     filter hook forward 0      isolation of internal networks and
//	                                       between networks, ACL jumps
//	                                       (both directions)
//	input       filter hook input 0        ACLs of traffic from endpoints to the host
//	output-acl  filter hook output 0       ACLs of traffic from the host to endpoints
//	in-<ep>     one endpoint's In ACLs
//	out-<ep>    one endpoint's Out ACLs
//
// No chain drops by default: only isolation (internal networks, and
// between networks except for published ports) and Block ACLs drop.
package nftrules

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/silo-containers/silo/internal/errdefs"
)

// TableName is the name of silo's table (family ip).
const TableName = "silo"

// State is what the rules are rendered from.
type State struct {
	Networks  []Network
	Endpoints []Endpoint
}

// Network is one network as the rules see it.
type Network struct {
	// Name is used in rule comments only.
	Name string
	// Bridge is the network's host interface; rules need one.
	Bridge string
	// Subnets are the network's IPv4 subnets.
	Subnets []netip.Prefix
	// Masquerade: traffic from the subnets leaving through another
	// interface is masqueraded (nat networks).
	Masquerade bool
	// Isolated: nothing is forwarded between the bridge and any other
	// interface (internal networks).
	Isolated bool
	// Exceptions are destinations not masqueraded (network-wide
	// OutBoundNAT exceptions).
	Exceptions []netip.Prefix
}

// Endpoint is one endpoint as the rules see it.
type Endpoint struct {
	// ID names the endpoint's ACL chains (its first 12 characters).
	ID string
	// Addr is the endpoint's IPv4 address.
	Addr netip.Addr
	// Bridge is the host interface of its network.
	Bridge string
	// Masquerade is true on a nat network.
	Masquerade bool
	// PortMappings are the published ports.
	PortMappings []PortMapping
	// ACLs are the endpoint's firewall rules.
	ACLs []ACL
	// NATExceptions, when not nil, replaces the network's outbound NAT
	// exceptions for this endpoint (an OutBoundNAT endpoint policy).
	NATExceptions []netip.Prefix
	// HasOutboundNAT marks an endpoint with its own OutBoundNAT policy
	// (NATExceptions may then be empty).
	HasOutboundNAT bool
}

// PortMapping is one published port.
type PortMapping struct {
	// Protocol is "tcp", "udp" or "sctp".
	Protocol string
	// HostIP, when valid, limits the mapping to one host address.
	HostIP   netip.Addr
	HostPort uint16
	Port     uint16
}

// ACL is one endpoint firewall rule.
type ACL struct {
	Block bool
	// In: packets to the endpoint; else packets from it.
	In bool
	// Protocol is "tcp", "udp", "sctp", "icmp", a protocol number or "".
	Protocol        string
	LocalAddresses  []netip.Prefix
	RemoteAddresses []netip.Prefix
	LocalPorts      []PortRange
	RemotePorts     []PortRange
	Priority        int
}

// PortRange is an inclusive port range.
type PortRange struct{ First, Last uint16 }

// Chain is one chain of the table.
type Chain struct {
	Name     string
	Type     nftables.ChainType
	Hook     *nftables.ChainHook
	Priority *nftables.ChainPriority
}

// Rule is one rule: its chain, expressions and nft-syntax text.
type Rule struct {
	Chain string
	Exprs []expr.Any
	Text  string
}

// Ruleset is the rendered table.
type Ruleset struct {
	Chains []Chain
	Rules  []Rule
}

// Text returns the rules of chain in nft syntax, one per line.
func (rs *Ruleset) Text(chain string) []string {
	var out []string
	for _, r := range rs.Rules {
		if r.Chain == chain {
			out = append(out, r.Text)
		}
	}
	return out
}

// Chain names.
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPortmap     = "portmap"
	chainPostrouting = "postrouting"
	chainForward     = "forward"
	chainInput       = "input"
	chainOutputACL   = "output-acl"
)

// InChain and OutChain name an endpoint's ACL chains.
func InChain(id string) string  { return "in-" + short(id) }
func OutChain(id string) string { return "out-" + short(id) }

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// maxACLRules bounds the rules one ACL expands into (the product of its
// address and port lists).
const maxACLRules = 256

// Render turns st into the ruleset. It fails on an ACL that cannot be
// expressed (ports without a port protocol, unknown protocol).
func Render(st State) (*Ruleset, error) {
	rs := &Ruleset{Chains: []Chain{
		{Name: chainPrerouting, Type: nftables.ChainTypeNAT, Hook: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest},
		{Name: chainOutput, Type: nftables.ChainTypeNAT, Hook: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest},
		{Name: chainPortmap},
		{Name: chainPostrouting, Type: nftables.ChainTypeNAT, Hook: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
		{Name: chainForward, Type: nftables.ChainTypeFilter, Hook: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter},
		{Name: chainInput, Type: nftables.ChainTypeFilter, Hook: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter},
		{Name: chainOutputACL, Type: nftables.ChainTypeFilter, Hook: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter},
	}}
	add := func(chain string, b *builder) {
		rs.Rules = append(rs.Rules, Rule{Chain: chain, Exprs: b.exprs, Text: strings.Join(b.text, " ")})
	}

	// Published ports: DNAT of packets to a local address.
	add(chainPrerouting, newRule().fibDaddrLocal().jump(chainPortmap))
	add(chainOutput, newRule().fibDaddrLocal().jump(chainPortmap))
	for _, ep := range st.Endpoints {
		if !ep.Addr.Is4() {
			continue
		}
		for _, pm := range ep.PortMappings {
			proto, ok := protoNumber(pm.Protocol)
			if !ok || proto == protoICMP {
				return nil, fmt.Errorf("render port mapping %s/%d: unknown protocol: %w", pm.Protocol, pm.HostPort, errdefs.ErrInvalidArgument)
			}
			if pm.HostIP.IsValid() && !pm.HostIP.Is4() {
				continue // IPv6 host addresses have no ip-family rule
			}
			b := newRule()
			if pm.HostIP.IsValid() && !pm.HostIP.IsUnspecified() {
				b.ipAddr(false, netip.PrefixFrom(pm.HostIP, 32), false)
			}
			b.l4proto(proto).port(false, PortRange{pm.HostPort, pm.HostPort}).dnat(ep.Addr, pm.Port)
			add(chainPortmap, b)
		}
	}

	// Masquerade.
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	for _, n := range st.Networks {
		if n.Bridge == "" || !n.Masquerade {
			continue
		}
		// Packets from 127.0.0.1 DNATed onto the bridge (route_localnet
		// lets them out) need a source the endpoint can answer.
		add(chainPostrouting, newRule().oif(n.Bridge, true).ipAddr(true, loopback, false).masq())
		for _, sub := range v4(n.Subnets) {
			// Hairpin: an endpoint reaching a published port of the
			// same bridge; without it the answer would skip the DNAT.
			add(chainPostrouting, newRule().ctStatusDNAT().oif(n.Bridge, true).ipAddr(true, sub, false).masq())
		}
	}
	for _, ep := range st.Endpoints {
		if !ep.Masquerade || !ep.HasOutboundNAT || !ep.Addr.Is4() || ep.Bridge == "" {
			continue
		}
		src := netip.PrefixFrom(ep.Addr, 32)
		for _, exc := range v4(ep.NATExceptions) {
			add(chainPostrouting, newRule().ipAddr(true, src, false).ipAddr(false, exc, false).oif(ep.Bridge, false).accept())
		}
		add(chainPostrouting, newRule().ipAddr(true, src, false).oif(ep.Bridge, false).masq())
	}
	for _, n := range st.Networks {
		if n.Bridge == "" || !n.Masquerade {
			continue
		}
		for _, sub := range v4(n.Subnets) {
			for _, exc := range v4(n.Exceptions) {
				add(chainPostrouting, newRule().ipAddr(true, sub, false).ipAddr(false, exc, false).oif(n.Bridge, false).accept())
			}
			add(chainPostrouting, newRule().ipAddr(true, sub, false).oif(n.Bridge, false).masq())
		}
	}

	// Isolation of internal networks.
	for _, n := range st.Networks {
		if n.Bridge == "" || !n.Isolated {
			continue
		}
		add(chainForward, newRule().iif(n.Bridge, true).oif(n.Bridge, false).drop())
		add(chainForward, newRule().oif(n.Bridge, true).iif(n.Bridge, false).drop())
	}

	// Isolation between networks, as docker's: an endpoint does not reach
	// another network's endpoints directly; their published ports
	// (DNATed connections, answers included) stay reachable.
	var bridged []string
	for _, n := range st.Networks {
		if n.Bridge != "" && (n.Masquerade || n.Isolated) {
			bridged = append(bridged, n.Bridge)
		}
	}
	for _, from := range bridged {
		for _, to := range bridged {
			if from != to {
				add(chainForward, newRule().iif(from, true).oif(to, true).ctStatusNotDNAT().drop())
			}
		}
	}

	// ACLs.
	for _, ep := range st.Endpoints {
		if len(ep.ACLs) == 0 || !ep.Addr.Is4() {
			continue
		}
		in, out := InChain(ep.ID), OutChain(ep.ID)
		rs.Chains = append(rs.Chains, Chain{Name: in}, Chain{Name: out})
		addr := netip.PrefixFrom(ep.Addr, 32)
		// Out of the source first, then In of the destination: both
		// chains return unless they drop.
		add(chainForward, newRule().ipAddr(true, addr, false).jump(out))
		add(chainForward, newRule().ipAddr(false, addr, false).jump(in))
		add(chainInput, newRule().ipAddr(true, addr, false).jump(out))
		add(chainOutputACL, newRule().ipAddr(false, addr, false).jump(in))
		// Stateful: answers of allowed connections pass.
		add(in, newRule().ctStateEstablished().ret())
		add(out, newRule().ctStateEstablished().ret())
		acls := append([]ACL(nil), ep.ACLs...)
		sort.SliceStable(acls, func(i, j int) bool { return acls[i].Priority < acls[j].Priority })
		for _, a := range acls {
			rules, err := renderACL(a)
			if err != nil {
				return nil, fmt.Errorf("render acls of endpoint %s: %w", short(ep.ID), err)
			}
			chain := out
			if a.In {
				chain = in
			}
			for _, b := range rules {
				add(chain, b)
			}
		}
	}
	return rs, nil
}

// renderACL expands one ACL into rules: one per combination of its
// address and port lists.
func renderACL(a ACL) ([]*builder, error) {
	proto, hasProto := uint8(0), a.Protocol != ""
	if hasProto {
		var ok bool
		if proto, ok = protoNumber(a.Protocol); !ok {
			return nil, fmt.Errorf("acl protocol %q: %w", a.Protocol, errdefs.ErrInvalidArgument)
		}
	}
	hasPorts := len(a.LocalPorts)+len(a.RemotePorts) > 0
	if hasPorts && (!hasProto || (proto != protoTCP && proto != protoUDP && proto != protoSCTP)) {
		return nil, fmt.Errorf("acl ports need protocol tcp, udp or sctp, not %q: %w", a.Protocol, errdefs.ErrInvalidArgument)
	}
	// The endpoint is the destination of In packets and the source of
	// Out packets.
	localIsSrc := !a.In
	local, remote := orAny(a.LocalAddresses), orAny(a.RemoteAddresses)
	lports, rports := orAnyPort(a.LocalPorts), orAnyPort(a.RemotePorts)
	if n := len(local) * len(remote) * len(lports) * len(rports); n > maxACLRules {
		return nil, fmt.Errorf("acl expands into %d rules, more than %d: %w", n, maxACLRules, errdefs.ErrInvalidArgument)
	}
	var out []*builder
	for _, l := range local {
		for _, r := range remote {
			for _, lp := range lports {
				for _, rp := range rports {
					b := newRule()
					if l.IsValid() {
						if !l.Addr().Is4() {
							return nil, fmt.Errorf("acl address %s: only IPv4: %w", l, errdefs.ErrNotImplemented)
						}
						b.ipAddr(localIsSrc, l, false)
					}
					if r.IsValid() {
						if !r.Addr().Is4() {
							return nil, fmt.Errorf("acl address %s: only IPv4: %w", r, errdefs.ErrNotImplemented)
						}
						b.ipAddr(!localIsSrc, r, false)
					}
					if hasProto {
						b.l4proto(proto)
					}
					if lp.Last != 0 {
						b.port(localIsSrc, lp)
					}
					if rp.Last != 0 {
						b.port(!localIsSrc, rp)
					}
					if a.Block {
						b.drop()
					} else {
						b.ret()
					}
					out = append(out, b)
				}
			}
		}
	}
	return out, nil
}

func orAny(p []netip.Prefix) []netip.Prefix {
	if len(p) == 0 {
		return []netip.Prefix{{}}
	}
	return p
}

func orAnyPort(p []PortRange) []PortRange {
	if len(p) == 0 {
		return []PortRange{{}}
	}
	return p
}

func v4(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() {
			out = append(out, p.Masked())
		}
	}
	return out
}

// Apply installs rs as table ip silo in c's namespace in one batch,
// replacing whatever table of that name was there: the old table is
// deleted and the new one built inside the same transaction. Deleting a
// table unregisters its hooks, which waits for RCU grace periods (about
// 10 ms); Update is the cheap way for changes once the table exists.
func Apply(c *nftables.Conn, rs *Ruleset) error {
	t := &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
	// add + delete + add: deletes the old table whether or not it
	// exists.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	if err := addAll(c, t, rs); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("apply nftables table ip %s: %w", TableName, err)
	}
	return nil
}

// Update makes table ip silo hold exactly rs in one batch without
// re-registering its hooks: every chain of rs is added (a no-op when it
// exists) and flushed, chains rs no longer has are flushed and deleted,
// then every rule is added. A table made by Apply with the same base
// chains is the precondition; otherwise (a first start, a chain changed
// type) use Apply.
func Update(c *nftables.Conn, rs *Ruleset) error {
	t := &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
	existing, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("list nftables chains: %w", err)
	}
	want := map[string]bool{}
	for _, ch := range rs.Chains {
		want[ch.Name] = true
	}
	have := map[string]bool{}
	for _, ch := range existing {
		if ch.Table.Name == TableName {
			have[ch.Name] = true
		}
	}
	// Checked before anything is queued: a lasting connection would
	// otherwise send the queued messages with its next batch.
	for _, ch := range rs.Chains {
		if ch.Hook != nil && !have[ch.Name] {
			return fmt.Errorf("update nftables table ip %s: base chain %s missing: %w", TableName, ch.Name, errNeedApply)
		}
	}
	c.AddTable(t)
	// Flush every chain first: rules jumping to a stale chain go before
	// the chain itself.
	for name := range have {
		c.FlushChain(&nftables.Chain{Name: name, Table: t})
	}
	for name := range have {
		if !want[name] {
			c.DelChain(&nftables.Chain{Name: name, Table: t})
		}
	}
	if err := addAll(c, t, rs); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("update nftables table ip %s: %w", TableName, err)
	}
	return nil
}

// errNeedApply: Update found no table to update.
var errNeedApply = errors.New("table needs a full apply")

// NeedsApply reports whether Update failed because the table must be
// replaced as a whole first.
func NeedsApply(err error) bool { return errors.Is(err, errNeedApply) }

// addAll queues the chains and rules of rs in table t.
func addAll(c *nftables.Conn, t *nftables.Table, rs *Ruleset) error {
	chains := map[string]*nftables.Chain{}
	for _, ch := range rs.Chains {
		nc := &nftables.Chain{Name: ch.Name, Table: t, Type: ch.Type, Hooknum: ch.Hook, Priority: ch.Priority}
		if ch.Hook != nil {
			accept := nftables.ChainPolicyAccept
			nc.Policy = &accept
		}
		chains[ch.Name] = c.AddChain(nc)
	}
	for _, r := range rs.Rules {
		ch, ok := chains[r.Chain]
		if !ok {
			return fmt.Errorf("nftables rule %q: no chain %q", r.Text, r.Chain)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r.Exprs})
	}
	return nil
}

// Delete removes table ip silo from c's namespace; a missing table is not
// an error.
func Delete(c *nftables.Conn) error {
	t := &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nftables table ip %s: %w", TableName, err)
	}
	return nil
}

package nftrules

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ipsDstNAT is the conntrack status bit of a translated destination
// (IPS_DST_NAT in linux/netfilter/nf_conntrack_common.h).
const ipsDstNAT = 1 << 5

// IP protocol numbers.
const (
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)

// protoNumber parses "tcp", "udp", "sctp", "icmp" or a number.
func protoNumber(s string) (uint8, bool) {
	switch strings.ToLower(s) {
	case "tcp":
		return protoTCP, true
	case "udp":
		return protoUDP, true
	case "sctp":
		return protoSCTP, true
	case "icmp":
		return protoICMP, true
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, false
	}
	return uint8(n), true
}

func protoName(p uint8) string {
	switch p {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoSCTP:
		return "sctp"
	case protoICMP:
		return "icmp"
	}
	return strconv.Itoa(int(p))
}

// builder accumulates one rule's expressions and its nft text side by
// side, so the text is exactly what the expressions say.
type builder struct {
	exprs []expr.Any
	text  []string
}

func newRule() *builder { return &builder{} }

func (b *builder) add(text string, e ...expr.Any) *builder {
	b.exprs = append(b.exprs, e...)
	b.text = append(b.text, text)
	return b
}

// ifname pads an interface name as the kernel compares it (IFNAMSIZ).
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

func (b *builder) ifMatch(key expr.MetaKey, word, name string, eq bool) *builder {
	op, sym := expr.CmpOpEq, ""
	if !eq {
		op, sym = expr.CmpOpNeq, "!= "
	}
	return b.add(fmt.Sprintf("%s %s%q", word, sym, name),
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(name)})
}

// oif matches (eq) or excludes the output interface.
func (b *builder) oif(name string, eq bool) *builder {
	return b.ifMatch(expr.MetaKeyOIFNAME, "oifname", name, eq)
}

// iif matches (eq) or excludes the input interface.
func (b *builder) iif(name string, eq bool) *builder {
	return b.ifMatch(expr.MetaKeyIIFNAME, "iifname", name, eq)
}

// ipAddr matches the IPv4 source (src) or destination against p.
func (b *builder) ipAddr(src bool, p netip.Prefix, neg bool) *builder {
	off, word := uint32(16), "ip daddr"
	if src {
		off, word = 12, "ip saddr"
	}
	p = p.Masked()
	op, sym := expr.CmpOpEq, ""
	if neg {
		op, sym = expr.CmpOpNeq, "!= "
	}
	text := fmt.Sprintf("%s %s%s", word, sym, p)
	if p.Bits() == 32 {
		text = fmt.Sprintf("%s %s%s", word, sym, p.Addr())
	}
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4}}
	if p.Bits() < 32 {
		m := make([]byte, 4)
		binary.BigEndian.PutUint32(m, ^uint32(0)<<(32-p.Bits()))
		if p.Bits() == 0 {
			m = []byte{0, 0, 0, 0}
		}
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: []byte{0, 0, 0, 0}})
	}
	a := p.Addr().As4()
	e = append(e, &expr.Cmp{Op: op, Register: 1, Data: a[:]})
	return b.add(text, e...)
}

// l4proto matches the transport protocol.
func (b *builder) l4proto(p uint8) *builder {
	return b.add("meta l4proto "+protoName(p),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}})
}

// port matches the transport source (src) or destination port range.
func (b *builder) port(src bool, r PortRange) *builder {
	off, word := uint32(2), "th dport"
	if src {
		off, word = 0, "th sport"
	}
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2}}
	if r.First == r.Last || r.Last == 0 {
		e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(r.First)})
		return b.add(fmt.Sprintf("%s %d", word, r.First), e...)
	}
	e = append(e, &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: be16(r.First), ToData: be16(r.Last)})
	return b.add(fmt.Sprintf("%s %d-%d", word, r.First, r.Last), e...)
}

func be16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

// fibDaddrLocal matches packets to an address of the host.
func (b *builder) fibDaddrLocal() *builder {
	return b.add("fib daddr type local",
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)})
}

// ctStatusDNAT matches connections whose destination was translated.
func (b *builder) ctStatusDNAT() *builder {
	return b.add("ct status dnat",
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
}

// ctStatusNotDNAT matches packets of connections not destination-NATed
// (not to a published port).
func (b *builder) ctStatusNotDNAT() *builder {
	return b.add("ct status & dnat == 0",
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)})
}

// ctStateEstablished matches established and related packets.
func (b *builder) ctStateEstablished() *builder {
	return b.add("ct state established,related",
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
}

func (b *builder) dnat(to netip.Addr, port uint16) *builder {
	a := to.As4()
	return b.add(fmt.Sprintf("dnat to %s:%d", to, port),
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: be16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
}

func (b *builder) masq() *builder { return b.add("masquerade", &expr.Masq{}) }

func (b *builder) verdict(text string, k expr.VerdictKind, chain string) *builder {
	return b.add(text, &expr.Verdict{Kind: k, Chain: chain})
}

func (b *builder) jump(chain string) *builder {
	return b.verdict("jump "+chain, expr.VerdictJump, chain)
}
func (b *builder) accept() *builder { return b.verdict("accept", expr.VerdictAccept, "") }
func (b *builder) drop() *builder   { return b.verdict("drop", expr.VerdictDrop, "") }
func (b *builder) ret() *builder    { return b.verdict("return", expr.VerdictReturn, "") }

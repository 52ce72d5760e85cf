// Package ipam allocates addresses from a network's subnets and picks free
// subnets for new networks. It keeps no state of its own on disk: the
// network service rebuilds each Pool from its endpoint records.
package ipam

import (
	"fmt"
	"math/big"
	"net/netip"
	"sync"

	"github.com/silo-containers/silo/internal/errdefs"
)

// Pool hands out the addresses of one subnet. The subnet's network
// address, its IPv4 broadcast address and the gateway are never handed out.
// A Pool is safe for concurrent use.
type Pool struct {
	prefix  netip.Prefix
	rng     netip.Prefix // allocation range (prefix itself when no IPRange)
	gateway netip.Addr

	mu   sync.Mutex
	used map[netip.Addr]struct{}
	last netip.Addr // last address handed out: allocation continues after it
}

// NewPool returns a pool for prefix. ipRange, when valid, narrows dynamic
// allocation to a part of prefix; gateway, when valid, is reserved.
func NewPool(prefix, ipRange netip.Prefix, gateway netip.Addr) (*Pool, error) {
	if !prefix.IsValid() {
		return nil, fmt.Errorf("ipam pool: invalid subnet: %w", errdefs.ErrInvalidArgument)
	}
	prefix = prefix.Masked()
	rng := prefix
	if ipRange.IsValid() {
		ipRange = ipRange.Masked()
		if ipRange.Addr().Is4() != prefix.Addr().Is4() || ipRange.Bits() < prefix.Bits() || !prefix.Contains(ipRange.Addr()) {
			return nil, fmt.Errorf("ipam pool %s: ip range %s is not inside the subnet: %w", prefix, ipRange, errdefs.ErrInvalidArgument)
		}
		rng = ipRange
	}
	if gateway.IsValid() && !prefix.Contains(gateway) {
		return nil, fmt.Errorf("ipam pool %s: gateway %s is not inside the subnet: %w", prefix, gateway, errdefs.ErrInvalidArgument)
	}
	if Size(prefix).Cmp(big.NewInt(4)) < 0 && prefix.Addr().Is4() {
		return nil, fmt.Errorf("ipam pool %s: subnet too small: %w", prefix, errdefs.ErrInvalidArgument)
	}
	return &Pool{prefix: prefix, rng: rng, gateway: gateway, used: map[netip.Addr]struct{}{}}, nil
}

// Prefix is the pool's subnet.
func (p *Pool) Prefix() netip.Prefix { return p.prefix }

// reserved reports whether a is never handed out.
func (p *Pool) reserved(a netip.Addr) bool {
	if a == p.prefix.Addr() || a == p.gateway {
		return true
	}
	return a.Is4() && a == LastAddr(p.prefix)
}

// Allocate hands out a free address of the range, continuing after the
// last one handed out so a released address is not reused at once.
func (p *Pool) Allocate() (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	first, last := p.rng.Addr(), LastAddr(p.rng)
	start := first
	if p.last.IsValid() && p.rng.Contains(p.last) && p.last != last {
		start = p.last.Next()
	}
	// Walk at most the whole range once, wrapping at its end. IPv6
	// ranges are huge, but the walk stops at the first free address.
	a := start
	for {
		if _, taken := p.used[a]; !taken && !p.reserved(a) {
			p.used[a] = struct{}{}
			p.last = a
			return a, nil
		}
		if a == last {
			a = first
		} else {
			a = a.Next()
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("allocate address in %s: no free address left: %w", p.rng, errdefs.ErrConflict)
		}
	}
}

// Reserve marks a as used: a static address (--ip) or one restored from
// a record. It may lie outside the range but must be inside the subnet.
func (p *Pool) Reserve(a netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.prefix.Contains(a) {
		return fmt.Errorf("reserve address %s: not in subnet %s: %w", a, p.prefix, errdefs.ErrInvalidArgument)
	}
	if p.reserved(a) {
		return fmt.Errorf("reserve address %s: reserved in subnet %s: %w", a, p.prefix, errdefs.ErrInvalidArgument)
	}
	if _, taken := p.used[a]; taken {
		return fmt.Errorf("reserve address %s: already in use: %w", a, errdefs.ErrConflict)
	}
	p.used[a] = struct{}{}
	return nil
}

// Release returns a to the pool; releasing a free address does nothing.
func (p *Pool) Release(a netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.used, a)
}

// InUse reports how many addresses are handed out.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}

// LastAddr returns the highest address of p.
func LastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		hostBits := 8*(i+1) - bits
		switch {
		case hostBits >= 8:
			b[i] = 0xff
		case hostBits > 0:
			b[i] |= byte(1<<hostBits - 1)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Size returns the number of addresses in p.
func Size(p netip.Prefix) *big.Int {
	return new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits()))
}

// DefaultCandidates are the subnets tried for networks created without
// one, in docker's order: 172.17.0.0/16 … 172.31.0.0/16, then
// 192.168.0.0/20 … 192.168.240.0/20.
func DefaultCandidates() []netip.Prefix {
	var out []netip.Prefix
	for i := 17; i <= 31; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return out
}

// PickSubnet returns the first candidate overlapping none of taken.
// Prefixes in taken that cover everything of their family (a default
// route) are ignored: every subnet "overlaps" them.
func PickSubnet(candidates, taken []netip.Prefix) (netip.Prefix, error) {
next:
	for _, c := range candidates {
		for _, t := range taken {
			if t.Bits() == 0 {
				continue
			}
			if c.Overlaps(t) {
				continue next
			}
		}
		return c, nil
	}
	return netip.Prefix{}, fmt.Errorf("pick a subnet: all default address pools overlap existing networks or routes: %w", errdefs.ErrConflict)
}

// FirstHost returns the first address after p's network address: the
// default gateway of a subnet.
func FirstHost(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

package l2bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/silo-containers/silo/internal/network/drivers/attach"
)

// moveL3 moves from's addresses and the routes through it to to: adds
// each address on to, replaces each route by the same route through to,
// then removes the addresses from from. What the kernel makes by itself
// (prefix routes, IPv6 link-local and autoconfigured addresses, router
// advertisement routes, the local table) is left to the kernel.
func moveL3(ctx context.Context, h *netlink.Handle, from, to netlink.Link) error {
	addrs, err := h.AddrList(from, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %q: %w", from.Attrs().Name, err)
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL,
		&netlink.Route{LinkIndex: from.Attrs().Index, Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes through %q: %w", from.Attrs().Name, err)
	}
	var moved []netlink.Addr
	for _, a := range addrs {
		if !movableAddr(a) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		na := copyAddr(a, from.Attrs().Name, to.Attrs().Name)
		if err := h.AddrReplace(to, na); err != nil {
			return fmt.Errorf("add address %s to %q: %w", a.IPNet, to.Attrs().Name, err)
		}
		moved = append(moved, a)
	}
	for _, r := range routes {
		if !movableRoute(r) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		nr := copyRoute(r, to.Attrs().Index)
		if err := h.RouteReplace(nr); err != nil {
			return fmt.Errorf("move route %s to %q: %w", r, to.Attrs().Name, err)
		}
	}
	for _, a := range moved {
		// Removing a primary IPv4 address removes its secondaries too
		// (unless promote_secondaries is set): those are already gone.
		if err := h.AddrDel(from, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove address %s from %q: %w", a.IPNet, from.Attrs().Name, err)
		}
	}
	return nil
}

// movableAddr leaves out what the kernel manages on each device itself:
// IPv6 link-local addresses, SLAAC addresses (not permanent) and addresses
// that failed duplicate detection.
func movableAddr(a netlink.Addr) bool {
	if a.IPNet == nil {
		return false
	}
	if a.IP.To4() == nil {
		if a.IP.IsLinkLocalUnicast() || a.Flags&unix.IFA_F_PERMANENT == 0 {
			return false
		}
	}
	return a.Flags&unix.IFA_F_DADFAILED == 0
}

// copyAddr is a on another device: same prefix, scope, broadcast and
// lifetimes, the label renamed with the device (the kernel wants labels
// to start with the device's name).
func copyAddr(a netlink.Addr, fromName, toName string) *netlink.Addr {
	na := &netlink.Addr{
		IPNet:       a.IPNet,
		Scope:       a.Scope,
		Broadcast:   a.Broadcast,
		ValidLft:    a.ValidLft,
		PreferedLft: a.PreferedLft,
		Flags:       a.Flags & (unix.IFA_F_NOPREFIXROUTE | unix.IFA_F_MANAGETEMPADDR | unix.IFA_F_HOMEADDRESS),
	}
	if a.IP.To4() == nil {
		// The address was already checked on this segment: waiting for
		// duplicate detection again would only cut the host off.
		na.Flags |= unix.IFA_F_NODAD
	}
	if suffix, ok := strings.CutPrefix(a.Label, fromName); ok && (suffix == "" || suffix[0] == ':') {
		if l := toName + suffix; len(l) <= attach.MaxIfNameLen {
			na.Label = l
		}
	}
	return na
}

// movableRoute leaves out kernel-made routes (prefix and local routes,
// router advertisements) and multipath routes.
func movableRoute(r netlink.Route) bool {
	switch {
	case r.Table == unix.RT_TABLE_LOCAL:
		return false
	case r.Protocol == unix.RTPROT_KERNEL || r.Protocol == unix.RTPROT_RA:
		return false
	case r.Type != unix.RTN_UNICAST:
		return false
	case len(r.MultiPath) > 0:
		return false
	}
	return true
}

// copyRoute is r through another device.
func copyRoute(r netlink.Route, linkIndex int) *netlink.Route {
	return &netlink.Route{
		LinkIndex: linkIndex,
		Family:    r.Family,
		Dst:       r.Dst,
		Src:       r.Src,
		Gw:        r.Gw,
		Priority:  r.Priority,
		Table:     r.Table,
		Scope:     r.Scope,
		Protocol:  r.Protocol,
		Type:      r.Type,
		Tos:       r.Tos,
		MTU:       r.MTU,
		AdvMSS:    r.AdvMSS,
		Hoplimit:  r.Hoplimit,
		Flags:     r.Flags & int(netlink.FLAG_ONLINK),
	}
}

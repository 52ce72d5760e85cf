package attach

import (
	"context"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
)

// IsNotFound reports whether err is netlink's "link not found".
func IsNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// hostVeth is the host-side name of ep's veth.
func hostVeth(ep *network.Endpoint) (string, error) {
	name := ep.HostIfName
	if name == "" {
		name = HostVethName(ep.ID)
	}
	if err := ValidIfName(name); err != nil {
		return "", fmt.Errorf("endpoint %s host interface: %w", ep.ID, err)
	}
	return name, nil
}

// Veth gives ep a veth pair: the host side (ep.HostIfName, or
// HostVethName(ep.ID) when empty) in h, enslaved to master and up; the
// other side made directly in ns as ep.IfName with ep.MAC and the same
// MTU. A complete pair from an earlier attempt is reused; half of one is
// removed and the pair made again. It sets ep.HostIfName.
func Veth(ctx context.Context, h *network.HostNS, ns *NS, ep *network.Endpoint, master netlink.Link, mtu int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	hostName, err := hostVeth(ep)
	if err != nil {
		return err
	}
	host, err := FindKind(h.Link, hostName, "veth")
	if err != nil {
		return fmt.Errorf("host side of endpoint %s: %w", ep.ID, err)
	}
	peer, err := FindKind(ns.Link, ep.IfName, "veth")
	if err != nil {
		return fmt.Errorf("endpoint %s in its namespace: %w", ep.ID, err)
	}
	// Without netnsids the peers cannot be matched exactly; IFLA_LINK
	// (the peer's index) on both sides is a good enough check that the
	// two halves belong together.
	if host != nil && peer != nil && (host.Attrs().ParentIndex != peer.Attrs().Index || peer.Attrs().ParentIndex != host.Attrs().Index) {
		host, peer = nil, nil
		if err := deleteNamed(h.Link, hostName); err != nil {
			return err
		}
		if err := deleteNamed(ns.Link, ep.IfName); err != nil {
			return err
		}
	}
	if host == nil || peer == nil {
		if host != nil {
			if err := h.Link.LinkDel(host); err != nil && !IsNotFound(err) {
				return fmt.Errorf("remove half veth %q: %w", hostName, err)
			}
		}
		if peer != nil {
			if err := ns.Link.LinkDel(peer); err != nil && !IsNotFound(err) {
				return fmt.Errorf("remove half veth %q in endpoint namespace: %w", ep.IfName, err)
			}
		}
		v := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: hostName, MTU: mtu},
			PeerName:      ep.IfName,
			PeerNamespace: ns.Fd(),
		}
		if ep.MAC != "" {
			mac, err := ParseMAC(ep.MAC)
			if err != nil {
				return err
			}
			v.PeerHardwareAddr = mac
		}
		if err := h.Link.LinkAdd(v); err != nil {
			return fmt.Errorf("create veth %s/%s for endpoint %s: %w", hostName, ep.IfName, ep.ID, err)
		}
		if host, err = h.Link.LinkByName(hostName); err != nil {
			return fmt.Errorf("find new veth %q: %w", hostName, err)
		}
	}
	if host.Attrs().MasterIndex != master.Attrs().Index {
		if err := h.Link.LinkSetMaster(host, master); err != nil {
			return fmt.Errorf("enslave veth %q to %q: %w", hostName, master.Attrs().Name, err)
		}
	}
	if err := h.Link.LinkSetUp(host); err != nil {
		return fmt.Errorf("set veth %q up: %w", hostName, err)
	}
	ep.HostIfName = hostName
	return nil
}

// RemoveVeth removes ep's veth pair: the host side in h and, when ns is
// not nil, the namespace side (removing either removes both; both are
// tried for a pair half made). Missing links are not an error.
func RemoveVeth(h *network.HostNS, ns *NS, ep *network.Endpoint) error {
	hostName, err := hostVeth(ep)
	if err != nil {
		return err
	}
	if err := RemoveLink(h.Link, hostName, "veth"); err != nil {
		return err
	}
	if ns != nil {
		if err := RemoveLink(ns.Link, ep.IfName, "veth"); err != nil {
			return err
		}
	}
	return nil
}

// RemoveLink deletes the link called name if it exists and is of kind
// (netlink's Type(): "veth", "macvlan", "bridge", "vxlan"). A link of
// another kind is not silo's: errdefs.ErrConflict.
func RemoveLink(h *netlink.Handle, name, kind string) error {
	l, err := FindKind(h, name, kind)
	if err != nil || l == nil {
		return err
	}
	if err := h.LinkDel(l); err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove %s %q: %w", kind, name, err)
	}
	return nil
}

// FindKind returns the link called name, nil when there is none, and
// errdefs.ErrConflict when it is not of kind.
func FindKind(h *netlink.Handle, name, kind string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if err != nil {
		if IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("find interface %q: %w", name, err)
	}
	if l.Type() != kind {
		return nil, fmt.Errorf("interface %q is a %s, not a %s: %w", name, l.Type(), kind, errdefs.ErrConflict)
	}
	return l, nil
}

func deleteNamed(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		if IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("find interface %q: %w", name, err)
	}
	if err := h.LinkDel(l); err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove interface %q: %w", name, err)
	}
	return nil
}

// LeaveVeth removes an endpoint's veth pair: the Leave of the drivers
// that join by veth. A namespace already gone is not an error.
func LeaveVeth(ctx context.Context, h *network.HostNS, ep *network.Endpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ns, err := OpenIfExists(ep.NetnsPath)
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	if ns != nil {
		defer ns.Close()
	}
	if err := RemoveVeth(h, ns, ep); err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	return nil
}

package macvlan

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
	"github.com/silo-containers/silo/internal/network/drivers/attach"
)

// Driver serves one of the two macvlan network types.
type Driver struct {
	typ  network.Type
	mode netlink.MacvlanMode
}

var _ network.Driver = (*Driver)(nil)

// NewTransparent returns the transparent driver (macvlan bridge mode).
func NewTransparent() *Driver {
	return &Driver{typ: network.Transparent, mode: netlink.MACVLAN_MODE_BRIDGE}
}

// NewL2Tunnel returns the l2tunnel driver (macvlan VEPA mode).
func NewL2Tunnel() *Driver {
	return &Driver{typ: network.L2Tunnel, mode: netlink.MACVLAN_MODE_VEPA}
}

// Type is transparent or l2tunnel.
func (d *Driver) Type() network.Type { return d.typ }

// Validate requires a parent interface and records it as n.Interface and
// as a NetAdapterName policy.
func (d *Driver) Validate(n *network.Network) error {
	if n.Type != d.typ {
		return fmt.Errorf("network %q: type %q given to the %s driver: %w", n.Name, n.Type, d.typ, errdefs.ErrInvalidArgument)
	}
	parent, err := attach.Parent(n)
	if err != nil {
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	if parent == "" {
		return fmt.Errorf("network %q: a %s network needs a host interface (NetAdapterName policy or -o parent=): %w", n.Name, d.typ, errdefs.ErrInvalidArgument)
	}
	n.Interface = parent
	attach.SetParentPolicy(n, parent)
	return nil
}

// Setup checks that the parent exists and can carry macvlans; there is
// nothing to create.
func (d *Driver) Setup(ctx context.Context, h *network.HostNS, n *network.Network) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := parentLink(h, n)
	return err
}

// Teardown has nothing to remove: the macvlans belong to the endpoints.
func (d *Driver) Teardown(ctx context.Context, h *network.HostNS, n *network.Network) error {
	return ctx.Err()
}

// parentLink finds n's parent in h.
func parentLink(h *network.HostNS, n *network.Network) (netlink.Link, error) {
	name, err := attach.Parent(n)
	if err != nil {
		return nil, fmt.Errorf("network %q: %w", n.Name, err)
	}
	if name == "" {
		name = n.Interface
	}
	l, err := h.Link.LinkByName(name)
	if err != nil {
		if attach.IsNotFound(err) {
			return nil, fmt.Errorf("network %q: parent interface %q does not exist: %w", n.Name, name, errdefs.ErrInvalidArgument)
		}
		return nil, fmt.Errorf("network %q: find parent interface %q: %w", n.Name, name, err)
	}
	// A bridge or bond port hands its frames to its master; the kernel
	// refuses a macvlan on it (EBUSY), say why here.
	if m := l.Attrs().MasterIndex; m != 0 {
		return nil, fmt.Errorf("network %q: parent interface %q is enslaved to interface %d: %w", n.Name, name, m, errdefs.ErrConflict)
	}
	return l, nil
}

// Join creates the endpoint's macvlan on the parent, directly in the
// endpoint's namespace under its final name, and configures it. A macvlan
// of the right mode left by an earlier attempt is reconfigured in place.
func (d *Driver) Join(ctx context.Context, h *network.HostNS, n *network.Network, ep *network.Endpoint) error {
	if err := attach.ValidIfName(ep.IfName); err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	parent, err := parentLink(h, n)
	if err != nil {
		return err
	}
	ns, err := attach.OpenNS(ep.NetnsPath)
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	defer ns.Close()

	old, err := attach.FindKind(ns.Link, ep.IfName, "macvlan")
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	if old != nil && old.(*netlink.Macvlan).Mode != d.mode {
		if err := ns.Link.LinkDel(old); err != nil {
			return fmt.Errorf("endpoint %s: remove macvlan %q of another mode: %w", ep.ID, ep.IfName, err)
		}
		old = nil
	}
	created := false
	if old == nil {
		mv := &netlink.Macvlan{
			LinkAttrs: netlink.LinkAttrs{
				Name:        ep.IfName,
				ParentIndex: parent.Attrs().Index,
				MTU:         parent.Attrs().MTU,
				Namespace:   ns.Fd(),
			},
			Mode: d.mode,
		}
		if ep.MAC != "" {
			if mv.HardwareAddr, err = attach.ParseMAC(ep.MAC); err != nil {
				return fmt.Errorf("endpoint %s: %w", ep.ID, err)
			}
		}
		if err := h.Link.LinkAdd(mv); err != nil {
			return fmt.Errorf("endpoint %s: create macvlan %q on %q: %w", ep.ID, ep.IfName, parent.Attrs().Name, err)
		}
		created = true
	}
	if err := attach.Configure(ctx, ns, ep, attach.SubnetRoutes(n, ep)); err != nil {
		if created {
			// Leave nothing half-configured behind for a later retry to trip on.
			_ = attach.RemoveLink(ns.Link, ep.IfName, "macvlan")
		}
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	return nil
}

// Leave removes the endpoint's macvlan; a namespace that is gone took it
// with it.
func (d *Driver) Leave(ctx context.Context, h *network.HostNS, n *network.Network, ep *network.Endpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ns, err := attach.OpenIfExists(ep.NetnsPath)
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	if ns == nil {
		return nil
	}
	defer ns.Close()
	if err := attach.RemoveLink(ns.Link, ep.IfName, "macvlan"); err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	return nil
}

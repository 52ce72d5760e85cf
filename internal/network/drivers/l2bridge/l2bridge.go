package l2bridge

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/silo-containers/silo/internal/errdefs"
	"github.com/silo-containers/silo/internal/network"
	"github.com/silo-containers/silo/internal/network/drivers/attach"
)

// BridgePrefix starts the name of every l2bridge network's bridge.
const BridgePrefix = "l2br-"

// Driver is the l2bridge driver.
type Driver struct{}

var _ network.Driver = Driver{}

// New returns the l2bridge driver.
func New() Driver { return Driver{} }

// Type is l2bridge.
func (Driver) Type() network.Type { return network.L2Bridge }

// Validate requires a parent interface and names the bridge
// (n.Interface).
func (Driver) Validate(n *network.Network) error {
	if n.Type != network.L2Bridge {
		return fmt.Errorf("network %q: type %q given to the l2bridge driver: %w", n.Name, n.Type, errdefs.ErrInvalidArgument)
	}
	parent, err := attach.Parent(n)
	if err != nil {
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	if parent == "" {
		return fmt.Errorf("network %q: an l2bridge network needs a host interface (NetAdapterName policy or -o parent=): %w", n.Name, errdefs.ErrInvalidArgument)
	}
	br, err := attach.ObjectName(BridgePrefix, n.ID)
	if err != nil {
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	n.Interface = br
	attach.SetParentPolicy(n, parent)
	return nil
}

// names returns n's bridge and parent names.
func names(n *network.Network) (bridge, parent string, err error) {
	if bridge, err = attach.ObjectName(BridgePrefix, n.ID); err != nil {
		return "", "", fmt.Errorf("network %q: %w", n.Name, err)
	}
	if parent, err = attach.Parent(n); err != nil {
		return "", "", fmt.Errorf("network %q: %w", n.Name, err)
	}
	if parent == "" {
		return "", "", fmt.Errorf("network %q: no parent interface: %w", n.Name, errdefs.ErrInvalidArgument)
	}
	return bridge, parent, nil
}

// Setup creates (or finds) the bridge, enslaves the parent and moves the
// parent's addresses and routes onto the bridge.
func (Driver) Setup(ctx context.Context, h *network.HostNS, n *network.Network) error {
	brName, parentName, err := names(n)
	if err != nil {
		return err
	}
	parent, err := h.Link.LinkByName(parentName)
	if err != nil {
		if attach.IsNotFound(err) {
			return fmt.Errorf("network %q: parent interface %q does not exist: %w", n.Name, parentName, errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("network %q: find parent interface %q: %w", n.Name, parentName, err)
	}
	br, err := attach.FindKind(h.Link, brName, "bridge")
	if err != nil {
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	if m := parent.Attrs().MasterIndex; m != 0 && (br == nil || m != br.Attrs().Index) {
		return fmt.Errorf("network %q: parent interface %q is already enslaved to interface %d: %w", n.Name, parentName, m, errdefs.ErrConflict)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if br == nil {
		// The bridge takes the parent's MAC: the host keeps its L2
		// identity on the segment, and a set address (rather than the
		// lowest port MAC) does not change as veths come and go.
		nb := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{
			Name:         brName,
			MTU:          parent.Attrs().MTU,
			HardwareAddr: parent.Attrs().HardwareAddr,
		}}
		if err := h.Link.LinkAdd(nb); err != nil {
			return fmt.Errorf("network %q: create bridge %q: %w", n.Name, brName, err)
		}
		if br, err = h.Link.LinkByName(brName); err != nil {
			return fmt.Errorf("network %q: find new bridge %q: %w", n.Name, brName, err)
		}
	}
	if parent.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.Link.LinkSetMaster(parent, br); err != nil {
			return fmt.Errorf("network %q: enslave %q to bridge %q: %w", n.Name, parentName, brName, err)
		}
	}
	if err := h.Link.LinkSetUp(br); err != nil {
		return fmt.Errorf("network %q: set bridge %q up: %w", n.Name, brName, err)
	}
	if err := moveL3(ctx, h.Link, parent, br); err != nil {
		return fmt.Errorf("network %q: move addresses of %q to bridge %q: %w", n.Name, parentName, brName, err)
	}
	return nil
}

// Teardown moves the addresses and routes back to the parent, releases
// it and removes the bridge.
func (Driver) Teardown(ctx context.Context, h *network.HostNS, n *network.Network) error {
	brName, parentName, err := names(n)
	if err != nil {
		return err
	}
	br, err := attach.FindKind(h.Link, brName, "bridge")
	if err != nil {
		return fmt.Errorf("network %q: %w", n.Name, err)
	}
	if br == nil {
		return nil
	}
	parent, err := h.Link.LinkByName(parentName)
	switch {
	case attach.IsNotFound(err):
		// The interface is gone (unplugged): nothing to give back to.
	case err != nil:
		return fmt.Errorf("network %q: find parent interface %q: %w", n.Name, parentName, err)
	default:
		if parent.Attrs().MasterIndex == br.Attrs().Index {
			if err := h.Link.LinkSetNoMaster(parent); err != nil {
				return fmt.Errorf("network %q: release %q from bridge %q: %w", n.Name, parentName, brName, err)
			}
		}
		if err := moveL3(ctx, h.Link, br, parent); err != nil {
			return fmt.Errorf("network %q: move addresses of bridge %q back to %q: %w", n.Name, brName, parentName, err)
		}
	}
	if err := h.Link.LinkDel(br); err != nil && !attach.IsNotFound(err) {
		return fmt.Errorf("network %q: remove bridge %q: %w", n.Name, brName, err)
	}
	return nil
}

// Join makes the endpoint's veth pair, host side in the bridge, and
// configures the namespace side.
func (Driver) Join(ctx context.Context, h *network.HostNS, n *network.Network, ep *network.Endpoint) error {
	if err := attach.ValidIfName(ep.IfName); err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	brName, _, err := names(n)
	if err != nil {
		return err
	}
	br, err := attach.FindKind(h.Link, brName, "bridge")
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	if br == nil {
		return fmt.Errorf("endpoint %s: bridge %q of network %q does not exist (network not set up): %w", ep.ID, brName, n.Name, errdefs.ErrNotFound)
	}
	ns, err := attach.OpenNS(ep.NetnsPath)
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	defer ns.Close()
	if err := attach.Veth(ctx, h, ns, ep, br, br.Attrs().MTU); err != nil {
		return err
	}
	if err := attach.Configure(ctx, ns, ep, attach.SubnetRoutes(n, ep)); err != nil {
		_ = attach.RemoveVeth(h, ns, ep)
		return fmt.Errorf("endpoint %s: %w", ep.ID, err)
	}
	return nil
}

// Leave removes the endpoint's veth pair.
func (Driver) Leave(ctx context.Context, h *network.HostNS, n *network.Network, ep *network.Endpoint) error {
	return attach.LeaveVeth(ctx, h, ep)
}

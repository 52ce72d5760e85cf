package network

import (
	"context"
)

// Driver makes the kernel objects of one network type. The service keeps
// the objects' records, allocates addresses and renders the nftables rules
// (port mappings, ACLs, outbound NAT); a driver only builds and removes
// interfaces, bridges, tunnels and routes.
//
// Every method must be idempotent: Setup runs again after each daemon
// start (the kernel objects may or may not still exist), and Leave or
// Teardown may run on half-made objects after a crash.
type Driver interface {
	// Type is the network type the driver serves.
	Type() Type
	// Validate checks a network about to be created and fills the
	// driver's defaults (interface names, VNI, MTU options); it changes
	// nothing on the host.
	Validate(n *Network) error
	// Setup creates or re-finds the network's host-side objects (bridge,
	// VXLAN device, FDB entries, routes) in h.
	Setup(ctx context.Context, h *HostNS, n *Network) error
	// Teardown removes what Setup made.
	Teardown(ctx context.Context, h *HostNS, n *Network) error
	// Join creates ep's interface inside the namespace at ep.NetnsPath,
	// named ep.IfName, with ep.MAC and ep.Addresses, up, with a default
	// route through ep.Gateways and the subnet's routes. It sets
	// ep.HostIfName when it makes a host-side peer.
	Join(ctx context.Context, h *HostNS, n *Network, ep *Endpoint) error
	// Leave removes ep's interface and its host-side peer; a namespace
	// that is already gone is not an error.
	Leave(ctx context.Context, h *HostNS, n *Network, ep *Endpoint) error
}

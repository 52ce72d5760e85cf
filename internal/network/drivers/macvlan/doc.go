// Package macvlan is the transparent and l2tunnel network drivers: each
// endpoint is a macvlan device on the host interface named by the
// network's NetAdapterName policy (or -o parent=), created directly in the
// container's namespace with the endpoint's own MAC. Containers sit on the
// host's L2 segment as hosts of their own; the network has no host-side
// objects, so Setup and Teardown only check the parent.
//
// transparent uses macvlan bridge mode: frames between two containers on
// the same parent are switched inside the kernel, everything else goes out
// of the parent.
//
// l2tunnel uses macvlan VEPA mode (802.1Qbg Virtual Ethernet Port
// Aggregator): every frame a container sends, even to another container on
// the same host, goes out of the parent to the external switch, and
// container-to-container traffic works only if that switch port reflects
// frames back to where they came from (hairpin / "reflective relay", e.g.
// `bridge link set dev PORT hairpin on` on a Linux bridge). This is the
// closest Linux gets to HNS l2tunnel, where "all traffic is sent to the
// physical host for policy": here the policy point is the external switch,
// not this host — the host does not see or filter the containers' frames.
//
// Like any macvlan setup, the host itself cannot reach its containers
// through the parent interface (the parent does not receive frames its
// macvlans send); other machines on the segment can.
package macvlan

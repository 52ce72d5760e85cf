// Package overlay is the overlay network driver: one L2 segment across
// hosts, carried in VXLAN over the hosts' own network (the underlay).
//
// On each host the network is a VXLAN device "vx-<id[:8]>" (VNI from the
// VSID policy or -o vni=, default derived from the network id and at least
// 4096; UDP port from VxlanPort, default 4789; source address from the
// ProviderAddress policy; pinned to the NetAdapterName interface when
// given) enslaved to a bridge "ov-<id[:8]>"; endpoints are veths into that
// bridge. Containers on every host share the network's subnet, each host
// allocating from its own IPRange.
//
// Remote hosts are known from RemoteSubnetRoute policies, which become
// static entries in the VXLAN device's forwarding database: the all-zero
// MAC to every remote provider address (where broadcasts such as ARP are
// sent: head-end replication, no multicast needed in the underlay) and,
// when DistributedRouterMacAddress is given, that MAC to its host. The
// device learns the rest from the traffic it receives.
//
// Each host's bridge holds the subnets' gateway addresses with one MAC
// derived from the network id: an anycast gateway, the same IP and MAC on
// every host, so a container's default route leads to its own host. The
// VXLAN port suppresses ARP and neighbour discovery for addresses the
// bridge owns, so gateway lookups never cross the tunnel. Frames the host
// itself floods (its ARP for its own containers) still reach the other
// hosts, whose bridges then log "received packet ... with own address as
// source address" (rate limited) and carry on.
//
// A remote prefix outside the network's subnets (each host configured
// with only its own share, Kubernetes style) becomes an on-link route in
// each endpoint: the tunnel is one L2 segment, so the remote containers
// answer ARP themselves. Routing it through the gateway instead would need
// each host's router to have a MAC of its own behind the tunnel, which the
// anycast gateway does not have.
package overlay

// Package network is silo's Host Network Service: networks, endpoints and
// namespaces as inspectable, persisted objects (the HNS objects), built in
// the kernel with netlink (bridges, veths, macvlan, VXLAN) and nftables
// (masquerade, port-mapping DNAT, ACLs).
//
// The service owns the records, address allocation and the nftables
// table; each network type's kernel objects come from a Driver. All kernel
// work happens in a HostNS, so tests can run whole "hosts" inside network
// namespaces of their own.
package network

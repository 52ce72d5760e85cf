// Package network is silo's Host Network Service: networks, endpoints and
// namespaces as inspectable, persisted objects (the HNS objects), built in
// the kernel with netlink (bridges, veths, macvlan, VXLAN) and nftables
// (masquerade, port-mapping DNAT, ACLs).
//
// The service owns the records, address allocation and the nftables
// table; each network type's kernel objects come from a Driver. All kernel
// work happens in a HostNS, so tests can run whole "hosts" inside network
// namespaces of their own.
//
// Layout:
//
//	service.go    Config, New (restore), Close, networks: create, remove, resolve
//	endpoint.go   Attach, Detach, SetPolicies, Endpoints, Lookup; host ports; rendering
//	namespace.go  CreateNamespace, RemoveNamespace (bind-mounted netns, lo up)
//	natdriver.go  the nat and internal Driver over package drivers/nat
//	store.go      records in bbolt (StateDir/network.db), one transaction per change
//	ipam/         address pools per subnet, default subnet choice
//	nftrules/     State → table ip silo, installed in one netlink batch
//	netnsutil/    namespaces bind-mounted on files
//	drivers/nat/  bridge, veth pair, tbf qdisc
//
// Endpoint life:
//
//	Attach: reserve addresses + ports (locked) → driver Join (unlocked) →
//	        record + render rules (locked); any failure undoes all of it
//	Detach / RemoveNamespace: driver Leave → record deleted → render
//
// New after a restart re-runs every network's Setup, drops endpoints whose
// namespace is gone, removes namespace files without a record and veths on
// silo's bridges without an endpoint, and renders the table from scratch,
// so nothing is duplicated.
//
// Locking: Service.mu guards every map and is held for each change and
// rendering, but not while a driver joins an endpoint; a network with an
// attach under way cannot be removed (Service.pending).
package network

package network

import (
	"net/netip"
	"time"
)

// Type names a network driver, as HNS names network types.
type Type string

// The network types. NAT is the default network's type; Docker's "bridge"
// is accepted as a name for it.
const (
	NAT         Type = "nat"
	Transparent Type = "transparent"
	L2Bridge    Type = "l2bridge"
	L2Tunnel    Type = "l2tunnel"
	Overlay     Type = "overlay"
	// Internal is a nat-like network with no uplink: containers on it reach
	// each other and nothing else (HNS "Private").
	Internal Type = "internal"
	None     Type = "none"
	Host     Type = "host"
)

// Network is one network, the counterpart of an HNS network object. It is
// what `silo network inspect` shows and what the network store persists.
type Network struct {
	// ID is a 64-hex-digit id; Name is unique among networks.
	ID   string `json:"ID"`
	Name string `json:"Name"`
	Type Type   `json:"Type"`
	// Subnets is the IPAM configuration: one entry per subnet (IPv4 and,
	// when asked, IPv6).
	Subnets []Subnet `json:"Subnets,omitempty"`
	// MacPool is the range endpoint MAC addresses come from.
	MacPool MacPool `json:"MacPool"`
	// DNS is what containers on the network get in resolv.conf.
	DNS DNS `json:"Dns"`
	// Interface is the host-side device of the network: the bridge of a
	// nat/internal/l2bridge network, the VXLAN device of an overlay, the
	// parent (uplink) of transparent/l2tunnel.
	Interface string `json:"Interface,omitempty"`
	// Policies are network-wide policies (NetAdapterName, VxlanPort,
	// RemoteSubnetRoute, ProviderAddress…).
	Policies []NetworkPolicy `json:"Policies,omitempty"`
	// Options are the driver options given at creation (docker network
	// create -o key=value).
	Options map[string]string `json:"Options,omitempty"`
	// Labels are the user's labels.
	Labels map[string]string `json:"Labels,omitempty"`
	// Internal networks have no route out (docker network create --internal).
	Internal bool `json:"Internal,omitempty"`
	// EnableIPv6 gives endpoints an IPv6 address too.
	EnableIPv6 bool `json:"EnableIPv6,omitempty"`
	// Default marks the network made at first start ("nat").
	Default bool      `json:"Default,omitempty"`
	Created time.Time `json:"Created"`
}

// Subnet is one IPAM subnet with its gateway and the range addresses are
// allocated from.
type Subnet struct {
	Prefix netip.Prefix `json:"IpAddressPrefix"`
	// Gateway is the network's address on the subnet (the bridge's, for
	// nat); the zero Addr means none.
	Gateway netip.Addr `json:"Gateway,omitzero"`
	// IPRange narrows allocation to a part of Prefix (--ip-range); zero
	// means all of Prefix.
	IPRange netip.Prefix `json:"IPRange,omitzero"`
	// Routes are extra routes given to endpoints.
	Routes []Route `json:"Routes,omitempty"`
}

// Route is a route given to endpoints of a subnet.
type Route struct {
	Destination netip.Prefix `json:"DestinationPrefix"`
	NextHop     netip.Addr   `json:"NextHop"`
}

// MacPool is an inclusive range of MAC addresses ("02-42-AC-11-00-00").
type MacPool struct {
	Start string `json:"StartMacAddress"`
	End   string `json:"EndMacAddress"`
}

// DNS is a network's resolver settings.
type DNS struct {
	Domain  string       `json:"Domain,omitempty"`
	Search  []string     `json:"Search,omitempty"`
	Servers []netip.Addr `json:"ServerList,omitempty"`
}

// NetworkPolicyType names a network-wide policy.
type NetworkPolicyType string

// The network policies.
const (
	// NetAdapterName names the host interface a transparent, l2bridge,
	// l2tunnel or overlay network is built on.
	NetAdapterName NetworkPolicyType = "NetAdapterName"
	// VxlanPort sets an overlay's UDP port (default 4789).
	VxlanPort NetworkPolicyType = "VxlanPort"
	// VSID sets an overlay's VXLAN network identifier.
	VSID NetworkPolicyType = "VSID"
	// ProviderAddress is this host's address on the underlay.
	ProviderAddress NetworkPolicyType = "ProviderAddress"
	// RemoteSubnetRoute sends a remote host's share of an overlay subnet
	// through the tunnel to that host's provider address.
	RemoteSubnetRoute NetworkPolicyType = "RemoteSubnetRoute"
	// OutBoundNATPolicy lists destinations not masqueraded for every
	// endpoint of a nat network that has no OutBoundNAT policy of its own.
	OutBoundNATPolicy NetworkPolicyType = "OutBoundNAT"
)

// NetworkPolicy is one network policy. Settings holds the fields of its
// type; unused ones stay zero.
type NetworkPolicy struct {
	Type     NetworkPolicyType     `json:"Type"`
	Settings NetworkPolicySettings `json:"Settings"`
}

// NetworkPolicySettings are the settings of every network policy type.
type NetworkPolicySettings struct {
	// NetworkAdapterName is the host interface (NetAdapterName).
	NetworkAdapterName string `json:"NetworkAdapterName,omitempty"`
	// Port is the VXLAN UDP port (VxlanPort).
	Port uint16 `json:"Port,omitempty"`
	// IsolationID is the VNI (VSID).
	IsolationID uint32 `json:"IsolationId,omitempty"`
	// ProviderAddress is a host's underlay address (ProviderAddress,
	// RemoteSubnetRoute).
	ProviderAddress netip.Addr `json:"ProviderAddress,omitzero"`
	// DestinationPrefix is the remote subnet (RemoteSubnetRoute).
	DestinationPrefix netip.Prefix `json:"DestinationPrefix,omitzero"`
	// DistributedRouterMacAddress is the remote host's MAC for the subnet
	// (RemoteSubnetRoute), used for its FDB entry.
	DistributedRouterMacAddress string `json:"DistributedRouterMacAddress,omitempty"`
	// Exceptions are destinations not masqueraded (OutBoundNATPolicy).
	Exceptions []netip.Prefix `json:"Exceptions,omitempty"`
}

// Endpoint is a container's attachment to a network: an interface in a
// namespace with addresses and policies (an HNS endpoint).
type Endpoint struct {
	ID        string `json:"ID"`
	Name      string `json:"Name"`
	NetworkID string `json:"HostComputeNetwork"`
	// Namespace is the id of the namespace holding the interface;
	// NetnsPath is the namespace's bind mount.
	Namespace string `json:"HostComputeNamespace"`
	NetnsPath string `json:"NetnsPath"`
	// ContainerID is the container the endpoint serves (informational).
	ContainerID string `json:"ContainerID,omitempty"`
	// IfName is the interface name inside the namespace ("eth0");
	// HostIfName is the host-side peer (veth) when there is one.
	IfName     string `json:"IfName"`
	HostIfName string `json:"HostIfName,omitempty"`
	// Addresses are the endpoint's addresses with their prefix length.
	Addresses []netip.Prefix `json:"IpConfigurations"`
	// Gateways are the default routes' next hops (none on internal
	// networks).
	Gateways []netip.Addr `json:"Gateways,omitempty"`
	// MAC is "02:42:ac:11:00:02" style.
	MAC string `json:"MacAddress"`
	// Aliases are the extra DNS names of the endpoint on its network
	// (--network-alias); the container's name is always one.
	Aliases []string `json:"Aliases,omitempty"`
	// Policies.
	PortMappings []PortMapping `json:"PortMappings,omitempty"`
	ACLs         []ACL         `json:"ACLs,omitempty"`
	OutboundNAT  *OutboundNAT  `json:"OutBoundNAT,omitempty"`
	QoS          *QoS          `json:"QOS,omitempty"`
	// DNSServers are the endpoint's own resolvers (--dns), where the
	// network's embedded DNS sends its other queries.
	DNSServers []netip.Addr `json:"DnsServerList,omitempty"`
	Created    time.Time    `json:"Created"`
}

// PortMapping publishes a port of the endpoint on the host (HNS
// PortMapping; docker -p).
type PortMapping struct {
	// Protocol is "tcp", "udp" or "sctp".
	Protocol     string `json:"Protocol"`
	InternalPort uint16 `json:"InternalPort"`
	// ExternalPort is the host port; 0 asks for a free one (-P, -p 80).
	ExternalPort uint16 `json:"ExternalPort"`
	// HostIP restricts the mapping to one host address; zero means all.
	HostIP netip.Addr `json:"VIP,omitzero"`
}

// ACLAction is what an ACL does with matching packets.
type ACLAction string

// ACL actions.
const (
	Allow ACLAction = "Allow"
	Block ACLAction = "Block"
)

// ACLDirection is the direction an ACL applies to, from the endpoint's
// point of view.
type ACLDirection string

// ACL directions.
const (
	In  ACLDirection = "In"
	Out ACLDirection = "Out"
)

// ACL is an endpoint firewall rule (HNS ACL policy). Rules are evaluated
// by Priority, lowest first; the first match decides.
type ACL struct {
	Action    ACLAction    `json:"Action"`
	Direction ACLDirection `json:"Direction"`
	// Protocol is "tcp", "udp", "icmp" or "" for any.
	Protocol string `json:"Protocols,omitempty"`
	// LocalAddresses/RemoteAddresses: empty means any.
	LocalAddresses  []netip.Prefix `json:"LocalAddresses,omitempty"`
	RemoteAddresses []netip.Prefix `json:"RemoteAddresses,omitempty"`
	// LocalPorts/RemotePorts: empty means any.
	LocalPorts  []PortRange `json:"LocalPorts,omitempty"`
	RemotePorts []PortRange `json:"RemotePorts,omitempty"`
	Priority    int         `json:"Priority"`
}

// PortRange is an inclusive range of ports; a single port has First == Last.
type PortRange struct {
	First uint16 `json:"First"`
	Last  uint16 `json:"Last"`
}

// OutboundNAT masquerades the endpoint's traffic leaving the network,
// except to the listed destinations.
type OutboundNAT struct {
	Exceptions []netip.Prefix `json:"Exceptions,omitempty"`
}

// QoS limits the endpoint's egress bandwidth.
type QoS struct {
	MaximumOutgoingBandwidthInBytes uint64 `json:"MaximumOutgoingBandwidthInBytes"`
}

// Namespace is a network namespace made by the service (an HNS
// namespace, the "compartment" a container or pod lives in). Its
// endpoints are the endpoints whose Namespace is its ID.
type Namespace struct {
	ID string `json:"ID"`
	// Path is the namespace's bind mount (RunDir/netns/<ID>).
	Path    string    `json:"Path"`
	Created time.Time `json:"Created"`
}

// Package attach is the part of joining an endpoint that every driver
// shares: opening the endpoint's namespace, configuring its interface
// there (MAC, addresses, up, default and extra routes), the veth pair of
// the bridge-based drivers, and the naming rules for the kernel objects.
//
// Links are created directly in the endpoint's namespace (IFLA_NET_NS_FD
// on creation) under their final name, so no half-made interface with a
// temporary name is ever left in the host namespace.
package attach
